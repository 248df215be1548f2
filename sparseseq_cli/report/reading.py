"""Run folders read back for `sparseseq report`, every field the report uses checked.

A run folder comes from disk and may be damaged, half written or hand-edited: each is read
on its own, and one that cannot be used is *skipped* with the reason (a :class:`Skipped`),
never a traceback and never the end of the report. Fields are checked where the report uses
them: ``params`` a mapping of part name -> integer count, ``metrics`` a mapping (no integer
in it too large for a float), ``epochs`` a number, the seed an integer or null, ``config`` a mapping whose
``data``/``model``/``train`` sections are mappings with text keys; a metrics file's
``epoch`` an integer and its curve values numbers.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.report.groups import CURVE_METRICS, PHASES, Divergence, Report, Run, Skipped, group_runs
from sparseseq_cli.report.tables import visible
from sparseseq_cli.run_folder import CONFIG, FINETUNE, TRAIN, RunFolder
from sparseseq_cli.tasks import Phase

_SECTIONS = ("data", "model", "train", "log")
_MAX_DEPTH = 8            # a config is section -> key -> value (a list at most): far less
_MAX_INT = 2 ** 63        # beyond this an "integer" is not a count, and float() of it fails
_WHERE = ("training", "validation")


_LISTED = 3               # skipped folders named in the error when none could be used


class _Bad(Exception):
    """A field the report cannot use; the message names the file and the field."""


def build_report(paths: list[Path], group_by: list[str] | None = None) -> Report:
    """Read the run folders (skipping the unusable ones) and group their results.

    When no folder given can be used, that is one error naming them (the first few).
    """
    if not paths:
        raise SparseseqError("no run folders given: e.g. sparseseq report runs/pos-tiny-seed*")
    runs, skipped = read_runs(paths)
    if not runs:
        named = "; ".join(f"{s.path}: {s.problem}" for s in skipped[:_LISTED])
        more = f"; and {len(skipped) - _LISTED} more" if len(skipped) > _LISTED else ""
        what = "" if len(skipped) == 1 else f"none of the {len(skipped)} folders given can be reported on: "
        raise SparseseqError(visible(f"{what}{named}{more}"))
    diverged = [run for run in runs if run.diverged]
    unfinished = [run for run in runs if not run.diverged and (
        not run.results or (run.finetune_epochs_done is not None and not run.finetune))]
    return Report(runs=runs, groups=group_runs(runs, group_by), unfinished=unfinished,
                  diverged=diverged, skipped=skipped)


def read_runs(paths: list[Path]) -> tuple[list[Run], list[Skipped]]:
    """Each folder read once, in the order given: the runs, and the folders skipped."""
    seen: set[str] = set()
    runs, skipped = [], []
    for path in paths:
        key = os.path.realpath(path)  # unlike Path.resolve, never raises on a link loop
        if key in seen:
            continue
        seen.add(key)
        try:
            runs.append(read_run(path))
        except (SparseseqError, _Bad) as err:
            skipped.append(Skipped(path, _relative(str(err), path)))
        except RecursionError:  # json and yaml parse recursively: thousands of nested brackets
            skipped.append(Skipped(path, "a file in it is nested too deeply to be sparseseq's"))
    return runs, skipped


def _relative(problem: str, path: Path) -> str:
    """The problem without the folder's own path in front of its file names (the skip
    line names the folder already)."""
    problem = problem.replace(f"{path}{os.sep}", "")
    for start in (f"{path}: ", f"{path} "):
        if problem.startswith(start):
            return problem[len(start):]
    return problem


def read_run(path: Path) -> Run:
    """Read and check one run folder; what makes it unusable is a one-line error."""
    if not path.exists():
        raise SparseseqError(f"{path} does not exist: give run folders (e.g. runs/pos-tiny-seed1)")
    training, finetuning = RunFolder(path, TRAIN), RunFolder(path, FINETUNE)
    # config.yaml is written before the first step, results.json at the end: either makes
    # the folder a run (an unfinished one without results)
    if not path.is_dir() or not ((path / CONFIG).is_file() or training.finished()):
        raise SparseseqError(f"{path} is not a run folder (no {CONFIG} or {TRAIN.results}): "
                             f"give folders written by train-lm, overfit or train-pos")
    results = _read_results(training, PHASES)
    config = results["config"] if results else training.read_config_dict()
    _check_config(config, TRAIN.results if results else CONFIG)
    diverged = _divergence(results, "training")
    finetune = _read_results(finetuning, (Phase.FINETUNE_LM,)) if results and not diverged else None
    if finetune is not None and finetune.get("status") == "diverged":
        diverged, finetune = _divergence(finetune, "finetuning"), None
    return Run(path=path, config=config, results=None if diverged and diverged.stage == "training" else results,
               finetune=finetune,
               metrics=_check_metrics(training.read_metrics(), TRAIN.metrics),
               finetune_metrics=(_check_metrics(finetuning.read_metrics(), FINETUNE.metrics)
                                 if finetuning.metrics_started() else None),
               diverged=diverged)


def _read_results(folder: RunFolder, phases: tuple[Phase, ...]) -> dict | None:
    """The phase's results, checked to be sparseseq's, of one of ``phases``, and usable."""
    data = folder.read_results()
    if data is None:
        return None
    name = folder.files.results
    status = data.get("status", "finished")  # older runs wrote no status: they finished
    if status not in ("finished", "diverged"):
        raise _Bad(f"{name} has unknown status {status!r}: expected finished or diverged")
    needed = ("task", "phase", "config") + (("diverged",) if status == "diverged" else ("params", "metrics"))
    missing = [k for k in needed if k not in data]
    if missing:
        raise _Bad(f"{name} lacks {', '.join(missing)}: it was not written by sparseseq")
    if data["phase"] not in [p.value for p in phases]:
        raise _Bad(f"{name} has unknown phase {data['phase']!r}: expected one of "
                   f"{', '.join(p.value for p in phases)}")
    if data["task"] != Phase(data["phase"]).task.value:
        raise _Bad(f"{name} has task {data['task']!r} for phase {data['phase']}: it was not written by sparseseq")
    if status == "finished" or "params" in data:
        _check_params(data.get("params"), name)
    if status == "finished" or "metrics" in data:
        _check_mapping(data.get("metrics"), f"{name}: metrics")
        for key, value in data["metrics"].items():
            _check_number(value, f"{name}: metrics.{key}", optional=True, strict=False)
    for key in ("epochs", "wall_time_s", "tokens_per_s"):
        _check_number(data.get(key), f"{name}: {key}", optional=True)
    _check_seed(data.get("seed"), f"{name}: seed")
    return data


def _divergence(results: dict | None, stage: str) -> Divergence | None:
    if not results or results.get("status") != "diverged":
        return None
    name = TRAIN.results if stage == "training" else FINETUNE.results
    record = results["diverged"]
    _check_mapping(record, f"{name}: diverged")
    epoch, batch, where = record.get("epoch"), record.get("batch"), record.get("where", "training")
    if not _is_int(epoch) or not (batch is None or _is_int(batch)) or where not in _WHERE:
        raise _Bad(f"{name}: diverged should hold an integer epoch, an integer batch (or null) and "
                   f"where: training or validation")
    return Divergence(stage=stage, phase=Phase(results["phase"]), epoch=epoch, batch=batch, where=where)


# ---- the checks --------------------------------------------------------------------------------

def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < _MAX_INT


def _check_mapping(value: Any, what: str) -> None:
    if not isinstance(value, dict):
        raise _Bad(f"{what} is a {_kind(value)}, not a mapping")


def _check_number(value: Any, what: str, *, optional: bool, strict: bool = True) -> None:
    """A number (not a boolean). ``strict=False``: other kinds pass (metrics keep only their
    numbers), but an integer too large for a float never does."""
    if value is None and optional:
        return
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _MAX_INT:
        raise _Bad(f"{what} is an integer too large to be a measurement")
    if strict and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        raise _Bad(f"{what} is a {_kind(value)}, not a number")


def _check_seed(value: Any, what: str) -> None:
    if value is not None and not _is_int(value):
        raise _Bad(f"{what} is a {_kind(value)}, not an integer or null")


def _check_params(params: Any, name: str) -> None:
    _check_mapping(params, f"{name}: params")
    for part, count in params.items():
        if not _is_int(count):
            raise _Bad(f"{name}: params.{part} is a {_kind(count)}, not an integer count")


def _check_config(config: Any, name: str) -> None:
    _check_mapping(config, f"{name}: the config")
    _check_plain(config, f"{name}: the config", 0)
    for section in _SECTIONS:
        if section in config:
            _check_mapping(config[section], f"{name}: the config's {section} section")
    train = config.get("train") or {}
    _check_seed(train.get("seed"), f"{name}: train.seed")


def _check_plain(value: Any, what: str, depth: int) -> None:
    """Mappings with text keys, lists and scalars, not nested deeper than a config is."""
    if depth > _MAX_DEPTH:
        raise _Bad(f"{what} is nested more than {_MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Bad(f"{what} has a key {key!r} that is not text")
            _check_plain(item, what, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_plain(item, what, depth + 1)


def _check_metrics(records: list[dict], name: str) -> list[dict]:
    """Per-epoch records: an integer epoch, and numbers (or null) where the curves read them."""
    for number, record in enumerate(records, 1):
        if not _is_int(record["epoch"]):
            raise _Bad(f"{name} record {number}: epoch is a {_kind(record['epoch'])}, not an integer")
        for key in CURVE_METRICS:
            _check_number(record.get(key), f"{name} record {number}: {key}", optional=True)
    return records
