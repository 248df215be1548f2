"""Runs grouped: the numbers behind `sparseseq report`.

A run folder (docs/formats.md) holds its config from the first step on and its results
only once the phase finished; finetuning adds its own results and metrics files. Finished
runs whose resolved configs differ only in the seed (or that agree on the ``--group-by``
keys) form a group; each group gets the mean and the *sample* standard deviation (n - 1)
of every number in its results. A group of one run has no standard deviation (``None``:
null in JSON, blank in CSV, left out of the tables). Unfinished runs are listed apart and
left out of the means, and so are diverged runs (results.json with ``"status": "diverged"``).
Reading the folders, and skipping damaged ones, is :mod:`reading`'s.
"""
from __future__ import annotations

import difflib
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.tasks import Phase

# The phases whose results the report shows, in the paper's order (Table 1, Table 3,
# Figure 3); finetuning is read along with the training it continues.
PHASES = (Phase.TRAIN_LM, Phase.OVERFIT, Phase.TRAIN_POS)

# Config entries that say how a run was made, not what was trained: runs that differ
# only in these are repetitions of one setting.
_NOT_SETTING = {"train.seed", "train.log_interval", "log.tensorboard"}

# The run-level numbers of results.json besides its metrics.
_RUN_NUMBERS = ("epochs", "wall_time_s", "tokens_per_s")

# The per-epoch numbers the learning curves draw (--curves), by the kind of run.
CURVE_METRICS = ("valid_ppl", "dev_acc", "train_ppl")


@dataclass(frozen=True)
class Divergence:
    """Where a run's loss stopped being finite, as its results file records it."""

    stage: str          # "training" or "finetuning"
    phase: Phase
    epoch: int
    batch: int | None   # None: not known (e.g. during validation)
    where: str          # "training" or "validation": which loss


@dataclass
class Run:
    """One run folder as read from disk; ``results`` is None until the run finished."""

    path: Path
    config: dict
    results: dict | None
    finetune: dict | None
    metrics: list[dict]                  # the per-epoch records of training
    finetune_metrics: list[dict] | None  # those of finetuning; None: it never started
    diverged: Divergence | None = None   # training diverged (results None) or finetuning did

    @property
    def preset(self) -> str:
        return str(self.config.get("preset") or self.path.name)

    @property
    def seed(self) -> int | None:
        return (self.config.get("train") or {}).get("seed")

    @property
    def phase(self) -> Phase | None:
        return Phase(self.results["phase"]) if self.results else None

    @property
    def epochs_done(self) -> int:
        return len(self.metrics)

    @property
    def finetune_epochs_done(self) -> int | None:
        return None if self.finetune_metrics is None else len(self.finetune_metrics)

    def numbers(self) -> dict[str, float | None]:
        """Every number of the finished run under one flat name (finetuning prefixed)."""
        out: dict[str, float | None] = {}
        for part, count in self.results["params"].items():
            out[f"params_{part}"] = count
        out.update(_numbers(self.results))
        if self.finetune:
            out.update({f"finetune_{k}": v for k, v in _numbers(self.finetune).items()})
        return out


@dataclass
class Stat:
    mean: float | None
    std: float | None   # sample standard deviation; None for fewer than two values
    n: int              # how many runs had this number


@dataclass
class Group:
    phase: Phase
    label: str
    setting: dict[str, Any]   # what tells this group from the others shown with it
    runs: list[Run]
    stats: dict[str, Stat] = field(default_factory=dict)

    @property
    def presets(self) -> list[str]:
        return sorted({run.preset for run in self.runs})


@dataclass(frozen=True)
class Skipped:
    """A folder given to report that could not be used, and why (one line)."""

    path: Path
    problem: str


@dataclass
class Report:
    runs: list[Run]         # every run read, in the order given
    groups: list[Group]
    unfinished: list[Run]   # training or finetuning without its results file
    diverged: list[Run] = field(default_factory=list)   # training or finetuning diverged
    skipped: list[Skipped] = field(default_factory=list)   # folders that could not be used


def _numbers(results: dict) -> dict[str, float | None]:
    out = {k: v for k, v in results["metrics"].items() if _is_number(v) or v is None}
    out.update({k: results.get(k) for k in _RUN_NUMBERS})
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def summarize(values: list[float | None]) -> Stat:
    """Mean and sample standard deviation (n - 1) of the values that are not None."""
    present = [v for v in values if v is not None]
    if not present:
        return Stat(None, None, 0)
    std = None
    if len(present) > 1:
        # statistics.stdev fails on inf and nan (Python 3.11): a perplexity can be inf
        std = statistics.stdev(present) if all(map(math.isfinite, present)) else math.nan
    return Stat(statistics.fmean(present), std, len(present))


