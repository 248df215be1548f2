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


def main() -> None:
    app(prog_name="sparseseq")


if __name__ == "__main__":
    sys.exit(main())
