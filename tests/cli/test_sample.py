"""`fastgan sample` on tiny runs: a PNG grid or a .npy array, the same images for the same seed,
latent walks (--interpolate, --between-classes), truncation, and every usage error. The walk
functions themselves are in unit/test_walks.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fastgan.latents import draw_latents
from tests.support import run, train


def test_sample_png_and_npy(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert run(cli, "train", tiny_config, "--out", run_dir)[0] == 0
    code, text = run(cli, "sample", run_dir, "--n", "10", "--out", tmp_path / "s.npy", "--seed", "1")
    assert code == 0, text
    arr = np.load(tmp_path / "s.npy")
    assert arr.dtype == np.uint8 and arr.shape == (10, 1, 28, 28)
    # the same seed gives the same images, from the run folder or its newest checkpoint
    run(cli, "sample", run_dir / "checkpoints" / "nimg-000000128", "--n", "10", "--out", tmp_path / "c.npy", "--seed", "1")
    assert np.array_equal(arr, np.load(tmp_path / "c.npy"))
    code, _ = run(cli, "sample", run_dir, "--n", "12", "--out", tmp_path / "grid.png")
    from PIL import Image

    assert code == 0 and Image.open(tmp_path / "grid.png").size[0] > 28


def test_sample_errors(cli: CliRunner, tmp_path: Path) -> None:
    code, text = run(cli, "sample", tmp_path, "--out", tmp_path / "x.png")
    assert code == 2 and "not a run folder" in text
    code, text = run(cli, "sample", tmp_path, "--out", tmp_path / "x.jpg")
    assert code == 2 and "give FILE.png (a grid), FILE.npy (a uint8 array), DIR/ (one PNG per image)" in text


@pytest.fixture
def tiny_run(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> Path:
    return train(cli, tiny_config, tmp_path / "run")


def close(a: np.ndarray, b: np.ndarray) -> bool:
    """uint8 images from batches of different sizes: CPU kernels may round one level apart."""
    return a.shape == b.shape and int(np.abs(a.astype(int) - b.astype(int)).max()) <= 1


def test_interpolation_ends_are_plain_samples_of_those_latents(cli: CliRunner, tiny_run: Path, tmp_path: Path) -> None:
    walks, plain = tmp_path / "walks.npy", tmp_path / "plain.npy"
    code, text = run(cli, "sample", tiny_run, "--interpolate", "3", "--steps", "5", "--seed", "7", "--out", walks)
    assert code == 0, text
    # row i walks from the seed's draw 2i to draw 2i+1: the first 6 plain samples of that seed
    assert run(cli, "sample", tiny_run, "--n", "6", "--seed", "7", "--out", plain)[0] == 0
    w, p = np.load(walks), np.load(plain)
    assert w.shape == (15, 1, 28, 28)
    assert close(w[0::5], p[0::2]) and close(w[4::5], p[1::2])
    assert not np.array_equal(w[1::5], w[0::5])  # and the middle moves
    code, _ = run(cli, "sample", tiny_run, "--interpolate", "2", "--out", tmp_path / "walks.png")
    from PIL import Image

    assert code == 0 and Image.open(tmp_path / "walks.png").size[0] > Image.open(tmp_path / "walks.png").size[1]  # 2 rows of 8
    code, text = run(cli, "sample", tiny_run, "--interpolate", "2", "--between-classes", "--out", tmp_path / "c.png")
    assert code == 2 and "is unconditional" in text and "Traceback" not in text


def test_truncation_one_changes_nothing_and_less_narrows(cli: CliRunner, tiny_run: Path, tmp_path: Path) -> None:
    paths = {psi: tmp_path / f"t{psi}.npy" for psi in ("1.0", "0.0")}
    assert run(cli, "sample", tiny_run, "--n", "8", "--out", tmp_path / "plain.npy")[0] == 0
    for psi, path in paths.items():
        code, text = run(cli, "sample", tiny_run, "--n", "8", "--truncation", psi, "--out", path)
        assert code == 0, text
    assert np.array_equal(np.load(tmp_path / "plain.npy"), np.load(paths["1.0"]))
    mean_images = np.load(paths["0.0"])  # psi 0: every latent at the mean, one image 8 times
    assert (mean_images == mean_images[:1]).all()


def test_between_classes_walks_the_class_with_z_fixed(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    from fastgan.run.generator import load_generator
    from fastgan.sampling.grid import generate_uint8
    from fastgan.sampling.interpolation import interpolation_images

    out = tmp_path / "cond"
    code, text = run(cli, "train", tiny_config, "--out", out, "--set", "model.conditional=true", "--set", "model.num_classes=4")
    assert code == 0, text
    cfg, G, _ = load_generator(out)
    cpu = torch.device("cpu")
    images = interpolation_images(G, cfg.model, 4, 5, 3, True, 1.0, cpu).numpy()
    z = draw_latents("gaussian", 8, cfg.model.z_dim, generator=torch.Generator().manual_seed(3))[0::2]  # each row keeps draw 2i
    classes = torch.arange(4)
    assert close(images[0::5], generate_uint8(G, z, classes).numpy())
    assert close(images[4::5], generate_uint8(G, z, (classes + 1) % 4).numpy())
    # the default walk keeps row i at class i
    same_class = interpolation_images(G, cfg.model, 4, 5, 3, False, 1.0, cpu).numpy()
    assert close(same_class[0::5], images[0::5])
    code, text = run(cli, "sample", out, "--interpolate", "4", "--between-classes", "--out", tmp_path / "c.png")
    assert code == 0, text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interpolate", "2", "--steps", "1"], "--steps 1: a walk needs at least 2 steps"),
        (["--interpolate", "0"], "--interpolate 0: give the number of rows"),
        (["--truncation", "-1"], "--truncation -1: psi must be in [0, 1]"),
        (["--truncation", "1.5"], "--truncation 1.5: psi must be in [0, 1]"),
        (["--interpolate", "2", "--truncation", "2"], "--truncation 2: psi must be in [0, 1]"),
        (["--steps", "4"], "add --interpolate N"),
        (["--between-classes"], "add --interpolate N"),
        (["--interpolate", "2", "--n", "4"], "--n and --interpolate both set how many images"),
        (["--interpolate", "2", "--out", "x.jpg"], "give FILE.png (a grid)"),
        (["--n", "10000000"], "a picture of 10,000,000 images is too big to look at"),
        (["--interpolate", "600", "--steps", "8"], "a picture of 4,800 images is too big to look at"),
        (["--interpolate", "600", "--steps", "8", "--out", "w.gif"], "a picture of 4,800 images is too big to look at"),
        (["--grid", "4by4"], "--grid 4by4: give rows x columns, e.g. --grid 4x8"),
        (["--grid", "2x2", "--n", "5"], "--grid 2x2 holds 4 images, fewer than --n 5"),
        (["--grid", "2x2", "--out", "s.npy"], "--grid 2x2 shapes a .png grid"),
        (["--grid", "2x2", "--interpolate", "2"], "--grid shapes a sample grid; walks are laid out as"),
        (["--out", "s.gif"], "a GIF is an animated walk; add --interpolate N"),
    ],
)
def test_sample_usage_errors(cli: CliRunner, tmp_path: Path, args: list[str], message: str) -> None:
    """Checked before any generator is loaded, so no run is needed."""
    code, text = run(cli, "sample", tmp_path, "--out", tmp_path / "x.png", *args)
    assert code == 2, text
    assert message in text and "Traceback" not in text


def test_a_sample_killed_the_moment_its_destination_changes_leaves_a_whole_file(tiny_run: Path, tmp_path: Path) -> None:
    """SIGKILL as soon as `--out` changes on disk: the file there loads, the earlier one or the new
    one whole (today's atomic rename; a write in place would leave a torn .npy)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.support import REPO

    good = tmp_path / "good.npy"
    np.save(good, np.zeros((10, 1, 28, 28), dtype=np.uint8))
    before = good.stat()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "fastgan", "sample", str(tiny_run), "--n", "20000", "--out", str(good)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            now = os.stat(good)
            if (now.st_ino, now.st_size, now.st_mtime_ns) != (before.st_ino, before.st_size, before.st_mtime_ns):
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.kill()
        _, err = proc.communicate()
    assert proc.returncode in (-signal.SIGKILL, 0), err.decode()[-2000:]
    arr = np.load(good)
    assert arr.shape in ((10, 1, 28, 28), (20000, 1, 28, 28)) and arr.dtype == np.uint8


def peak_rss_bytes(*args: str | Path) -> int:
    """Peak resident memory of `fastgan ARGS` in a process of its own (the command must succeed)."""
    import os
    import subprocess
    import sys

    from tests.support import REPO

    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "fastgan", *map(str, args)], env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, args
    return usage.ru_maxrss * 1024  # kB on Linux


