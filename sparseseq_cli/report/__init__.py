"""`sparseseq report`: many run folders to the paper's tables (and plots).

    reading.py  run folders read back and checked; damaged ones skipped with the reason
    groups.py   runs grouped: mean ± sample std per setting
    tables.py   the paper's layouts, and the Markdown, JSON and CSV texts
    plots.py    the figures (needs matplotlib, imported only when a plot is asked for)

:func:`make_report` does what the command does short of printing: it returns the report
and the text to print, and the CLI prints it (rich tables when no format is chosen), then
one warning line per skipped folder (``report.skipped``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.report.groups import Divergence, Group, Report, Run, Skipped, Stat
from sparseseq_cli.report.reading import build_report
from sparseseq_cli.report.tables import (NOTE, TableData, diverged_lines, render_csv, render_json,
                                         render_markdown, report_tables, skipped_lines, unfinished_lines,
                                         visible)

__all__ = ["NOTE", "Divergence", "Group", "Report", "ReportOptions", "ReportOutput", "Run", "Skipped", "Stat",
           "TableData", "build_report", "diverged_lines", "make_report", "render_csv", "render_json",
           "render_markdown", "report_tables", "skipped_lines", "unfinished_lines", "visible"]


@dataclass(frozen=True)
class ReportOptions:
    paths: list[Path]
    group_by: list[str] = field(default_factory=list)   # empty: group by all but the seed
    as_json: bool = False
    markdown: bool = False
    as_csv: bool = False
    plot: Optional[Path] = None      # PNG: Figure 3 and the per-group perplexities
    curves: Optional[Path] = None    # PNG: the learning curves


@dataclass(frozen=True)
class ReportOutput:
    report: Report
    text: Optional[str]   # the --json, --markdown or --csv text; None: show report_tables()
    written: list[Path]   # the PNG files drawn


def make_report(options: ReportOptions) -> ReportOutput:
    """Read and group the runs, draw the plots asked for, and render the chosen format."""
    chosen = [flag for flag, on in (("--json", options.as_json), ("--markdown", options.markdown),
                                    ("--csv", options.as_csv)) if on]
    if len(chosen) > 1:
        raise SparseseqError(f"{' and '.join(chosen)} exclude each other: pick one output format")
    targets = [target for target in (options.plot, options.curves) if target is not None]
    for target in targets:
        if target.suffix.lower() != ".png":
            raise SparseseqError(f"{target}: plots are written as PNG; give a file name ending in .png")
    report = build_report(options.paths, options.group_by)
    # Plots first: a missing matplotlib or an empty selection fails before any output.
    if targets:
        from sparseseq_cli.report import plots
        if options.plot is not None:
            plots.save(plots.summary_figure(report), options.plot)
        if options.curves is not None:
            plots.save(plots.curves_figure(report.runs), options.curves)
    text = None
    if options.as_json:
        text = render_json(report) + "\n"
    elif options.markdown:
        text = render_markdown(report)
    elif options.as_csv:
        text = render_csv(report)
    return ReportOutput(report, text, targets)
