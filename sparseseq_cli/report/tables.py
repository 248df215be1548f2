r"""The report's tables: one per phase, laid out as the paper does, and their text formats.

Language models as Table 1 (validation and test perplexity before and after finetuning),
learning to recite as Table 3 (train perplexity and accuracy, epochs to memorization),
taggers with the numbers behind Figure 3 (dev and test accuracy, with and without
``-NONE-`` tokens). Each cell is the mean ± the sample standard deviation (n - 1) over a
group's runs; a single run shows its value alone. A cell that only some runs of a group
have says how many: ``(2/3)``. ``--json`` and ``--csv`` carry every number raw
(accuracies as fractions, as in results.json).

Text from run files (presets, config values, folder names) may hold anything: every text
format shows its control characters escaped (:func:`visible`), so an ANSI sequence in a
preset name prints as ``\x1b[31m`` instead of recolouring the terminal. (``--json`` gets
the same from the JSON encoder.)
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from enum import Enum
from typing import Callable

from sparseseq_cli.files import to_json
from sparseseq_cli.report.groups import PHASES, Group, Report, Run
from sparseseq_cli.tasks import Phase

# C0 and C1 controls and DEL (terminal escapes start with ESC, or CSI U+009B); the
# bidirectional overrides and isolates, which reorder the text shown around them; and lone
# surrogates (from JSON "\ud800", or a file name that is not UTF-8), which cannot be printed.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def visible(text: str) -> str:
    r"""``text`` with its control characters written out (``\x1b``, ``\u202e``): safe to print."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


def _fixed(digits: int) -> Callable[[float], str]:
    return lambda value: f"{value:,.{digits}f}"


def _percent(value: float) -> str:
    return f"{100 * value:.2f}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class Spread(Enum):
    """When a cell shows "± std" after the mean."""

    ALWAYS = "always"     # metrics: the spread over seeds is the point
    VARYING = "varying"   # counts a group's runs share unless --group-by mixed settings
    NEVER = "never"       # costs: the mean is enough at a glance (--json has the rest)


@dataclass(frozen=True)
class Column:
    header: str
    stat: str                        # a name from Run.numbers()
    fmt: Callable[[float], str]
    spread: Spread = Spread.ALWAYS
    missing: str = "–"               # shown when no run of the group has the number
    optional: bool = True            # left out when no group has the number


@dataclass(frozen=True)
class Layout:
    title: str
    metrics: tuple[Column, ...]


@dataclass(frozen=True)
class TableData:
    """One table as text cells: the first column names the setting, the others are numbers."""
    title: str
    header: list[str]
    rows: list[list[str]]


# Parameter parts as results.json names them; embedding_dense is the dense equivalent's
# count, not a trainable part, so the tables leave it to --json/--csv.
_PARTS = {"embedding": "embedding", "recurrent": "recurrent", "decoder_bias": "decoder bias",
          "mos": "MoS", "head": "head"}
_EPOCHS = Column("epochs", "epochs", _fixed(1), Spread.VARYING)
_COST = (Column("wall time", "wall_time_s", _duration, Spread.NEVER),
         Column("tokens/s", "tokens_per_s", _fixed(0), Spread.NEVER))

LAYOUTS = {
    Phase.TRAIN_LM: Layout(
        "Language models (Table 1): perplexity of the best model, test with batch size 1",
        (Column("valid ppl", "valid_ppl", _fixed(2)), Column("test ppl", "test_ppl", _fixed(2)),
         Column("finetuned valid ppl", "finetune_valid_ppl", _fixed(2)),
         Column("finetuned test ppl", "finetune_test_ppl", _fixed(2)),
         _EPOCHS, Column("finetune epochs", "finetune_epochs", _fixed(1), Spread.VARYING), *_COST)),
    Phase.OVERFIT: Layout(
        "Learning to recite (Table 3): last epoch on the training data",
        (Column("train ppl", "train_ppl", _fixed(2)), Column("train acc %", "train_acc", _percent),
         Column("epochs to memorize", "epochs_to_memorize", _fixed(1), missing="not reached",
                optional=False),
         _EPOCHS, *_COST)),
    Phase.TRAIN_POS: Layout(
        "POS tagging (Figure 3): accuracy % after the last epoch",
        (Column("dev acc", "dev_acc", _percent),
         Column("dev acc w/o -NONE-", "dev_acc_no_none", _percent),
         Column("test acc", "test_acc", _percent),
         Column("test acc w/o -NONE-", "test_acc_no_none", _percent),
         Column("best epoch", "best_epoch", _fixed(1), Spread.VARYING), _EPOCHS, *_COST)),
}

NOTE = ("mean ± sample standard deviation (n - 1) over a group's runs; "
        "(k/n): only k of the n runs have that number")


def _has(groups: list[Group], name: str, *, nonzero: bool = False) -> bool:
    means = [g.stats[name].mean for g in groups if name in g.stats]
    return any(m is not None and (m != 0 or not nonzero) for m in means)


def _columns(phase: Phase, groups: list[Group]) -> list[Column]:
    """Parameters (total, then the parts these models have) and the phase's metrics; columns
    that no group has a value for (no finetuning, no test split) are left out."""
    params = [Column("params", "params_total", _fixed(0), Spread.VARYING)]
    params += [Column(header, f"params_{part}", _fixed(0), Spread.VARYING) for part, header in _PARTS.items()
               if _has(groups, f"params_{part}", nonzero=True)]
    return params + [c for c in LAYOUTS[phase].metrics if not c.optional or _has(groups, c.stat)]


