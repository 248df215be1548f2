"""Rich tables on stdout for report, count-params and bench.

Names in the cells and titles come from presets, configs and run folders, so they are
escaped: a preset named ``[red]x`` prints as written instead of turning the rest red (and
the report's texts arrive with their control characters already written out).
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Optional

from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sparseseq_cli.report import NOTE, Report, diverged_lines, report_tables, unfinished_lines

if TYPE_CHECKING:  # the models behind it are imported only by the command that counts
    from sparseseq_cli.params import ParityGroup

# Off a terminal (a pipe, a file, CI) there is no width to fit: rich would assume 80
# columns and fold rows ("LSTM 1: 400 ->" / "1150"), so give any table the room it needs.
_PIPE_WIDTH = 10_000


def stdout_console() -> Console:
    """A console sized to the terminal, or wide enough for any table when stdout is not one."""
    return Console(width=None if sys.stdout.isatty() else _PIPE_WIDTH)


def rich_table(title: str, header: list[str], rows: list[list[str]], *, caption: Optional[str] = None,
               title_justify: str = "center", no_wrap: bool = False,
               total: Optional[list[str]] = None) -> Table:
    """The first column left-aligned (names), the others right-aligned (numbers; ``no_wrap``:
    never folded); ``total``: a last row in bold."""
    # rich folds a title to the table's width; off a terminal the table grows to the title's
    table = Table(title=escape(title), caption=None if caption is None else escape(caption),
                  title_justify=title_justify, min_width=None if sys.stdout.isatty() else cell_len(title))
    table.add_column(escape(header[0]))
    for name in header[1:]:
        table.add_column(escape(name), justify="right", no_wrap=no_wrap)
    for row in rows:
        table.add_row(*map(escape, row))
    if total is not None:
        table.add_row(*map(escape, total), style="bold")
    return table


def print_report(report: Report) -> None:
    console = stdout_console()
    for table in report_tables(report):
        console.print(rich_table(table.title, table.header, table.rows, title_justify="left"))
    if report.groups:
        console.print(NOTE, style="dim", highlight=False)
    else:
        console.print("no finished runs among these folders", highlight=False)
    for line in unfinished_lines(report) + diverged_lines(report):
        console.print(f"left out: {line}", highlight=False, markup=False)


def _windows(widths: Optional[list[int]]) -> str:
    """k input windows with their widths: 3x400, or 3x957-958 when they differ."""
    if widths is None:
        return ""
    if len(set(widths)) == 1:
        return f"{len(widths)}x{widths[0]}"
    return f"{len(widths)}x{min(widths)}-{max(widths)}"


def _count(value: Optional[int]) -> str:
    return "" if value is None else f"{value:,}"


def print_counts(groups: list[ParityGroup]) -> None:
    console = stdout_console()
    for group in groups:
        if group.table is not None:
            console.print(escape(f"the paper's {group.table}: {', '.join(c.preset for c in group.counts)}"),
                          style="bold", highlight=False)
        for c in group.counts:
            rows = [[p.name, "" if p.density is None else f"{p.density:.4f}", _windows(p.windows),
                     f"{p.trainable:,}", _count(p.dense), _count(p.target)] for p in c.parts]
            console.print(rich_table(
                f"{c.preset} ({c.task}), vocabulary {c.vocab_size:,} from {c.vocab_source}",
                ["component", "density", "k x windows", "trainable", "dense", "target"], rows,
                caption="dense: with the zeros; target: the dense LSTM a reduction aimed at",
                no_wrap=True, total=["total", "", "", f"{c.total:,}", "", ""]))
        if len(group.counts) > 1:
            rows = [[r["preset"], f"{r['total']:,}", f"{r['relative_difference']:+.2%}",
                     "yes" if r["within_tolerance"] else "NO"] for r in group.parity]
            console.print(rich_table(f"parity (tolerance {group.tolerance:.1%} of the first)",
                                     ["preset", "total", "difference to first", "within tolerance"],
                                     rows, no_wrap=True))


def print_bench(result: dict) -> None:
    console = stdout_console()
    s = result["settings"]
    titles = {"lstm": f"SparseLSTM {s['lstm_size']}x{s['lstm_size']}, reduce {s['reduce']}, "
                      f"T={s['seq_len']}, B={s['batch_size']}: forward+backward",
              "embedding": f"SparseEmbedding lookup + tied decode, {s['seq_len'] * s['batch_size']} "
                           f"tokens: forward+backward"}
    for key, title in titles.items():
        rows = [[row["name"], f"{row['params']:,}", f"{row['ms']:.1f}", f"{row['ratio']:.2f}",
                 f"{row['ratio_low']:.2f}-{row['ratio_high']:.2f}"] for row in result[key]]
        console.print(rich_table(
            title, ["implementation", "params", "ms", "ratio", "range"], rows,
            caption=f"ratio: to {result[key + '_reference']}; {result['device']}, torch "
                    f"{result['torch']}, {result['threads']} threads, median of {s['repeats']} "
                    f"rounds; range: quartiles of the per-round ratios"))