def test_a_big_npy_streams_memory_holds_the_model_and_one_chunk(tiny_run: Path, tmp_path: Path) -> None:
    small = peak_rss_bytes("sample", tiny_run, "--n", "10", "--out", tmp_path / "small.npy")
    big = peak_rss_bytes("sample", tiny_run, "--n", "100000", "--out", tmp_path / "big.npy")  # 78 MB of images
    output = (tmp_path / "big.npy").stat().st_size
    assert np.load(tmp_path / "big.npy", mmap_mode="r").shape == (100_000, 1, 28, 28)
    assert big - small < output / 2, f"peak {big / 2**20:.0f} MiB vs {small / 2**20:.0f} MiB for 10 images"


def test_streamed_samples_are_the_images_of_one_draw(cli: CliRunner, tiny_run: Path, tmp_path: Path) -> None:
    from fastgan.run.generator import load_generator
    from fastgan.sampling.grid import generate_uint8

    assert run(cli, "sample", tiny_run, "--n", "600", "--seed", "3", "--out", tmp_path / "s.npy")[0] == 0
    cfg, G, _ = load_generator(tiny_run)
    z = draw_latents(cfg.model.latent, 600, cfg.model.z_dim, generator=torch.Generator().manual_seed(3))
    assert close(np.load(tmp_path / "s.npy"), generate_uint8(G, z, torch.zeros(600, dtype=torch.long)).numpy())


