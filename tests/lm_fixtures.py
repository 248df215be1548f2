"""Small corpora and configs for the language-model tests (no network, no shared data)."""
import random
from pathlib import Path

import yaml

WORDS = "the a cat dog sees eats runs big small red".split()


def write_corpus(folder: Path, lines=(240, 40, 40), seed=0) -> Path:
    """train/valid/test.txt of short random sentences over a ten-word vocabulary."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in zip(("train", "valid", "test"), lines):
        text = "".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))) + "\n"
                       for _ in range(n))
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


# SPEC 3.1 at V = 10,000: (recurrent, total)
TABLE_3_1 = {
    "awd-lstm": (20_211_600, 24_221_600),
    "awd-sparse": (19_812_900, 23_822_900),
    "recite-dense": (20_211_600, 24_221_600),
    "recite-dense-reduced": (5_058_300, 7_068_300),
    "recite-sparse1": (5_058_304, 7_068_304),
    "recite-sparse2": (5_060_160, 7_070_160),
}


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