# ---- grouping ----------------------------------------------------------------------------

def flatten(config: dict, prefix: str = "") -> dict[str, Any]:
    """{"model": {"nhid": 10}} -> {"model.nhid": 10}; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def setting(config: dict) -> dict[str, Any]:
    """The flat config without the seed (and log interval): what a run trained."""
    return {k: v for k, v in flatten(config).items() if k not in _NOT_SETTING}


def resolve_keys(keys: list[str], runs: list[Run]) -> list[str]:
    """Turn --group-by keys (dotted, or bare when unambiguous) into dotted config keys."""
    known: dict[str, None] = {}
    for run in runs:
        known.update(dict.fromkeys(flatten(run.config)))
    resolved = []
    for key in keys:
        if key in known:
            resolved.append(key)
            continue
        matches = [k for k in known if k.rsplit(".", 1)[-1] == key]
        if len(matches) == 1:
            resolved.append(matches[0])
        elif matches:
            raise SparseseqError(f"--group-by {key} is ambiguous: use one of {', '.join(matches)}")
        else:
            close = difflib.get_close_matches(key, list(known) + [k.rsplit(".", 1)[-1] for k in known], n=3)
            hint = f"did you mean {' or '.join(close)}?" if close else "use a config key such as model.emsize"
            raise SparseseqError(f"--group-by {key}: no run's config has that key; {hint}")
    return resolved


def _sort_value(value: Any) -> tuple:
    # Numbers in numeric order, then everything else as text: emsize 5 before emsize 10.
    return (0, value, "") if _is_number(value) else (1, 0, json.dumps(value, sort_keys=True, default=str))


def _label(values: dict[str, Any]) -> str:
    leaves = [k.rsplit(".", 1)[-1] for k in values]
    parts = []
    for key, value in values.items():
        short = key.rsplit(".", 1)[-1]
        name = short if leaves.count(short) == 1 else key
        parts.append(f"{name}={json.dumps(value) if isinstance(value, (list, dict)) else value}")
    return " ".join(parts)


def _varying(settings: list[dict[str, Any]]) -> list[str]:
    """The keys whose values are not the same in all the given settings, in config order."""
    keys: dict[str, None] = {}
    for s in settings:
        keys.update(dict.fromkeys(s))
    return [k for k in keys if len({json.dumps(s.get(k), sort_keys=True, default=str) for s in settings}) > 1]


def group_runs(runs: list[Run], group_by: list[str] | None = None) -> list[Group]:
    """Group finished runs per phase: by setting (all but the seed), or by the given keys.

    A default group is labelled by its preset plus the settings in which it differs from
    the other groups of that preset (``pos-tiny emsize=10``), so a sweep reads at a glance.
    """
    finished = [run for run in runs if run.results]
    keys = resolve_keys(group_by, runs) if group_by else None
    by_ident: dict[tuple[Phase, str], Group] = {}
    for run in finished:
        if keys:
            flat = flatten(run.config)
            values = {k: flat.get(k) for k in keys}
        else:
            values = setting(run.config)
        ident = (run.phase, json.dumps(values, sort_keys=True, default=str))
        if ident not in by_ident:
            by_ident[ident] = Group(phase=run.phase, label=_label(values) if keys else run.preset,
                                    setting=values, runs=[])
        by_ident[ident].runs.append(run)

    groups = list(by_ident.values())
    if not keys:
        _label_by_preset(groups)
    for group in groups:
        numbers = [run.numbers() for run in group.runs]
        names = dict.fromkeys(name for nums in numbers for name in nums)
        group.stats = {name: summarize([nums.get(name) for nums in numbers]) for name in names}

    preset_order = {run.preset: i for i, run in reversed(list(enumerate(finished)))}
    # Default groups keep their presets in the order given; --group-by groups sort by value.
    groups.sort(key=lambda g: (PHASES.index(g.phase), 0 if keys else preset_order[g.runs[0].preset],
                               [_sort_value(v) for v in g.setting.values()]))
    return groups


def _label_by_preset(groups: list[Group]) -> None:
    """Name each group by its preset and the settings that tell it from its siblings."""
    siblings: dict[tuple[Phase, str], list[Group]] = {}
    for group in groups:
        siblings.setdefault((group.phase, group.runs[0].preset), []).append(group)
    for (_, preset), members in siblings.items():
        varying = _varying([g.setting for g in members])
        for group in members:
            group.setting = {k: group.setting.get(k) for k in varying}
            group.label = " ".join(filter(None, [preset, _label(group.setting)]))
