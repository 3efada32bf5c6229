"""User-facing errors: what was wrong, where, and how to fix it.

The CLI turns a `UsageError` into one line on stderr and exit code 2, with no traceback.
Internal invariants use `assert` instead.
"""


class UsageError(Exception):
    """Bad input from the user (config, CLI, data, checkpoint). Exit code 2."""

    exit_code = 2
