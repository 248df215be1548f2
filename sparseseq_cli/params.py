"""``sparseseq count-params``: trainable parameters per component, and parity between presets.

The models are built on PyTorch's ``meta`` device (shapes only, no memory), from the same
classes that train them, so the counts are those of the real tensors; the per-layer
windows come from the layers' own geometry. Without presets the command shows the paper's
parity groups (:data:`PAPER_GROUPS`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import torch

from sparseseq_cli.config import Config, LMConfig, POSConfig, load_config
from sparseseq_cli.corpora.conll import load_tagged_corpus
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.layers import SparseLSTM
from sparseseq_cli.models.language_model import LanguageModel
from sparseseq_cli.models.tagger import Tagger
from sparseseq_cli.tasks import Task

# The presets the paper gives at equal parameter counts, each group compared to its first.
# Table 3's ~7.07M models are compared to the dense reduced one; recite-dense, its 24M
# reference, has awd-lstm's counts (Table 1) and is left out.
PAPER_GROUPS = {"Table 1": ("awd-lstm", "awd-sparse"),
                "Table 3": ("recite-dense-reduced", "recite-sparse1", "recite-sparse2")}


@dataclass
class Part:
    name: str
    trainable: int
    dense: Optional[int] = None      # the dense-equivalent count (same dimensions, zeros trained)
    target: Optional[int] = None     # the dense LSTM a reduce_in/reduce_out fraction aimed at
    k: Optional[int] = None
    density: Optional[float] = None
    windows: Optional[list[int]] = None


@dataclass
class ParamCount:
    preset: str
    task: str
    vocab_size: int
    vocab_source: str
    parts: list[Part] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(p.trainable for p in self.parts)

    def to_dict(self) -> dict:
        return {"preset": self.preset, "task": self.task, "vocab_size": self.vocab_size,
                "vocab_source": self.vocab_source, "total": self.total,
                "parts": [asdict(p) for p in self.parts]}


@dataclass
class ParityGroup:
    """Presets counted together; every total is compared to the first one's."""
    counts: list[ParamCount]
    tolerance: float
    table: Optional[str] = None      # the paper's table the group comes from (no presets given)

    @property
    def parity(self) -> list[dict]:
        """Relative difference of each total to the first one's, and whether it is within tolerance."""
        base = self.counts[0].total
        return [{"preset": c.preset, "total": c.total, "relative_difference": (c.total - base) / base,
                 "within_tolerance": abs(c.total - base) <= self.tolerance * base} for c in self.counts]

    @property
    def ok(self) -> bool:
        return all(row["within_tolerance"] for row in self.parity)

    def to_dict(self) -> dict:
        table = {} if self.table is None else {"table": self.table}
        return {**table, "presets": [c.to_dict() for c in self.counts], "parity": self.parity,
                "tolerance": self.tolerance, "parity_ok": self.ok}


def _data_sizes(cfg: Config) -> Optional[tuple[int, int, str]]:
    """(vocabulary size, number of tags, where from) read from the data, if it is there."""
    path = cfg.data.path
    if not path.startswith("builtin:") and not Path(path).is_dir():
        return None
    if isinstance(cfg, LMConfig):
        from sparseseq_cli.corpora.lm_data import load_lm_corpus
        corpus = load_lm_corpus(path, cfg.data.vocab_order, corpus_seed=cfg.data.corpus_seed)
        return len(corpus.vocab), 0, f"data {corpus.source}"
    from sparseseq_cli.corpora.tag_batches import build_vocabulary
    corpus = load_tagged_corpus(path, cfg.data.corpus_seed)
    return len(build_vocabulary(corpus.train, cfg.data.vocab_order)), len(corpus.tags), f"data {path}"


