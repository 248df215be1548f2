"""The text a command reads: a file, or standard input for ``-``."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO, Optional

from sparseseq_cli.errors import SparseseqError
from sparseseq_cli.files import read_text

STDIN = "-"


def read_input(file: str | Path, stdin: Optional[BinaryIO] = None) -> tuple[str, str]:
    """The text of ``file`` (``-``: standard input) and a name for it in messages."""
    if str(file) == STDIN:
        data = (stdin or sys.stdin.buffer).read()
        try:
            return data.decode("utf-8-sig"), "standard input"
        except UnicodeDecodeError as err:
            line = data[:err.start].count(b"\n") + 1
            raise SparseseqError(f"standard input is not UTF-8 text (line {line}, byte {err.start}): "
                                 f"convert it to UTF-8") from None
    return read_text(Path(file), str(file), "give a readable text file, or - for standard input"), str(file)
