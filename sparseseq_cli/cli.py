"""The ``sparseseq`` command: one short typed function per subcommand, no logic.

Each subcommand resolves its options and calls one library function. Options shared by
several subcommands are declared once below (``Annotated`` aliases) and reused.
Bad input raises :class:`SparseseqError`; the group prints its one line and exits 2.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from sparseseq_cli.corpora.datasets import DatasetName, GetdataOptions
from sparseseq_cli.errors import SparseseqError


class _Group(TyperGroup):
    """Turns SparseseqError (bad input) into a one-line message and exit status 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SparseseqError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(err.exit_code) from None


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    help="Predefined sparseness in recurrent sequence models (Demeester et al., CoNLL 2018).",
)

# ---- options shared by several subcommands -------------------------------------------
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA when available), cpu, cuda or cuda:N.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print errors only.")]


@app.command()
def report(
    run_dirs: Annotated[list[Path], typer.Argument(
        help="Run directories written by train-lm/finetune-lm, overfit or train-pos.", show_default=False)],
    group_by: Annotated[Optional[list[str]], typer.Option(
        "--group-by", help="Group by this config key instead of 'all but the seed' "
                           "(model.emsize, or emsize when unambiguous); repeatable.")] = None,
    json_out: JsonOpt = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print Markdown tables.")] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="Print one CSV row per group.")] = False,
    plot: Annotated[Optional[Path], typer.Option(
        help="Write a PNG: Figure 3 for taggers, perplexity per group for language models.")] = None,
    curves: Annotated[Optional[Path], typer.Option(
        help="Write a PNG of the runs' learning curves (validation metric per epoch).")] = None,
) -> None:
    """Tables of many runs: mean ± sample std (n-1) over seeds, one row per setting."""
    from sparseseq_cli.report import write_report

    write_report(run_dirs, group_by, as_json=json_out, markdown=markdown, as_csv=csv_out,
                 plot=plot, curves=curves)


@app.command()
def getdata(
    dataset: Annotated[Optional[DatasetName], typer.Argument(
        help="ptb, wikitext-2, wsj-pos (needs --from), or all (ptb and wikitext-2); "
             f"default: {GetdataOptions.dataset.value}.", show_default=False)] = None,
    dest: Annotated[Optional[Path], typer.Option(
        help=f"Folder the datasets go into; default: {GetdataOptions.dest} (relative to here).",
        show_default=False)] = None,
    source: Annotated[Optional[Path], typer.Option(
        "--from", help="Install from this archive or folder instead of downloading (offline; "
                       "for wsj-pos: Treebank-3 parsed/mrg/wsj, NLTK's treebank, or ready files).",
        show_default=False)] = None,
    mirror: Annotated[Optional[str], typer.Option(
        help="Base address that serves the archives (e.g. a lab mirror) instead of the originals.",
        show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Reinstall even when verified files are in place.")] = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Download, verify (SHA-256) and install the datasets: data/penn, data/wikitext-2, data/wsj-pos."""
    from sparseseq_cli.corpora.getdata import run_getdata

    run_getdata(dataset, dest=dest, source=source, mirror=mirror, force=force, quiet=quiet, as_json=json_out)


def main() -> None:
    app(prog_name="sparseseq")


if __name__ == "__main__":
    sys.exit(main())