def test_the_disk_is_checked_before_any_image_is_made(
    cli: CliRunner, tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))  # type: ignore[attr-defined]
    code, text = run(cli, "sample", tiny_run, "--n", "100", "--out", tmp_path / "s.npy")
    assert code == 2 and "GiB free" in text and text.count("\n") == 1, text
    assert not list(tmp_path.glob("*s.npy.tmp*")) and not (tmp_path / "s.npy").exists()


def test_samples_in_the_forms_of_peer_tools(cli: CliRunner, tiny_run: Path, tmp_path: Path) -> None:
    """A folder of PNGs named by seed and index (StyleGAN2-ADA's gen_images.py, lightweight-gan),
    a GIF walk with one frame per step, a grid of a chosen shape, and the psi in the success line."""
    from PIL import Image

    code, text = run(cli, "sample", tiny_run, "--n", "10", "--seed", "5", "--out", f"{tmp_path / 'pngs'}/", "--truncation", "0.7")
    assert code == 0 and "truncation psi = 0.7" in text, text
    names = sorted(p.name for p in (tmp_path / "pngs").iterdir())
    assert names == [f"seed0005-{i:06d}.png" for i in range(10)]
    assert run(cli, "sample", tiny_run, "--n", "10", "--seed", "5", "--out", tmp_path / "s.npy", "--truncation", "0.7")[0] == 0
    array = np.load(tmp_path / "s.npy")
    assert all(np.array_equal(np.asarray(Image.open(tmp_path / "pngs" / name)), array[i, 0]) for i, name in enumerate(names))
    code, text = run(cli, "sample", tiny_run, "--out", f"{tmp_path / 'pngs'}/")  # never written over
    assert code == 2 and "exists and is not empty" in text

    code, text = run(cli, "sample", tiny_run, "--interpolate", "3", "--steps", "5", "--out", tmp_path / "walk.gif")
    assert code == 0 and "5 frames" in text and "truncation psi = 1" in text, text
    with Image.open(tmp_path / "walk.gif") as gif:
        assert getattr(gif, "n_frames", 1) == 5 and gif.size == (
            (2 * 30 + 2) * 3,
            (2 * 30 + 2) * 3,
        )  # 3 walks on a 2 x 2 grid, 28 px shown 3x

    code, text = run(cli, "sample", tiny_run, "--grid", "2x5", "--out", tmp_path / "g.png")
    assert code == 0 and "wrote 10 samples" in text, text
    assert Image.open(tmp_path / "g.png").size == ((5 * 30 + 2) * 3, (2 * 30 + 2) * 3)  # 5 columns, 2 rows
