"""`fastgan export SOURCE --onnx G.onnx`: onnxruntime gives PyTorch's images (max abs error <= 1e-4,
fp32) for every model family and a conditional one, at batch sizes 1 and 5, with BatchNorm in
eval mode; the uint8 of its images is `fastgan sample`'s; docs/export.md's lines run with torch
and fastgan blocked; and every refusal is one line, exit code 2, nothing written."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fastgan.config import Config, DCGANConfig, MLPConfig, ModelConfig, R3GANConfig
from fastgan.config.load import to_toml
from fastgan.latents import draw_latents
from fastgan.models import build_models
from fastgan.run import checkpoint as ckpt
from fastgan.run.generator import load_generator
from tests.cli.test_refusals import refused
from tests.support import REPO, run, train, write_tiny

ort = pytest.importorskip("onnxruntime")

R3GAN_32 = R3GANConfig(stage_widths=(8, 8, 8, 8), stage_blocks=(1, 1, 1, 1), group_channels=8)
FAMILIES = {  # tiny sizes; each family's own layers (BatchNorm, embeddings, transposed and grouped convs, resampling)
    "mlp": ModelConfig(name="mlp", z_dim=16, mlp=MLPConfig(g_hidden=(32, 64))),
    "dcgan28": ModelConfig(name="dcgan28", z_dim=16, dcgan=DCGANConfig(width=4)),
    "dcgan": ModelConfig(name="dcgan", z_dim=16, resolution=32, channels=3, dcgan=DCGANConfig(width=4)),
    "tutorial-dcgan": ModelConfig(name="tutorial-dcgan", z_dim=16, latent="uniform"),
    "r3gan": ModelConfig(name="r3gan", z_dim=16, resolution=32, channels=3, r3gan=R3GAN_32),
    "dcgan28-conditional": ModelConfig(name="dcgan28", z_dim=16, conditional=True, num_classes=4, dcgan=DCGANConfig(width=4)),
    "r3gan-conditional": ModelConfig(name="r3gan", z_dim=16, resolution=32, channels=3, conditional=True, num_classes=4, r3gan=R3GAN_32),
}
TOLERANCE = 1e-4  # fp32


def write_generator(folder: Path, model: ModelConfig, seed: int = 0) -> Path:
    """generator.safetensors and config.toml, as a run leaves them, of a G that looks trained: every
    weight moved off its initialisation (r3gan's zero-initialised layers too) and BatchNorm
    statistics far from the train-mode ones, so a graph exported in train mode would differ."""
    torch.manual_seed(seed)
    G, _ = build_models(model)
    with torch.no_grad():
        for p in G.parameters():
            p.add_(0.05 * torch.randn_like(p))
        for m in G.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(to_toml(replace(Config(), model=model)))
    ckpt.save_safetensors(G, folder / "generator.safetensors")
    return folder / "generator.safetensors"


def feeds(model: ModelConfig, z: torch.Tensor, labels: torch.Tensor) -> dict[str, np.ndarray]:
    return {"z": z.numpy(), "labels": labels.numpy()} if model.conditional else {"z": z.numpy()}


@pytest.mark.parametrize("family", FAMILIES)
def test_onnxruntime_gives_pytorchs_images_at_any_batch_size(cli: CliRunner, tmp_path: Path, family: str) -> None:
    model = FAMILIES[family]
    source, out = write_generator(tmp_path / "run", model), tmp_path / "G.onnx"
    code, text = run(cli, "export", source, "--onnx", out)
    assert code == 0, text
    assert f"wrote G_ema of {source} to {out}" in text and "ONNX opset" in text
    _, G, _ = load_generator(source)  # the same weights, rebuilt independently of the export
    G.eval()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == (["z", "labels"] if model.conditional else ["z"])
    assert isinstance(session.get_inputs()[0].shape[0], str)  # a named, dynamic batch axis
    g = torch.Generator().manual_seed(1)
    for n in (1, 5):
        z = draw_latents(model.latent, n, model.z_dim, generator=g)
        labels = torch.randint(0, model.num_classes, (n,), generator=g) if model.conditional else torch.zeros(n, dtype=torch.long)
        (images,) = session.run(["images"], feeds(model, z, labels))
        with torch.no_grad():
            expected = G(z, labels).clamp(-1, 1).numpy()
        assert images.dtype == np.float32 and images.shape == (n, model.channels, model.resolution, model.resolution)
        assert float(np.abs(images - expected).max()) <= TOLERANCE
    assert images.std() > 1e-3  # the images are not constant: the comparison means something
    if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in G.modules()):
        with torch.no_grad():
            in_train_mode = G.train()(z, labels).clamp(-1, 1).numpy()
        assert float(np.abs(images - in_train_mode).max()) > 100 * TOLERANCE  # the graph's BatchNorm is in eval mode
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["fastgan.latent"] == model.latent and meta["fastgan.z_dim"] == str(model.z_dim)
    assert meta["fastgan.num_classes"] == str(model.num_classes if model.conditional else 0)


def test_the_labels_input_picks_the_class(tmp_path: Path, cli: CliRunner) -> None:
    model = FAMILIES["dcgan28-conditional"]
    source, out = write_generator(tmp_path / "run", model), tmp_path / "G.onnx"
    assert run(cli, "export", source, "--onnx", out)[0] == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    z = np.repeat(np.random.default_rng(0).standard_normal((1, model.z_dim), dtype=np.float32), 4, axis=0)
    (images,) = session.run(None, {"z": z, "labels": np.arange(4)})
    assert all(np.abs(images[i] - images[0]).max() > 1e-3 for i in range(1, 4))  # one z, four classes, four images


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    return train(CliRunner(), write_tiny(folder), folder / "run")


def as_uint8(images: np.ndarray) -> np.ndarray:
    return ((images + 1) * 127.5).round().astype(np.uint8)  # what docs/export.md tells users


def close(a: np.ndarray, b: np.ndarray) -> bool:
    """uint8 images from different runtimes: a value on a rounding edge may land one level apart."""
    return a.shape == b.shape and int(np.abs(a.astype(int) - b.astype(int)).max()) <= 1


def test_a_run_and_its_checkpoint_export_what_fastgan_sample_draws(cli: CliRunner, tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "G.onnx"
    out.write_bytes(b"an older file")  # replaced whole
    code, text = run(cli, "export", tiny_run, "--onnx", out)
    assert code == 0, text
    assert f"of {tiny_run / 'generator.safetensors'}" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["G.onnx"]  # no temporary file left beside it
    code, text = run(cli, "sample", tiny_run, "--n", "8", "--seed", "3", "--out", tmp_path / "s.npy")
    assert code == 0, text
    cfg, _, _ = load_generator(tiny_run)
    z = draw_latents(cfg.model.latent, 8, cfg.model.z_dim, generator=torch.Generator().manual_seed(3))  # sample's latents
    (images,) = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"z": z.numpy()})
    assert close(as_uint8(images), np.load(tmp_path / "s.npy"))
    newest = ckpt.list_checkpoints(tiny_run)[-1]
    code, text = run(cli, "export", newest, "--onnx", tmp_path / "then.onnx")
    assert code == 0 and f"of {newest}" in text, text
    (then,) = ort.InferenceSession(str(tmp_path / "then.onnx"), providers=["CPUExecutionProvider"]).run(None, {"z": z.numpy()})
    assert float(np.abs(then - images).max()) <= TOLERANCE  # the newest checkpoint's G_ema is the run's generator


def docs_blocks() -> tuple[str, str]:
    """docs/export.md's five lines, and its line for a conditional model."""
    text = (REPO / "docs" / "export.md").read_text().split("## Sampling without fastgan", 1)[1]
    five, conditional = (block.split("\n```", 1)[0] for block in text.split("```python\n")[1:3])
    assert len(five.splitlines()) == 5, five
    return five, conditional


def run_without_fastgan(code: str, cwd: Path) -> None:
    """`code` in a fresh Python where importing torch or fastgan fails."""
    block = "import sys\nfor name in ('torch', 'fastgan'):\n    sys.modules[name] = None\n"
    done = subprocess.run([sys.executable, "-c", block + code], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("latent", "conditional"), [("gaussian", False), ("uniform", False), ("gaussian", True)])
def test_the_documented_lines_sample_with_numpy_and_onnxruntime(cli: CliRunner, tmp_path: Path, latent: str, conditional: bool) -> None:
    model = replace(FAMILIES["dcgan28"], latent=latent, conditional=conditional, num_classes=10)
    source = write_generator(tmp_path / "run", model)
    assert run(cli, "export", source, "--onnx", tmp_path / "G.onnx")[0] == 0
    five, conditional_line = docs_blocks()
    if conditional:
        five = "\n".join([*five.splitlines()[:4], conditional_line.strip()])
    run_without_fastgan(five, tmp_path)
    samples = np.load(tmp_path / "samples.npy")
    assert samples.dtype == np.uint8 and samples.shape == (16, 1, 28, 28)
    rng = np.random.default_rng(0)  # the lines' latents, from the run's distribution
    z = rng.uniform(-1, 1, (16, model.z_dim)) if latent == "uniform" else rng.standard_normal((16, model.z_dim))
    labels = torch.arange(16) % 10 if conditional else torch.zeros(16, dtype=torch.long)
    _, G, _ = load_generator(source)
    with torch.no_grad():
        expected = G.eval()(torch.from_numpy(z).float(), labels).clamp(-1, 1).numpy()
    assert close(samples, as_uint8(expected))


def test_refusals_are_one_line_and_write_nothing(cli: CliRunner, tiny_run: Path, tmp_path: Path) -> None:
    (tmp_path / "folder.onnx").mkdir()
    (tmp_path / "a-file").write_text("x")
    text = refused(cli, tmp_path, "export", tmp_path / "no-such-run", "--onnx", tmp_path / "G.onnx")
    assert "no-such-run: no such file or folder; give a run folder" in text
    text = refused(cli, tmp_path, "export", tiny_run, "--onnx", tmp_path / "folder.onnx")
    assert "is a folder; give a file name" in text
    text = refused(cli, tmp_path, "export", tiny_run, "--onnx", tmp_path / "a-file" / "G.onnx")
    assert "a-file is a file, so nothing can be written under it" in text
    text = refused(cli, tmp_path, "export", tiny_run, "--onnx", tmp_path / "G.pt")
    assert "give a file name ending in .onnx" in text
    text = refused(cli, tmp_path, "export", tmp_path, "--onnx", tmp_path / "G.onnx")
    assert "not a run folder" in text


def test_a_diverged_generator_is_refused(cli: CliRunner, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    source = write_generator(tmp_path / "run", FAMILIES["mlp"])
    weights = load_file(str(source))
    next(iter(weights.values())).view(-1)[0] = float("nan")
    save_file(weights, str(source))
    text = refused(cli, tmp_path, "export", source, "--onnx", tmp_path / "G.onnx")
    assert "hold inf/NaN" in text


@pytest.mark.parametrize("missing", [["onnx"], ["onnxruntime"], ["onnx", "onnxruntime"]])
def test_without_onnx_it_says_how_to_install_it(
    cli: CliRunner, tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: list[str]
) -> None:
    for name in missing:
        monkeypatch.setitem(sys.modules, name, None)  # import NAME now raises ImportError
    text = refused(cli, tmp_path, "export", tiny_run, "--onnx", tmp_path / "G.onnx")
    assert f"needs {' and '.join(missing)}, which" in text and "pip install 'fastgan[export]'" in text


BLOCK_ONNX = """
import importlib.abc, sys
class Absent(importlib.abc.MetaPathFinder):  # as if onnx and onnxruntime were never installed
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in ("onnx", "onnxruntime"):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, Absent())
from fastgan.cli import main
main()
"""


def test_without_onnx_installed_the_real_cli_says_one_line(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "G.onnx"
    cmd = [sys.executable, "-c", BLOCK_ONNX, "export", str(tiny_run), "--onnx", str(out)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    line = "error: fastgan export needs onnx and onnxruntime, which are not installed: pip install 'fastgan[export]'"
    assert done.stderr.splitlines() == [line]
    assert not out.exists()


def test_the_readme_shows_the_same_five_lines() -> None:
    five, _ = docs_blocks()
    readme = (REPO / "README.md").read_text()
    assert f"```python\n{five}\n```" in readme  # what the README shows is what this file tests
