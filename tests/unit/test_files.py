"""fastgan.files: a write replaces its destination whole or not at all, and JSON is strict."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from fastgan import files
from fastgan.errors import StorageError, UsageError


def test_a_failed_write_leaves_the_earlier_file_and_no_temporary(tmp_path: Path) -> None:
    out = tmp_path / "out.bin"
    out.write_bytes(b"earlier")
    with pytest.raises(RuntimeError), files.replacing(out) as f:
        f.write(b"half")
        raise RuntimeError("killed mid-write")
    assert out.read_bytes() == b"earlier" and sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
    with pytest.raises(StorageError, match=f"cannot write {tmp_path / 'no' / 'x.json'}"):
        files.write_json(tmp_path / "no" / "x.json", {})
    files.write_atomic(out, "new")
    assert out.read_text() == "new"


def test_json_is_strict_nan_and_inf_become_null(tmp_path: Path) -> None:
    files.write_json(tmp_path / "x.json", {"a": math.nan, "b": [1.0, math.inf], "c": {"d": -math.inf}, "e": "NaN"})
    text = (tmp_path / "x.json").read_text()
    back = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c}"))
    assert back == {"a": None, "b": [1.0, None], "c": {"d": None}, "e": "NaN"}


def test_unused_name_never_replaces_a_file(tmp_path: Path) -> None:
    first = tmp_path / "nimg-000000128.png"
    assert files.unused_name(first) == first
    names = set()
    for _ in range(3):
        path = files.unused_name(first)
        path.write_text("x")
        names.add(path.name)
    assert len(names) == 3 and all(n.startswith("nimg-000000128") and n.endswith(".png") for n in names)


def test_destinations_are_checked_before_any_work(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(UsageError, match="is a file, so nothing can be written under it"):
        files.check_file_out(a_file / "s.png", "--out", "samples.png")
    with pytest.raises(UsageError, match="is a folder; give a file name"):
        files.check_file_out(tmp_path, "--out", "samples.png")
    with pytest.raises(UsageError, match="not valid UTF-8"):
        files.check_file_out(tmp_path / "bad\udcff.png", "--out", "samples.png")
    with pytest.raises(UsageError, match="exists and is not empty"):
        files.check_folder_out(tmp_path, "--out")
    with pytest.raises(UsageError, match="GiB free"):
        files.check_free_space(tmp_path / "big.npy", 2**62, "--out")


def test_a_killed_writers_temporary_is_removed_by_the_next_write_of_the_same_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    from fastgan import files

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    stale = tmp_path / f".out.npy.tmp-{dead.stdout.strip()}"  # what a SIGKILLed writer leaves
    stale.write_bytes(b"half")
    live = tmp_path / f".out.npy.tmp-{os.getppid()}"  # a writer still running: not ours to remove
    live.write_bytes(b"busy")
    other = tmp_path / f".other.npy.tmp-{dead.stdout.strip()}"  # another destination's: left for its own next write
    other.write_bytes(b"x")
    files.write_atomic(tmp_path / "out.npy", b"whole")
    assert (tmp_path / "out.npy").read_bytes() == b"whole"
    assert not stale.exists() and live.exists() and other.exists()