def _sizes(cfg: Config, vocab_size: Optional[int]) -> tuple[int, int, str]:
    from sparseseq_cli.corpora.treebank import ORIGINAL_EXTRA_TAGS, PENN_TAGS
    wsj_tags = len(PENN_TAGS) + len(ORIGINAL_EXTRA_TAGS)
    if vocab_size is not None:
        found = _data_sizes(cfg) if isinstance(cfg, POSConfig) else None
        return vocab_size, found[1] if found else wsj_tags, "--vocab-size"
    found = _data_sizes(cfg)
    if found is not None:
        return found
    if cfg.data.vocab_size is not None:
        return cfg.data.vocab_size, wsj_tags, f"preset (data.vocab_size; {cfg.data.path} not found)"
    raise SparseseqError(f"vocabulary size of {cfg.preset or 'this config'} unknown: {cfg.data.path} "
                         f"is not there and the preset gives no data.vocab_size; install the data "
                         f"(sparseseq getdata) or pass --vocab-size N")


def _lstm_part(name: str, rnn: SparseLSTM, directions: int = 1) -> Part:
    g = rnn.geometry
    target = g.target_params * directions if g.target_params is not None and g.k > 1 else None
    return Part(name, g.params * directions, dense=g.dense_params * directions, target=target,
                k=g.k, density=g.density, windows=list(g.input_widths))


def count_params(cfg: Config, vocab_size: Optional[int] = None) -> ParamCount:
    """Parameters of the model ``cfg`` describes, per component."""
    vocab, ntags, source = _sizes(cfg, vocab_size)
    count = ParamCount(cfg.preset or "config", cfg.task.value, vocab, source)
    with torch.device("meta"):
        if cfg.task is Task.LM:
            model = LanguageModel.from_config(cfg.model, vocab)
            counts = model.param_counts()
            emb = model.encoder
            rnns = [(f"LSTM {i + 1}", rnn) for i, rnn in enumerate(model.rnns)]
            tail = [Part("decoder bias", counts["decoder_bias"])]
            if counts["mos"]:
                tail.append(Part(f"MoS ({model.n_experts} experts)", counts["mos"]))
        else:
            model = Tagger.from_config(cfg.model, vocab, ntags)
            counts = model.param_counts()
            emb = model.embedding
            rnns = [("BiLSTM forward", model.bilstm.forward_lstm), ("BiLSTM reverse", model.bilstm.reverse_lstm)]
            tail = [Part(f"head ({ntags} tags)", counts["head"])]
    count.parts.append(Part(f"embedding {vocab}x{emb.embedding_dim}", counts["embedding"],
                            dense=counts["embedding_dense"]))
    count.parts += [_lstm_part(f"{name}: {rnn.input_size} -> {rnn.hidden_size}", rnn) for name, rnn in rnns]
    count.parts += tail
    if counts["total"] != count.total:  # every parameter must belong to exactly one listed part
        raise AssertionError(f"count-params lists {count.total} of the model's {counts['total']} parameters")
    return count


def count_presets(presets: list[str], overrides: list[str], vocab_size: Optional[int],
                  tolerance: float = 0.02) -> list[ParityGroup]:
    """The given presets as one group; no presets: the paper's groups."""
    if vocab_size is not None and vocab_size < 1:
        raise SparseseqError(f"--vocab-size {vocab_size} must be at least 1")
    if not 0 <= tolerance < 1:
        raise SparseseqError(f"--tolerance {tolerance} must be a fraction in [0, 1), e.g. 0.02 for 2%")
    groups = {None: presets} if presets else PAPER_GROUPS
    return [ParityGroup([count_params(load_config(preset=name, overrides=overrides), vocab_size)
                         for name in names], tolerance, table)
            for table, names in groups.items()]


def parity_record(groups: list[ParityGroup]) -> dict:
    """``--json``'s object: the one group of the presets given, or the paper's groups together."""
    if len(groups) == 1 and groups[0].table is None:
        return groups[0].to_dict()
    return {"groups": [g.to_dict() for g in groups], "tolerance": groups[0].tolerance,
            "parity_ok": all(g.ok for g in groups)}
