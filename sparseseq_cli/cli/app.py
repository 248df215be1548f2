"""The typer application every command module registers on, and its error handling.

Bad input raises :class:`SparseseqError` anywhere below; the group prints its one line and
exits with the error's status (2 for bad input), without a traceback.
"""
from __future__ import annotations

import typer
from typer.core import TyperGroup

from sparseseq_cli.errors import SparseseqError


def _out_of_memory(err: BaseException) -> bool:
    # torch raises OutOfMemoryError on CUDA and a RuntimeError from its CPU allocator
    return isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError" or (
        isinstance(err, RuntimeError) and "can't allocate memory" in str(err))


class _Group(TyperGroup):
    """Turns SparseseqError (bad input) into a one-line message and its exit status (2), and
    the failures the machine causes (out of memory, a disk that refuses a write) into one
    line and exit status 1, without a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SparseseqError as err:
            typer.echo(f"{err.prefix}{err}", err=True)
            raise typer.Exit(err.exit_code) from None
        except (MemoryError, RuntimeError) as err:
            if not _out_of_memory(err):
                raise
            typer.echo("error: out of memory: use a smaller model or batch (e.g. --set nhid=..., "
                       "--set batch_size=...), or a machine with more memory", err=True)
            raise typer.Exit(1) from None
        except OSError as err:
            where = f" ({err.filename})" if err.filename else ""
            typer.echo(f"error: {err.strerror or err}{where}: free space or permissions, then run "
                       f"again (--resume continues from the last checkpoint)", err=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    help="Predefined sparseness in recurrent sequence models (Demeester et al., CoNLL 2018).",
)
