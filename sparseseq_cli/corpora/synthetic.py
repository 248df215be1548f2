"""The built-in synthetic corpus (``builtin:toy``): generated on the fly, no download.

A small probabilistic grammar over a made-up lexicon emits English-like sentences with
Penn Treebank tags. It is built to be learnable but not trivial:

- a Zipf-distributed vocabulary of a few thousand words (each open class draws its words
  with weight 1/rank, so a few words are frequent and most are rare);
- structure a sequence model can use: subject-verb agreement across prepositional phrases
  and relative clauses ("the dogs that the cat saw *T*-1 run"), verb frames (transitive,
  intransitive, that-clauses, to-infinitives), and a topic per sentence that most of its
  content words share, so context predicts far better than word frequency alone;
- tagging that is not a lookup: shared noun/verb stems ("walk" NN/VB/VBP, "walks" NNS/VBZ),
  regular past forms that are VBD or VBN, "that" as DT/WDT/IN, "her" as PRP/PRP$;
- ``-NONE-`` traces as in the treebank (``*T*-1``, ``*-1``, ``0``), so accuracy with and
  without them differ. The language-model splits drop them, as Mikolov's PTB does.

Everything depends only on ``seed`` (``random.Random`` instances, never the global RNG).
Sentence ``i`` of a split is the same in :func:`lm_corpus` and :func:`tagged_corpus`
(each split is its own stream; the tagged splits are prefixes of the LM ones).
"""
from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass
from pathlib import Path

from sparseseq_cli.corpora.vocab import SPLITS, UNK

Tagged = list[tuple[str, str]]

BUILTIN_PATH = "builtin:toy"   # the data path that selects this corpus in a config
# Language-model splits are cut by token count (traces excluded), tagging splits by sentences.
LM_TOKENS = {"train": 100_000, "valid": 10_000, "test": 10_000}
TAGGED_SENTENCES = {"train": 3000, "valid": 500, "test": 500}

TAGS = ("CC", "CD", "DT", "IN", "JJ", "JJR", "JJS", "MD", "NN", "NNP", "NNS", "POS", "PRP",
        "PRP$", "RB", "TO", "VB", "VBD", "VBG", "VBN", "VBP", "VBZ", "WDT", ",", ".", "-NONE-")
TRACES = ("*T*-1", "*-1", "0")

_TOPICS = 6
_ON_TOPIC = 0.85  # share of content words drawn from the sentence's topic
_MAX_DEPTH = 2    # clause nesting (relative and that-clauses)

_ONSETS = ("b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "t", "v", "w", "z",
           "br", "dr", "fl", "gr", "pl", "st", "tr", "sk", "sn", "ch", "sh")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou", "ea", "oo")
_CODAS = ("", "", "n", "r", "l", "m", "k", "t", "nd", "rk", "mp", "ng")  # never "s": plurals

_CLOSED = {
    "DT_sg": ("the", "a", "this", "that", "every", "no", "each"),
    "DT_pl": ("the", "these", "those", "some", "no"),
    "PRP_subj_3sg": ("he", "she", "it"),
    "PRP_subj_other": ("they", "we", "you"),
    "PRP_obj": ("him", "her", "it", "them", "us", "you"),
    "PRP$": ("his", "her", "its", "their", "our"),
    "MD": ("will", "would", "can", "could", "may", "might", "should", "must"),
    "IN": ("of", "in", "for", "on", "with", "at", "from", "about", "near", "under", "after"),
    "CC": ("and", "but", "or"),
    "CD": ("two", "three", "four", "five", "ten", "twelve", "20", "35", "100", "seven"),
    "WDT": ("that", "which"),
    "RB_fn": ("not", "also", "often", "never", "still"),
}
_CLOSED_WORDS = {w for words in _CLOSED.values() for w in words} | {
    "is", "are", "was", "were", "has", "have", "had", "to", "by", "'s", "very"}


class _Pool:
    """Items drawn with Zipf weights 1/(rank+1): a bisect on cumulative weights."""

    def __init__(self, items, ranks):
        self.items = list(items)
        self.cum = list(itertools.accumulate(1.0 / (r + 1) for r in ranks))

    def draw(self, rng: random.Random):
        return self.items[bisect.bisect_right(self.cum, rng.random() * self.cum[-1])]


