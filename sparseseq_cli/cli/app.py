"""The typer application every command module registers on, and its error handling.

Bad input raises :class:`SparseseqError` anywhere below; the group prints its one line and
exits with the error's status (2 for bad input), without a traceback.
"""
from __future__ import annotations

import typer
from typer.core import TyperGroup

from sparseseq_cli.errors import SparseseqError


class _Group(TyperGroup):
    """Turns SparseseqError (bad input) into a one-line message and its exit status (2)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SparseseqError as err:
            typer.echo(f"{err.prefix}{err}", err=True)
            raise typer.Exit(err.exit_code) from None


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    help="Predefined sparseness in recurrent sequence models (Demeester et al., CoNLL 2018).",
)
