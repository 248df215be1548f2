"""``sparseseq count-params``: trainable parameters per component, and parity between presets.

The models are built on PyTorch's ``meta`` device (shapes only, no memory), from the same
code that trains them, so the counts are those of the real tensors; the per-layer windows
come from the layers' own geometry.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import torch

from sparseseq_cli.config import Config, LMConfig, POSConfig, Task, load_config
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.layers import SparseLSTM


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
    from sparseseq_cli.training.tagging import load_corpus
    corpus = load_corpus(cfg)
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
            from sparseseq_cli.training.lm import build_model
            model = build_model(cfg, vocab)
            emb = model.encoder
            count.parts.append(Part(f"embedding {vocab}x{emb.embedding_dim}", emb.geometry.params,
                                    dense=emb.geometry.dense_params))
            for i, rnn in enumerate(model.rnns):
                count.parts.append(_lstm_part(f"LSTM {i + 1}: {rnn.input_size} -> {rnn.hidden_size}", rnn))
            count.parts.append(Part("decoder bias", model.decoder_bias.numel()))
            mos = model.param_counts()["mos"]
            if mos:
                count.parts.append(Part(f"MoS ({model.n_experts} experts)", mos))
        else:
            from sparseseq_cli.training.tagging import build_tagger, tagger_params
            model = build_tagger(cfg, vocab, ntags)
            emb = model.embedding
            count.parts.append(Part(f"embedding {vocab}x{emb.embedding_dim}", emb.geometry.params,
                                    dense=emb.geometry.dense_params))
            for label, rnn in (("forward", model.bilstm.forward_lstm), ("reverse", model.bilstm.reverse_lstm)):
                count.parts.append(_lstm_part(f"BiLSTM {label}: {rnn.input_size} -> {rnn.hidden_size}", rnn))
            count.parts.append(Part(f"head ({ntags} tags)", tagger_params(model)["head"]))
        real_total = sum(p.numel() for p in model.parameters())
    if real_total != count.total:  # every parameter must belong to exactly one listed part
        raise AssertionError(f"count-params lists {count.total} of the model's {real_total} parameters")
    return count


def count_presets(presets: list[str], overrides: list[str], vocab_size: Optional[int]) -> list[ParamCount]:
    if vocab_size is not None and vocab_size < 1:
        raise SparseseqError(f"--vocab-size {vocab_size} must be at least 1")
    return [count_params(load_config(preset=name, overrides=overrides), vocab_size) for name in presets]


def parity(counts: list[ParamCount], tolerance: float) -> list[dict]:
    """Relative difference of each total to the first one's, and whether it is within tolerance."""
    base = counts[0].total
    return [{"preset": c.preset, "total": c.total, "relative_difference": (c.total - base) / base,
             "within_tolerance": abs(c.total - base) <= tolerance * base} for c in counts]


def print_counts(counts: list[ParamCount], tolerance: float, *, as_json: bool) -> bool:
    """Print the tables (or JSON); True when every total is within tolerance of the first."""
    if not 0 <= tolerance < 1:
        raise SparseseqError(f"--tolerance {tolerance} must be a fraction in [0, 1), e.g. 0.02 for 2%")
    rows = parity(counts, tolerance)
    ok = all(r["within_tolerance"] for r in rows)
    if as_json:
        print(json.dumps({"presets": [c.to_dict() for c in counts], "parity": rows,
                          "tolerance": tolerance, "parity_ok": ok}, indent=2))
        return ok
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for c in counts:
        table = Table(title=f"{c.preset} ({c.task}), vocabulary {c.vocab_size:,} from {c.vocab_source}",
                      caption="dense: with the zeros; target: the dense LSTM a reduction aimed at")
        table.add_column("component")
        # per recurrent layer: input density, and k input windows with their widths
        for col in ("density", "k x windows", "trainable", "dense", "target"):
            table.add_column(col, justify="right", no_wrap=True)
        for p in c.parts:
            windows = "" if p.windows is None else (
                f"{len(p.windows)}x{p.windows[0]}" if len(set(p.windows)) == 1
                else f"{len(p.windows)}x{min(p.windows)}-{max(p.windows)}")
            table.add_row(p.name, "" if p.density is None else f"{p.density:.4f}", windows, f"{p.trainable:,}",
                          "" if p.dense is None else f"{p.dense:,}", "" if p.target is None else f"{p.target:,}")
        table.add_row("total", "", "", f"{c.total:,}", "", "", style="bold")
        console.print(table)
    if len(counts) > 1:
        table = Table(title=f"parity (tolerance {tolerance:.1%} of the first)")
        table.add_column("preset")
        for col in ("total", "difference to first", "within tolerance"):
            table.add_column(col, justify="right", no_wrap=True)
        for r in rows:
            table.add_row(r["preset"], f"{r['total']:,}", f"{r['relative_difference']:+.2%}",
                          "yes" if r["within_tolerance"] else "NO")
        console.print(table)
    return ok