def _uniform(rng: random.Random, seq):
    return seq[int(rng.random() * len(seq))]


@dataclass(frozen=True)
class _Verb:
    stem: str
    frame: str      # trans | intrans | comp (that-clause) | ctrl (to-infinitive)
    past: str       # VBD form
    participle: str  # VBN form (equal to ``past`` for regular verbs: the VBD/VBN ambiguity)

    @property
    def third(self) -> str:
        return self.stem + "s"

    @property
    def gerund(self) -> str:
        return self.stem + "ing"


class _Lexicon:
    """Made-up open-class words, each with a Zipf rank and a topic (rank mod #topics, so
    every topic has frequent and rare words)."""

    def __init__(self, rng: random.Random, nouns=1400, verbs=700, shared=100, adjectives=350,
                 adverbs=120, names=250):
        taken = set(_CLOSED_WORDS)

        def fresh(suffixes):
            while True:
                stem = "".join(_uniform(rng, _ONSETS) + _uniform(rng, _VOWELS) + _uniform(rng, _CODAS)
                               for _ in range(1 + (rng.random() < 0.75) + (rng.random() < 0.1)))
                forms = {stem} | {stem + s for s in suffixes}
                if not forms & taken:
                    taken.update(forms)
                    return stem

        verb_suffixes = ("s", "ed", "ing", "t", "en")
        noun_stems = [fresh(("s",) + verb_suffixes) for _ in range(nouns)]
        # Some verbs share a noun's stem: "walk" NN vs VB/VBP, "walks" NNS vs VBZ.
        verb_stems = rng.sample(noun_stems, shared) + [fresh(verb_suffixes) for _ in range(verbs - shared)]
        rng.shuffle(verb_stems)
        self.nouns = noun_stems
        self.verbs = []
        for stem in verb_stems:
            frame = rng.choices(("trans", "intrans", "comp", "ctrl"), (0.6, 0.25, 0.08, 0.07))[0]
            if rng.random() < 0.1:   # irregular: distinct past and participle
                self.verbs.append(_Verb(stem, frame, stem + "t", stem + "en"))
            else:
                self.verbs.append(_Verb(stem, frame, stem + "ed", stem + "ed"))
        self.adjectives = [fresh(("er", "est")) for _ in range(adjectives)]
        self.adverbs = [fresh(("ly",)) + "ly" for _ in range(adverbs)]
        self.names = [fresh(()).capitalize() for _ in range(names)]

        def by_topic(words):
            return [_Pool(words[t::_TOPICS], range(t, len(words), _TOPICS)) for t in range(_TOPICS)]

        self.noun_pools = by_topic(self.nouns)
        self.verb_pools = by_topic(self.verbs)
        self.adjective_pools = by_topic(self.adjectives)
        self.all_nouns = _Pool(self.nouns, range(len(self.nouns)))
        self.all_verbs = _Pool(self.verbs, range(len(self.verbs)))
        self.all_adjectives = _Pool(self.adjectives, range(len(self.adjectives)))
        self.adverb_pool = _Pool(self.adverbs, range(len(self.adverbs)))
        self.name_pool = _Pool(self.names, range(len(self.names)))
        self.closed = {key: _Pool(words, range(len(words))) for key, words in _CLOSED.items()}


