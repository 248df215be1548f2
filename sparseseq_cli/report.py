"""`sparseseq report`: many run directories to the paper's tables (and plots).

One table per kind of run, laid out as the paper does: language models as Table 1
(validation and test perplexity before and after finetuning), learning to recite as
Table 3 (train perplexity and accuracy, epochs to memorization), taggers with the numbers
behind Figure 3 (dev and test accuracy, with and without ``-NONE-`` tokens). Each cell is
the mean ± the sample standard deviation (n - 1) over a group's runs; a single run shows
its value alone. A cell that only some runs of a group have says how many: ``(2/3)``.
Terminal: rich tables; ``--markdown``; ``--json`` and ``--csv`` carry every number raw
(accuracies as fractions, as in results.json).
"""
from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.table import Table

from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.run_groups import Group, Report, build_report


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


# Parameter parts as results.json names them; embedding_dense is the dense equivalent's
# count, not a trainable part, so the tables leave it to --json/--csv.
_PARTS = {"embedding": "embedding", "recurrent": "recurrent", "decoder_bias": "decoder bias",
          "mos": "MoS", "head": "head"}
_EPOCHS = Column("epochs", "epochs", _fixed(1), Spread.VARYING)
_COST = (Column("wall time", "wall_time_s", _duration, Spread.NEVER),
         Column("tokens/s", "tokens_per_s", _fixed(0), Spread.NEVER))

LAYOUTS = {
    "train-lm": Layout(
        "Language models (Table 1): perplexity of the best model, test with batch size 1",
        (Column("valid ppl", "valid_ppl", _fixed(2)), Column("test ppl", "test_ppl", _fixed(2)),
         Column("finetuned valid ppl", "finetune_valid_ppl", _fixed(2)),
         Column("finetuned test ppl", "finetune_test_ppl", _fixed(2)),
         _EPOCHS, Column("finetune epochs", "finetune_epochs", _fixed(1), Spread.VARYING), *_COST)),
    "overfit": Layout(
        "Learning to recite (Table 3): last epoch on the training data",
        (Column("train ppl", "train_ppl", _fixed(2)), Column("train acc %", "train_acc", _percent),
         Column("epochs to memorize", "epochs_to_memorize", _fixed(1), missing="not reached",
                optional=False),
         _EPOCHS, *_COST)),
    "train-pos": Layout(
        "POS tagging (Figure 3): accuracy % after the last epoch",
        (Column("dev acc", "dev_acc", _percent),
         Column("dev acc w/o -NONE-", "dev_acc_no_none", _percent),
         Column("test acc", "test_acc", _percent),
         Column("test acc w/o -NONE-", "test_acc_no_none", _percent),
         Column("best epoch", "best_epoch", _fixed(1), Spread.VARYING), _EPOCHS, *_COST)),
}


def _has(groups: list[Group], name: str, *, nonzero: bool = False) -> bool:
    means = [g.stats[name].mean for g in groups if name in g.stats]
    return any(m is not None and (m != 0 or not nonzero) for m in means)


def _columns(task: str, groups: list[Group]) -> list[Column]:
    """Parameters (total, then the parts these models have) and the task's metrics; columns
    that no group has a value for (no finetuning, no test split) are left out."""
    params = [Column("params", "params_total", _fixed(0), Spread.VARYING)]
    params += [Column(header, f"params_{part}", _fixed(0), Spread.VARYING) for part, header in _PARTS.items()
               if _has(groups, f"params_{part}", nonzero=True)]
    return params + [c for c in LAYOUTS[task].metrics if not c.optional or _has(groups, c.stat)]


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


def _tables(report: Report) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) per task present, in the paper's order."""
    out = []
    for task, layout in LAYOUTS.items():
        groups = [g for g in report.groups if g.task == task]
        if groups:
            columns = _columns(task, groups)
            header = ["setting", "runs"] + [c.header for c in columns]
            rows = [[g.label, str(len(g.runs))] + [_cell(g, c) for c in columns] for g in groups]
            out.append((layout.title, header, rows))
    return out


def _unfinished_lines(report: Report) -> list[str]:
    lines = []
    for run in report.unfinished:
        if run.results:
            what = f"finetuning unfinished after {run.finetune_epochs_done} epoch(s)"
        else:
            planned = run.config.get("train", {}).get("epochs")
            what = f"unfinished after {run.epochs_done}" + (f" of {planned}" if planned else "") + " epoch(s)"
        lines.append(f"{run.path} ({run.preset}, seed {run.seed}): {what}")
    return lines


