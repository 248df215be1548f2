"""Validation of a resolved configuration: value ranges, and sparse settings the layers can build.

Both refuse with a one-line error that names the config keys to change.
"""
from __future__ import annotations

from sparseseq_cli.config.schema import Config, LMConfig
from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.layers.geometry import embedding_geometry, lstm_geometry
from sparseseq_cli.models.sparse_modes import lstm_stack


def check_config(cfg: Config) -> None:
    _check_range(cfg)
    _check_sparse(cfg)


def _check_range(cfg: Config) -> None:
    def need(ok: bool, key: str, rule: str) -> None:
        if not ok:
            section, name = key.split(".")
            value = getattr(getattr(cfg, section), name)
            raise SparseseqError(f"{key}={value} is out of range: it must be {rule}")

    m, t = cfg.model, cfg.train
    positive_ints = ["model.emsize", "model.nhid", "model.emblocks", "train.epochs", "train.batch_size"]
    if isinstance(cfg, LMConfig):
        positive_ints += ["model.nlayers", "model.n_experts", "train.eval_batch_size",
                          "train.test_batch_size", "train.bptt", "train.log_interval",
                          "train.asgd_patience"]
        need(m.nhidlast is None or m.nhidlast >= 1, "model.nhidlast", ">= 1 (or null: emsize)")
        need(t.max_seq_len_delta >= 0, "train.max_seq_len_delta", ">= 0")
        need(t.nonmono >= 0, "train.nonmono", ">= 0")
        need(t.finetune_min_epochs >= 0, "train.finetune_min_epochs", ">= 0")
        need(t.clip >= 0, "train.clip", ">= 0 (0 = no clipping)")
        need(t.alpha >= 0, "train.alpha", ">= 0")
        need(t.beta >= 0, "train.beta", ">= 0")
        need(0 < t.lr_gamma <= 1, "train.lr_gamma", "in (0, 1]")
        need(0 < t.memorize_eps < 1, "train.memorize_eps", "in (0, 1)")
        need(0 < m.sparse_fract <= 1, "model.sparse_fract", "in (0, 1]")
        need(m.dropoutl is None or 0 <= m.dropoutl < 1, "model.dropoutl", "in [0, 1) (or null: dropouth)")
        for name in ("dropout", "dropouth", "dropouti", "dropoute", "wdrop"):
            need(0 <= getattr(m, name) < 1, f"model.{name}", "in [0, 1)")
    else:
        positive_ints.append("train.eval_batch_size")
        for name in ("dropouth", "dropouti", "dropoute", "wdrop"):
            need(0 <= getattr(m, name) < 1, f"model.{name}", "in [0, 1)")
    for key in positive_ints:
        section, name = key.split(".")
        need(getattr(getattr(cfg, section), name) >= 1, key, ">= 1")
    need(t.lr > 0, "train.lr", "> 0")
    # seeds reach torch's C code, which takes 64-bit integers
    need(0 <= t.seed < 2 ** 63, "train.seed", "in [0, 2**63)")
    need(0 <= cfg.data.corpus_seed < 2 ** 63, "data.corpus_seed", "in [0, 2**63)")
    need(t.momentum >= 0, "train.momentum", ">= 0")
    need(t.wdecay >= 0, "train.wdecay", ">= 0")
    need(t.max_batches is None or t.max_batches >= 1, "train.max_batches", ">= 1 (or null: all)")


def _check_sparse(cfg: Config) -> None:
    """Refuse sparse settings the layers could not build, naming the config keys."""
    m = cfg.model
    try:
        # the block geometry's validity does not depend on the vocabulary size
        embedding_geometry(10_000, m.emsize, blocks=m.emblocks, density=m.emdensity)
    except ValueError as err:
        raise SparseseqError(f"model.emblocks={m.emblocks}, model.emdensity={m.emdensity} are "
                             f"infeasible: {err}") from None
    if not isinstance(cfg, LMConfig):
        return
    nhidlast = m.emsize if m.nhidlast is None else m.nhidlast
    try:
        stack = lstm_stack(m.emsize, m.nhid, nhidlast, m.nlayers, m.sparse_mode, m.sparse_fract)
    except ValueError as err:
        raise SparseseqError(f"model.sparse_mode={m.sparse_mode.value} with model.nlayers="
                             f"{m.nlayers}: {err}") from None
    for i, spec in enumerate(stack):
        try:
            lstm_geometry(spec.input_size, spec.hidden_size,
                          reduce_in=spec.reduce_in, reduce_out=spec.reduce_out)
        except ValueError as err:
            raise SparseseqError(
                f"model.sparse_fract={m.sparse_fract} is infeasible for LSTM layer {i} "
                f"({spec.input_size} -> {spec.hidden_size}) in sparse_mode {m.sparse_mode.value}: "
                f"{err}; raise sparse_fract") from None