class _Grammar:
    """Generates one tagged sentence per call; ``agr`` is "3sg" or "other" (agreement)."""

    def __init__(self, lexicon: _Lexicon, rng: random.Random):
        self.lex, self.rng = lexicon, rng

    def _p(self, p: float) -> bool:
        return self.rng.random() < p

    def _closed(self, key: str) -> str:
        return self.lex.closed[key].draw(self.rng)

    def _topical(self, pools, everything, topic):
        return (pools[topic] if self._p(_ON_TOPIC) else everything).draw(self.rng)

    def sentence(self) -> Tagged:
        topic = int(self.rng.random() * _TOPICS)
        r = self.rng.random()
        if r < 0.12:
            out = self._pp(topic, 1) + [(",", ",")] + self._clause(topic, 0)
        elif r < 0.22:
            out = self._clause(topic, 0) + [(",", ","), (self._closed("CC"), "CC")] + self._clause(topic, 1)
        else:
            out = self._clause(topic, 0)
        return out + [(".", ".")]

    def _clause(self, topic: int, depth: int) -> Tagged:
        subject, agr = self._np(topic, depth, subject=True)
        return subject + self._vp(topic, agr, depth)

    def _np(self, topic: int, depth: int, subject: bool) -> tuple[Tagged, str]:
        r = self.rng.random()
        if r < 0.12:   # pronoun
            if not subject:
                return [(self._closed("PRP_obj"), "PRP")], "other"
            agr = "3sg" if self._p(0.5) else "other"
            return [(self._closed(f"PRP_subj_{agr}"), "PRP")], agr
        if r < 0.22:   # a name, sometimes possessive: "Kelmar 's dog"
            name = [(self.lex.name_pool.draw(self.rng), "NNP")]
            if self._p(0.3):
                noun, agr = self._noun(topic)
                return name + [("'s", "POS")] + noun, agr
            return name, "3sg"
        if r < 0.28:   # "three dogs"
            noun = self._topical(self.lex.noun_pools, self.lex.all_nouns, topic)
            return [(self._closed("CD"), "CD"), (noun + "s", "NNS")], "other"
        head, agr = self._noun(topic)
        if r < 0.34:
            out = [(self._closed("PRP$"), "PRP$")]
        elif self._p(0.08):
            out = [("the", "DT"), (self._topical(self.lex.adjective_pools, self.lex.all_adjectives, topic) + "est", "JJS")]
        else:
            out = [(self._closed("DT_sg" if agr == "3sg" else "DT_pl"), "DT")]
        while len(out) < 3 and self._p(0.25):
            out.append((self._topical(self.lex.adjective_pools, self.lex.all_adjectives, topic), "JJ"))
        out += head
        if depth < _MAX_DEPTH:
            r = self.rng.random()
            if r < 0.14:
                out += self._pp(topic, depth + 1)
            elif r < 0.24:
                out += self._relative(topic, agr, depth + 1)
        return out, agr

    def _noun(self, topic: int) -> tuple[Tagged, str]:
        stem = self._topical(self.lex.noun_pools, self.lex.all_nouns, topic)
        return ([(stem, "NN")], "3sg") if self._p(0.6) else ([(stem + "s", "NNS")], "other")

    def _pp(self, topic: int, depth: int) -> Tagged:
        return [(self._closed("IN"), "IN")] + self._np(topic, _MAX_DEPTH, subject=False)[0]

    def _relative(self, topic: int, agr: str, depth: int) -> Tagged:
        if self._p(0.6):   # subject relative: the verb agrees with the head noun
            return [(self._closed("WDT"), "WDT"), ("*T*-1", "-NONE-")] + self._vp(topic, agr, depth)
        # object relative: "the cats (that | 0) the dog sees *T*-1"
        opener = [(self._closed("WDT"), "WDT")] if self._p(0.6) else [("0", "-NONE-")]
        subject, sub_agr = self._np(topic, _MAX_DEPTH, subject=True)
        verb = self._verb(topic, "trans")
        return opener + subject + [self._finite(verb, sub_agr), ("*T*-1", "-NONE-")]

    def _verb(self, topic: int, frame: str | None = None) -> _Verb:
        while True:
            verb = self._topical(self.lex.verb_pools, self.lex.all_verbs, topic)
            if frame is None or verb.frame == frame:
                return verb

    def _finite(self, verb: _Verb, agr: str) -> tuple[str, str]:
        if self._p(0.5):
            return (verb.past, "VBD")
        return (verb.third, "VBZ") if agr == "3sg" else (verb.stem, "VBP")

    def _be(self, agr: str) -> tuple[str, str]:
        if self._p(0.5):
            return ("was", "VBD") if agr == "3sg" else ("were", "VBD")
        return ("is", "VBZ") if agr == "3sg" else ("are", "VBP")

    def _vp(self, topic: int, agr: str, depth: int) -> Tagged:
        rng = self.rng
        verb = self._verb(topic)
        r = rng.random()
        if r < 0.1:        # copula + adjective
            adjective = self._topical(self.lex.adjective_pools, self.lex.all_adjectives, topic)
            pred = (adjective + "er", "JJR") if self._p(0.2) else (adjective, "JJ")
            return [self._be(agr)] + ([("very", "RB")] if self._p(0.2) else []) + [pred]
        if r < 0.18 and verb.frame == "trans":   # passive with its trace
            out = [self._be(agr), (verb.participle, "VBN"), ("*-1", "-NONE-")]
            if self._p(0.5):
                out += [("by", "IN")] + self._np(topic, _MAX_DEPTH, subject=False)[0]
            return out
        if r < 0.3:
            out = [(self._closed("MD"), "MD")] + ([("not", "RB")] if self._p(0.1) else []) + [(verb.stem, "VB")]
        elif r < 0.38:
            have = ("had", "VBD") if self._p(0.4) else (("has", "VBZ") if agr == "3sg" else ("have", "VBP"))
            out = [have, (verb.participle, "VBN")]
        elif r < 0.46:
            out = [self._be(agr), (verb.gerund, "VBG")]
        else:
            out = ([(self._closed("RB_fn"), "RB")] if self._p(0.08) else []) + [self._finite(verb, agr)]
        return out + self._complement(topic, verb, depth)

    def _complement(self, topic: int, verb: _Verb, depth: int) -> Tagged:
        frame = verb.frame
        if frame == "comp" and depth < _MAX_DEPTH:
            opener = ("that", "IN") if self._p(0.6) else ("0", "-NONE-")
            return [opener] + self._clause(topic, depth + 1)
        if frame == "ctrl":
            inner = self._verb(topic)
            inner = inner if inner.frame in ("trans", "intrans") else self._verb(topic, "trans")
            return [("to", "TO"), (inner.stem, "VB")] + self._complement(topic, inner, depth)
        if frame == "intrans":
            if self._p(0.3):
                return [(self.lex.adverb_pool.draw(self.rng), "RB")]
            return self._pp(topic, depth + 1) if self._p(0.3) else []
        out = self._np(topic, depth, subject=False)[0]   # transitive (and comp too deep)
        if self._p(0.1):
            out.append((self.lex.adverb_pool.draw(self.rng), "RB"))
        return out


