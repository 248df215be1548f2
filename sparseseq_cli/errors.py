"""The one exception type for bad input.

Anything a user can get wrong (a missing file, an unknown key, an infeasible setting)
raises :class:`SparseseqError` with a single line that says what was wrong and what to do;
the CLI prints it and exits with status 2, without a traceback.
"""


class SparseseqError(Exception):
    """Bad input: the message is one line, shown as is, and the exit status is 2."""

    exit_code = 2
    prefix = "error: "
