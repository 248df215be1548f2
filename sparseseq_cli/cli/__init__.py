"""The ``sparseseq`` command line: the only layer that parses options and prints.

One module per command group, each command a short typed function that turns its options
into one options object, calls one library function and prints what that returns:

    lm.py        train-lm, overfit, finetune-lm, eval-lm
    pos.py       train-pos
    use.py       score, generate, tag (using a trained run)
    data.py      getdata, presets
    analysis.py  count-params, bench, report
    system.py    doctor

Options shared by several commands are declared once in ``options.py``.
"""
from __future__ import annotations

import sys

from sparseseq_cli.cli import lm, pos, use, data, analysis, system  # noqa: F401,I001  (they register their commands, in this order)
from sparseseq_cli.cli.app import app


def main() -> None:
    app(prog_name="sparseseq")


if __name__ == "__main__":
    sys.exit(main())