_NOTE = ("mean ± sample standard deviation (n - 1) over a group's runs; "
         "(k/n): only k of the n runs have that number")


def render_markdown(report: Report) -> str:
    parts = []
    for title, header, rows in _tables(report):
        lines = [f"### {title}", "", "| " + " | ".join(header) + " |",
                 "|" + "|".join([":---", "---:"] + ["---:"] * (len(header) - 2)) + "|"]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
        parts.append("\n".join(lines))
    if report.groups:
        parts.append(_NOTE[0].upper() + _NOTE[1:] + ".")
    if report.unfinished:
        parts.append("Left out of the means:\n\n" + "\n".join(f"- {line}" for line in _unfinished_lines(report)))
    return "\n\n".join(parts) + "\n"


def render_json(report: Report) -> str:
    return json.dumps({
        "groups": [{"task": g.task, "label": g.label, "presets": g.presets, "setting": g.setting,
                    "n_runs": len(g.runs), "runs": [str(r.path) for r in g.runs],
                    "seeds": [r.seed for r in g.runs],
                    "stats": {name: {"mean": s.mean, "std": s.std, "n": s.n} for name, s in g.stats.items()}}
                   for g in report.groups],
        "unfinished": [{"run": str(r.path), "preset": r.preset, "seed": r.seed,
                        "stage": "finetuning" if r.results else "training",
                        "epochs_done": r.finetune_epochs_done if r.results else r.epochs_done}
                       for r in report.unfinished],
    }, indent=2)


def render_csv(report: Report) -> str:
    """One row per group; every number as <name>_mean, <name>_std, <name>_n."""
    rows = []
    for g in report.groups:
        row = {"task": g.task, "label": g.label, "presets": " ".join(g.presets), "n_runs": len(g.runs),
               "seeds": " ".join(str(r.seed) for r in g.runs)}
        for name, s in g.stats.items():
            row.update({f"{name}_mean": s.mean, f"{name}_std": s.std, f"{name}_n": s.n})
        rows.append(row)
    fields = list(dict.fromkeys(key for row in rows for key in row)) or ["task", "label"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def print_tables(report: Report, console: Console) -> None:
    for title, header, rows in _tables(report):
        table = Table(title=title, title_justify="left")
        table.add_column(header[0], justify="left")
        for name in header[1:]:
            table.add_column(name, justify="right")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    if report.groups:
        console.print(_NOTE, style="dim", highlight=False)
    if not report.groups:
        console.print("no finished runs among these folders", highlight=False)
    for line in _unfinished_lines(report):
        console.print(f"left out: {line}", highlight=False, markup=False)


def write_report(paths: list[Path], group_by: list[str] | None = None, *, as_json: bool = False,
                 markdown: bool = False, as_csv: bool = False, plot: Path | None = None,
                 curves: Path | None = None) -> Report:
    """The `report` command: read, group, print in one format, and draw what was asked."""
    chosen = [flag for flag, on in (("--json", as_json), ("--markdown", markdown), ("--csv", as_csv)) if on]
    if len(chosen) > 1:
        raise SparseseqError(f"{' and '.join(chosen)} exclude each other: pick one output format")
    for target in (plot, curves):
        if target is not None and target.suffix.lower() != ".png":
            raise SparseseqError(f"{target}: plots are written as PNG; give a file name ending in .png")
    report = build_report(paths, group_by)
    # Plots first: a missing matplotlib or an empty selection fails before any output.
    if plot is not None or curves is not None:
        from sparseseq_cli import plots
        if plot is not None:
            plots.save(plots.summary_figure(report), plot)
        if curves is not None:
            plots.save(plots.curves_figure(report.runs), curves)
    if as_json:
        sys.stdout.write(render_json(report) + "\n")
    elif markdown:
        sys.stdout.write(render_markdown(report))
    elif as_csv:
        sys.stdout.write(render_csv(report))
    else:
        # Rich sizes tables to the terminal; piped output gets room for the widest layout
        # instead of the 80 columns rich assumes, so rows are not folded.
        print_tables(report, Console(width=None if sys.stdout.isatty() else 240))
    for target in (plot, curves):
        if target is not None:
            print(f"wrote {target}", file=sys.stderr)
    return report