def _cell(group: Group, column: Column) -> str:
    stat = group.stats.get(column.stat)
    if stat is None or stat.mean is None:
        return column.missing
    text = column.fmt(stat.mean)
    if stat.std is not None and (column.spread is Spread.ALWAYS
                                 or (column.spread is Spread.VARYING and stat.std > 0)):
        text += f" ± {column.fmt(stat.std)}"
    if stat.n < len(group.runs):
        text += f" ({stat.n}/{len(group.runs)})"
    return text


def report_tables(report: Report) -> list[TableData]:
    """One table per phase present, in the paper's order."""
    out = []
    for phase in PHASES:
        groups = [g for g in report.groups if g.phase is phase]
        if groups:
            columns = _columns(phase, groups)
            header = ["setting", "runs"] + [c.header for c in columns]
            rows = [[visible(g.label), str(len(g.runs))] + [_cell(g, c) for c in columns] for g in groups]
            out.append(TableData(LAYOUTS[phase].title, header, rows))
    return out


def _who(run: Run) -> str:
    return f"{run.path} ({run.preset}, seed {run.seed})"


def unfinished_lines(report: Report) -> list[str]:
    """One line per unfinished run, left out of the means: where it stopped."""
    lines = []
    for run in report.unfinished:
        if run.results:
            what = f"finetuning unfinished after {run.finetune_epochs_done} epoch(s)"
        else:
            planned = (run.config.get("train") or {}).get("epochs")
            what = f"unfinished after {run.epochs_done}" + (f" of {planned}" if planned else "") + " epoch(s)"
        lines.append(visible(f"{_who(run)}: {what}"))
    return lines


def diverged_lines(report: Report) -> list[str]:
    """One line per diverged run: where its loss stopped being finite. A run whose
    finetuning diverged keeps its training numbers in the means; a run whose training did
    is left out."""
    lines = []
    for run in report.diverged:
        d = run.diverged
        what = "diverged" if d.stage == "training" else "finetuning diverged"
        at = f" at batch {d.batch}" if d.batch is not None else ""
        loss = " (validation loss)" if d.where == "validation" else ""
        lines.append(visible(f"{_who(run)}: {what} in epoch {d.epoch}{at}{loss}"))
    return lines


def skipped_lines(report: Report) -> list[str]:
    """One line per folder that could not be used: "skipped FOLDER: problem"."""
    return [visible(f"skipped {s.path}: {s.problem}") for s in report.skipped]


def render_markdown(report: Report) -> str:
    parts = []
    for table in report_tables(report):
        header = table.header
        lines = [f"### {table.title}", "", "| " + " | ".join(header) + " |",
                 "|" + "|".join([":---", "---:"] + ["---:"] * (len(header) - 2)) + "|"]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table.rows]
        parts.append("\n".join(lines))
    if report.groups:
        parts.append(NOTE[0].upper() + NOTE[1:] + ".")
    left_out = unfinished_lines(report) + diverged_lines(report)
    if left_out:
        parts.append("Left out of the means:\n\n" + "\n".join(f"- {line}" for line in left_out))
    return "\n\n".join(parts) + "\n"


def render_json(report: Report) -> str:
    """Every number raw; inf and nan (a diverged metric) as null, since JSON has neither."""
    return to_json({
        "groups": [{"task": g.phase.task.value, "phase": g.phase.value, "label": g.label,
                    "presets": g.presets, "setting": g.setting,
                    "n_runs": len(g.runs), "runs": [str(r.path) for r in g.runs],
                    "seeds": [r.seed for r in g.runs],
                    "stats": {name: {"mean": s.mean, "std": s.std, "n": s.n} for name, s in g.stats.items()}}
                   for g in report.groups],
        "unfinished": [{"run": str(r.path), "preset": r.preset, "seed": r.seed,
                        "stage": "finetuning" if r.results else "training",
                        "epochs_done": r.finetune_epochs_done if r.results else r.epochs_done}
                       for r in report.unfinished],
        "diverged": [{"run": str(r.path), "preset": r.preset, "seed": r.seed, "phase": r.diverged.phase.value,
                      "stage": r.diverged.stage, "epoch": r.diverged.epoch, "batch": r.diverged.batch,
                      "where": r.diverged.where}
                     for r in report.diverged],
        "skipped": [{"run": str(s.path), "problem": s.problem} for s in report.skipped],
    }, indent=2)


def render_csv(report: Report) -> str:
    """One row per group; every number as <name>_mean, <name>_std, <name>_n."""
    rows = []
    for g in report.groups:
        row = {"task": g.phase.task.value, "phase": g.phase.value, "label": visible(g.label),
               "presets": visible(" ".join(g.presets)), "n_runs": len(g.runs),
               "seeds": " ".join(str(r.seed) for r in g.runs)}
        for name, s in g.stats.items():
            row.update({f"{name}_mean": s.mean, f"{name}_std": s.std, f"{name}_n": s.n})
        rows.append(row)
    fields = list(dict.fromkeys(key for row in rows for key in row)) or ["task", "phase", "label"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
