"""Small corpora and configs for the language-model tests (no network, no shared data).

Behind the fixtures make_lm_corpus, lm_corpus, make_lm_config, table_3_1, stop_after and
script_validation of tests/conftest.py; test modules use those fixtures, not this module.
"""
import random
from pathlib import Path

import yaml

from sparseseq_cli.training import lm_loop, lm_phases

WORDS = "the a cat dog sees eats runs big small red".split()


def _random_sentence(rng: random.Random) -> list[str]:
    return [rng.choice(WORDS) for _ in range(rng.randint(3, 8))]


def _grammatical_sentence(rng: random.Random) -> list[str]:
    """determiner [adjective] noun verb determiner [adjective] noun: each word narrows the
    next one's choices, so a model that learns beats the unigram baseline by far."""
    def phrase():
        adjective = [rng.choice(("big", "small", "red"))] if rng.random() < 0.5 else []
        return [rng.choice(("the", "a")), *adjective, rng.choice(("cat", "dog"))]

    return [*phrase(), rng.choice(("sees", "eats", "runs")), *phrase()]


def write_corpus(folder: Path, lines=(240, 40, 40), seed=0, grammatical=False) -> Path:
    """train/valid/test.txt of short sentences over a ten-word vocabulary: random words
    (nothing to learn beyond sentence length), or ``grammatical`` ones."""
    rng = random.Random(seed)
    sentence = _grammatical_sentence if grammatical else _random_sentence
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in zip(("train", "valid", "test"), lines):
        text = "".join(" ".join(sentence(rng)) + "\n" for _ in range(n))
        (folder / f"{split}.txt").write_text(text)
    return folder


def write_config(path: Path, data: Path, **train) -> Path:
    """A tiny sparse 2-layer model; ``train`` keys override the train section."""
    config = {
        "task": "lm",
        "data": {"path": str(data)},
        "model": {"emsize": 8, "nhid": 16, "nlayers": 2, "dropout": 0.1, "dropouth": 0.1,
                  "dropouti": 0.1, "dropoute": 0.1, "wdrop": 0.1, "emblocks": 2, "emdensity": 0.75,
                  "sparse_mode": "sparse_hidden", "sparse_fract": 0.5},
        "train": {"lr": 5.0, "epochs": 2, "batch_size": 4, "eval_batch_size": 2, "bptt": 8,
                  "seed": 3, "log_interval": 5, **train},
    }
    path.write_text(yaml.safe_dump(config))
    return path


# the presets table of docs/training.md at V = 10,000: (recurrent, total)
TABLE_3_1 = {
    "awd-lstm": (20_211_600, 24_221_600),
    "awd-sparse": (19_812_900, 23_822_900),
    "recite-dense": (20_211_600, 24_221_600),
    "recite-dense-reduced": (5_058_300, 7_068_300),
    "recite-sparse1": (5_058_304, 7_068_304),
    "recite-sparse2": (5_060_160, 7_070_160),
}


_EVALUATE = lm_loop.evaluate   # the real one, whatever a test has patched in since


def script_validation(monkeypatch, losses) -> None:
    """Replace validation losses by ``losses`` (in order); training and testing still run
    for real."""
    script = list(losses)

    def evaluate(model, data, bptt, **kw):
        if kw.get("description") == "valid":
            return script.pop(0), 1
        return _EVALUATE(model, data, bptt, **kw)

    monkeypatch.setattr(lm_phases, "evaluate", evaluate)


class StopAfter:
    """A StopRequest whose Ctrl-C arrives at the n-th check (one check per batch)."""

    def __init__(self, n):
        self.n, self.checks = n, 0

    @property
    def requested(self):
        self.checks += 1
        return self.checks > self.n

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None
