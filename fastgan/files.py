"""Files that fastgan writes for a user, so that nothing the user had is lost.

Every file is written under a temporary name beside its destination (the same folder, so the same
file system), flushed and fsynced, then renamed over it with `os.replace`, which is atomic: killed
at any moment, even by SIGKILL, the destination holds the earlier file or the whole new one, never
half of either (a SIGKILLed writer's temporary file is removed by the next write of the same
destination). `replacing` is that one mechanism; `write_atomic`, `write_json` and the streamed
`.npy` writers are built on it. JSON is strict: NaN and inf are written as null, never as the
bare `NaN` that strict parsers reject.

A write that fails (a full disk, a read-only mount) removes its temporary file and becomes one
`StorageError` line naming the destination. Destinations are checked before any slow work
(`check_file_out`, `check_folder_out`, `check_free_space`), so bad input leaves nothing behind.
Checkpoints are a folder written the same way as a whole (fastgan.run.checkpoint).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from fastgan.errors import StorageError, UsageError

RETRY = "then run the command again"
THEN_RESUME = "then continue with the same command plus --auto-resume (older checkpoints are intact)"  # a training run's writes


def temp_beside(path: Path) -> Path:
    """A hidden name in `path`'s folder, unique to this process, for writing `path` before the rename."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def remove_stale_temps(path: Path) -> None:
    """Remove what a killed writer of `path` left beside it (`.NAME.tmp-PID` of a process that is
    gone): SIGKILL gives no chance to clean up, so the next write of the same file does. A live
    process's file, or one of another machine's process on a shared disk that happens to have a
    live PID here, is left alone."""
    prefix = f".{path.name}.tmp-"
    with contextlib.suppress(OSError):
        for old in path.parent.iterdir():
            pid = old.name[len(prefix) :]
            if old.name.startswith(prefix) and pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
                with contextlib.suppress(OSError):
                    old.unlink()


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def storage_error(e: OSError, path: Path, then: str = RETRY) -> StorageError:
    """One line for a write that failed, naming the file: what to free or fix, and `then` what to run."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageError(f"disk full while writing {path}; free space there, {then}")
    return StorageError(f"cannot write {path}: {e.strerror or e}; {then}")


def fsync_dir(path: Path) -> None:
    """Make a rename in folder `path` durable (the rename itself is already atomic)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def replacing(path: Path, then: str = RETRY) -> Iterator[IO[bytes]]:
    """`with replacing(path) as f: f.write(...)`: written beside `path`, fsynced, renamed over it on
    success; on any failure the temporary file is removed and `path` is untouched (an OSError
    becomes a StorageError naming `path`)."""
    tmp = temp_beside(path)
    remove_stale_temps(path)
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        with contextlib.suppress(OSError):  # durability only; the file is already in place
            fsync_dir(path.parent)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise storage_error(e, path, then) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def replacing_folder(path: Path, then: str = RETRY) -> Iterator[Path]:
    """`with replacing_folder(path) as tmp: (tmp / name).write_bytes(...)`: a new folder of files,
    made beside `path` and renamed to it whole on success (over an empty folder, if one is
    there); on any failure the temporary folder is removed. Check `path` first with check_folder_out."""
    tmp = temp_beside(path)
    try:
        tmp.mkdir()
        yield tmp
        os.replace(tmp, path)
        with contextlib.suppress(OSError):
            fsync_dir(path.parent)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        where = Path(os.fsdecode(e.filename).replace(str(tmp), str(path), 1)) if e.filename else path  # the name it would have had
        raise storage_error(e, where, then) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_atomic(path: Path, data: bytes | str, then: str = RETRY) -> None:
    with replacing(path, then) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def strict(obj: Any) -> Any:
    """`obj` with every non-finite float (NaN, inf) replaced by None, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    return obj


def json_text(obj: Any, indent: int | None = 2) -> str:
    return json.dumps(strict(obj), indent=indent, allow_nan=False) + "\n"


def write_json(path: Path, obj: Any, then: str = RETRY, indent: int | None = 2) -> None:
    write_atomic(path, json_text(obj, indent), then)


def append_line(path: Path, line: str, then: str = RETRY) -> None:
    """Append one line to a log (JSONL). A torn last line is what a kill can leave, and readers skip it."""
    try:
        with open(path, "a") as f:
            f.write(line)
    except OSError as e:
        raise storage_error(e, path, then) from None


def write_npy_header(f: IO[bytes], shape: tuple[int, ...]) -> None:
    """The header of a C-order uint8 .npy array of `shape`; its bytes follow, in order."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(f, header)


def unused_name(path: Path) -> Path:
    """`path` if nothing is there, else the first of PATH-<time>, PATH-<time>-2, ... that is free
    (the suffix goes before the extension), so that moving a file aside never replaces another."""
    if not path.exists():
        return path
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for k in range(1, 10_000):
        candidate = path.with_name(f"{path.stem}-{stamp}{'' if k == 1 else f'-{k}'}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise AssertionError(f"no free name beside {path}")  # 10,000 moves within one second


# ---------------------------------------------------------------------------- checks before any work


def printable(path: Path) -> str:
    """`path` as text even when its bytes are not UTF-8 (undecodable bytes shown as \\xNN)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def check_utf8(path: Path, flag: str) -> None:
    """A usage error for a path that is not valid UTF-8: TensorBoard, JSON and HTML cannot hold it."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"{flag} {printable(path)}: the name is not valid UTF-8; choose a name in UTF-8") from None


def _first_existing_parent(path: Path, flag: str) -> Path:
    parent = next(p for p in path.absolute().parents if p.exists())
    if not parent.is_dir():
        raise UsageError(f"{flag} {path}: {parent} is a file, so nothing can be written under it; choose another {flag}")
    return parent


def check_file_out(path: Path, flag: str, example: str) -> None:
    """`path` can become a file: valid UTF-8, not a folder, not below a file. `example`: a file name to suggest."""
    check_utf8(path, flag)
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a folder; give a file name, e.g. {flag} {path / example}")
    if not path.exists():
        _first_existing_parent(path, flag)


def check_dir_out(path: Path, flag: str) -> None:
    """`path` can be a folder that fastgan writes its own files into (it may exist): valid UTF-8, not a file, not below one."""
    check_utf8(path, flag)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path}: is a file, not a folder; choose another {flag}")
    if not path.exists():
        _first_existing_parent(path, flag)


def check_folder_out(path: Path, flag: str) -> None:
    """`path` can become a new folder of files: valid UTF-8, absent or empty, not below a file."""
    check_utf8(path, flag)
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"{flag} {path}/: is a file, not a folder; choose another {flag}")
        if any(path.iterdir()):
            raise UsageError(f"{flag} {path}/: the folder exists and is not empty (fastgan never writes over files); choose a new folder")
        return
    _first_existing_parent(path, flag)


def check_free_space(path: Path, num_bytes: int, flag: str) -> None:
    """A usage error when the file system that `path` would be written on has less than `num_bytes` free."""
    parent = next(p for p in path.absolute().parents if p.exists())
    free = shutil.disk_usage(parent).free
    if num_bytes > free:
        raise UsageError(
            f"{flag} {path}: needs about {num_bytes / 2**30:,.2f} GiB but {parent} has {free / 2**30:,.2f} GiB free; "
            "free space there, write elsewhere, or ask for fewer images"
        )
