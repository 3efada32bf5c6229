"""Errors a user can act on: what was wrong, where, and how to fix it.

The CLI turns each into one line on stderr and its exit code, with no traceback. Internal
invariants use `assert` instead. An error raised with an empty message prints nothing: in a
multi-process run, the main process says it once and the others exit with the same code.

| exit | class | when |
|---|---|---|
| 2 | UsageError | bad config, CLI, data, run folder or checkpoint |
| 3 | Diverged | losses or weights non-finite for longer than train.nonfinite_budget |
| 4 | StorageError | the disk is full, or another I/O error while writing the run |
| 5 | PeerFailure | another process stalled (train.timeout_s) or died |
| 128+N | Stopped | stopped by signal N (SIGTERM 143, SIGINT 130) after saving |
"""


class FastganError(Exception):
    exit_code = 1
    prefix = "error: "


class UsageError(FastganError):
    """Bad input from the user (config, CLI, data, run folder, checkpoint). Exit code 2."""

    exit_code = 2


class Diverged(FastganError):
    """Training diverged; nothing non-finite was saved. Exit code 3."""

    exit_code = 3


class StorageError(FastganError):
    """Writing the run failed (disk full, I/O error); older checkpoints are intact. Exit code 4."""

    exit_code = 4


class PeerFailure(FastganError):
    """A collective timed out or another process died. Exit code 5."""

    exit_code = 5


class Stopped(FastganError):
    """Stopped on a signal, after writing a checkpoint. Exit code 128 + signal number."""

    prefix = ""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum
