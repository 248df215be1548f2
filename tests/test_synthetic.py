"""The built-in synthetic corpus: reproducible, Zipf-like, structured, consistently tagged."""
import collections
import math
import random

import pytest

from sparseseq_cli.corpora import synthetic


@pytest.fixture(scope="module")
def lm():
    return synthetic.lm_corpus(0)


@pytest.fixture(scope="module")
def tagged():
    return synthetic.tagged_corpus(0)


def test_same_seed_same_corpus_and_global_rng_untouched(lm, tagged):
    random.seed(7)
    state = random.getstate()
    assert synthetic.lm_corpus(0) == lm
    assert synthetic.tagged_corpus(0) == tagged
    assert random.getstate() == state


def test_different_seeds_differ(lm):
    other = synthetic.lm_corpus(1)
    assert other["train"][:50] != lm["train"][:50]
    assert set(w for s in other["train"] for w in s) != set(w for s in lm["train"] for w in s)


def test_sizes(lm, tagged):
    for split, target in synthetic.LM_TOKENS.items():
        count = sum(map(len, lm[split]))
        assert target <= count < target + 100
    assert {k: len(v) for k, v in tagged.items()} == synthetic.TAGGED_SENTENCES


def test_lm_splits_are_the_tagged_sentences_without_traces(lm, tagged):
    for split in synthetic.SPLITS:
        assert len(lm[split]) > len(tagged[split])
        for words, pairs in zip(lm[split], tagged[split]):
            if split == "train":   # valid/test words outside train became <unk>
                assert words == [w for w, t in pairs if t != "-NONE-"]
            else:
                assert len(words) == sum(t != "-NONE-" for _, t in pairs)


def test_valid_and_test_words_outside_train_are_unk(lm):
    known = {w for s in lm["train"] for w in s}
    for split in ("valid", "test"):
        words = {w for s in lm[split] for w in s}
        assert synthetic.UNK in words
        assert words - known == {synthetic.UNK}


def test_zipf_like_frequencies(lm):
    counts = sorted(collections.Counter(w for s in lm["train"] for w in s).values(), reverse=True)
    assert 2000 <= len(counts) <= 10000
    ranks = range(10, 1000)
    xs = [math.log(r + 1) for r in ranks]
    ys = [math.log(counts[r]) for r in ranks]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    assert -1.6 < slope < -0.8
    assert sum(c == 1 for c in counts) > 0.2 * len(counts)   # a long tail of rare words


def test_bigram_perplexity_far_below_unigram(lm):
    def stream(split):
        return [w for s in lm[split] for w in s + ["<eos>"]]

    train, valid = stream("train"), stream("valid")
    unigram = collections.Counter(train)
    bigram = collections.Counter(zip(train, train[1:]))
    total, size = len(train), len(unigram) + 1

    def p_uni(w):
        return (unigram[w] + 1) / (total + size)

    def p_bi(a, b):  # interpolated with the unigram so unseen pairs keep some mass
        return 0.7 * bigram[(a, b)] / max(unigram[a], 1) + 0.3 * p_uni(b)

    uni = math.exp(-sum(math.log(p_uni(w)) for w in valid[1:]) / (len(valid) - 1))
    bi = math.exp(-sum(math.log(p_bi(a, b)) for a, b in zip(valid, valid[1:])) / (len(valid) - 1))
    assert bi < 0.6 * uni


def test_tags_are_ptb_and_traces_consistent(tagged):
    pairs = [p for split in tagged.values() for s in split for p in s]
    assert {t for _, t in pairs} == set(synthetic.TAGS)
    assert {w for w, t in pairs if t == "-NONE-"} == set(synthetic.TRACES)
    assert all(t == "-NONE-" for w, t in pairs if w in synthetic.TRACES)
    assert all(s[-1] == (".", ".") for split in tagged.values() for s in split)


def test_tagging_needs_context(tagged):
    tags_of = collections.defaultdict(collections.Counter)
    for s in tagged["train"]:
        for w, t in s:
            tags_of[w][t] += 1
    assert {"DT", "WDT", "IN"} <= set(tags_of["that"])
    assert {"PRP", "PRP$"} <= set(tags_of["her"])
    ambiguous = [w for w, c in tags_of.items() if len(c) > 1]
    assert len(ambiguous) >= 50
    tokens = sum(sum(c.values()) for c in tags_of.values())
    lookup = sum(c.most_common(1)[0][1] for c in tags_of.values()) / tokens
    assert lookup < 0.98


def test_subject_pronouns_agree_with_the_verb(tagged):
    checked = 0
    for s in tagged["train"]:
        for (w, _), (_, t) in zip(s, s[1:]):
            if t in ("VBZ", "VBP") and w in ("he", "she", "they", "we"):
                assert t == ("VBZ" if w in ("he", "she") else "VBP")
                checked += 1
    assert checked > 50


def test_writers_use_the_dataset_formats(tmp_path):
    synthetic.write_lm_files(tmp_path / "lm", seed=3)
    lines = (tmp_path / "lm" / "valid.txt").read_text().splitlines()
    assert [line.split() for line in lines] == synthetic.lm_corpus(3)["valid"]
    synthetic.write_conll_files(tmp_path / "pos", seed=3)
    text = (tmp_path / "pos" / "test.conll").read_text()
    sentences = [[tuple(line.split("\t")) for line in block.splitlines()]
                 for block in text.strip("\n").split("\n\n")]
    assert sentences == synthetic.tagged_corpus(3)["test"]
    assert (tmp_path / "pos" / "tags.txt").read_text().split() == list(synthetic.TAGS)