def _stream(seed: int, split: str):
    """Endless tagged sentences of one split; the lexicon depends on the seed only."""
    grammar = _Grammar(_Lexicon(random.Random(seed)), random.Random(f"sparseseq-toy-{seed}-{split}"))
    while True:
        yield grammar.sentence()


def tagged_corpus(seed: int = 0) -> dict[str, list[Tagged]]:
    """Tagged sentences per split, ``TAGGED_SENTENCES`` of each; traces kept."""
    return {split: list(itertools.islice(_stream(seed, split), TAGGED_SENTENCES[split]))
            for split in SPLITS}


def lm_corpus(seed: int = 0) -> dict[str, list[list[str]]]:
    """Token sentences per split, about ``LM_TOKENS`` tokens each, without traces.

    As in Mikolov's PTB, valid/test words never seen in train are written ``<unk>``."""
    corpus = {}
    for split in SPLITS:
        sentences, count = [], 0
        for tagged in _stream(seed, split):
            tokens = [word for word, tag in tagged if tag != "-NONE-"]
            sentences.append(tokens)
            count += len(tokens)
            if count >= LM_TOKENS[split]:
                break
        corpus[split] = sentences
    known = {word for sentence in corpus["train"] for word in sentence}
    for split in ("valid", "test"):
        corpus[split] = [[w if w in known else UNK for w in s] for s in corpus[split]]
    return corpus


def write_lm_files(dest: Path, seed: int = 0) -> Path:
    """``train.txt``, ``valid.txt``, ``test.txt`` (one sentence a line) in ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for split, sentences in lm_corpus(seed).items():
        (dest / f"{split}.txt").write_text("".join(" ".join(s) + "\n" for s in sentences))
    return dest


def write_conll_files(dest: Path, seed: int = 0) -> Path:
    """``{train,valid,test}.conll`` (token TAB tag, blank line between sentences) and
    ``tags.txt`` in ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for split, sentences in tagged_corpus(seed).items():
        text = "".join("".join(f"{w}\t{t}\n" for w, t in s) + "\n" for s in sentences)
        (dest / f"{split}.conll").write_text(text)
    (dest / "tags.txt").write_text("".join(t + "\n" for t in TAGS))
    return dest
