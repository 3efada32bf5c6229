"""Fine-tuning: `fastgan train CONFIG --init SOURCE` starts a new run from another run's G, D and
G_ema (a bare generator.safetensors gives G and G_ema), records where it came from, and refuses
any other model with one line before anything is written; FreezeD (tricks.freeze_d) keeps D's
first blocks as they were."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from fastgan.config import load_config
from fastgan.models import MODELS, HasBlocks, build_models
from fastgan.run import checkpoint as ckpt
from fastgan.run.init import init_from
from tests.support import make, params, run, steps, train


def events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


@pytest.fixture
def source(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> Path:
    return train(cli, tiny_config, tmp_path / "source")


def test_init_starts_a_new_run_from_the_sources_weights(cli: CliRunner, tiny_config: Path, tmp_path: Path, source: Path) -> None:
    out = tmp_path / "tuned"
    # an lr of 1e-12: the weights after 64 images are the source's, to float precision
    code, text = run(cli, "train", tiny_config, "--init", source, "--out", out, "--set", "train.total_images=64",
                     "--set", "optim.G.lr=1e-12", "--set", "optim.D.lr=1e-12")  # fmt: skip
    assert code == 0, text
    assert f"initialised D, G, G_ema from {(source / 'checkpoints' / 'nimg-000000128').resolve()} at 128 images" in text
    was = ckpt.load_state(source / "checkpoints" / "nimg-000000128")
    now = ckpt.load_state(out / "checkpoints" / "nimg-000000064")
    for net in ("G", "D"):
        for k, v in was[net].items():
            if v.is_floating_point() and "running" not in k:
                torch.testing.assert_close(now[net][k], v, rtol=0, atol=1e-6, msg=f"{net}.{k}")
    assert now["cur_nimg"] == 64  # counters start fresh, and so do the optimizers: 64 / 16 = 4 steps
    assert {int(s["step"]) for s in now["opt_G"]["state"].values()} == {4}
    assert load_config(out / "config.toml").train.init == str(source.resolve())
    start = events(out)[0]
    assert start["event"] == "start" and start["nimg"] == 0
    assert start["init"] == {"path": str((source / "checkpoints" / "nimg-000000128").resolve()), "nets": ["D", "G", "G_ema"],
                             "source_nimg": 128}  # fmt: skip
    # a resume of the fine-tuned run continues its own checkpoint: nothing is loaded from the source again
    code, text = run(cli, "train", "--resume", out, "--set", "train.total_images=128")
    assert code == 0 and "initialised" not in text, text
    assert events(out)[-2]["event"] == "resume" and "init" not in events(out)[-2]


def test_a_bare_generator_gives_G_and_G_ema_only(tiny_config: Path, source: Path) -> None:
    trainer = make(tiny_config)
    fresh_D = params(trainer.D)
    loaded = init_from(trainer, source / "generator.safetensors")
    assert sorted(loaded.weights) == ["G", "G_ema"] and loaded.nimg is None
    from safetensors.torch import load_file

    weights = load_file(str(source / "generator.safetensors"))
    for module in (trainer.G, trainer.G_ema):
        for k, v in module.state_dict().items():
            assert torch.equal(v.cpu(), weights[k]), k
    assert all(torch.equal(v, fresh_D[k]) for k, v in params(trainer.D).items())  # D as built: seeded, fresh


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (("model.dcgan.width=8",), "G.fc.3.weight is [392, 1024] there and [784, 1024] here"),
        (("model.conditional=true",), "model.conditional is False there and True here"),
        (("model.name=mlp",), "model.name is 'dcgan28' there and 'mlp' here"),
        (("model.z_dim=64",), "G.fc.0.weight is [1024, 100] there and [1024, 64] here"),
    ],
    ids=["shape", "conditioning", "model", "z_dim"],
)
def test_another_model_is_refused_in_one_line_and_nothing_is_written(
    cli: CliRunner, tiny_config: Path, tmp_path: Path, source: Path, overrides: tuple[str, ...], says: str
) -> None:
    out = tmp_path / "tuned"
    args: list[str | Path] = ["train", tiny_config, "--init", source, "--out", out]
    for o in overrides:
        args += ["--set", o]
    code, text = run(cli, *args)
    assert code == 2 and says in text and len(text.strip().splitlines()) == 1, text
    assert not out.exists()


def test_init_and_resume_together_are_refused(cli: CliRunner, source: Path) -> None:
    before = (source / "events.jsonl").read_text()
    code, text = run(cli, "train", "--resume", source, "--init", source)
    assert code == 2 and "--init" in text and "--resume" in text and len(text.strip().splitlines()) == 1, text
    assert (source / "events.jsonl").read_text() == before


def test_init_from_nothing_is_one_line(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    code, text = run(cli, "train", tiny_config, "--init", tmp_path / "nowhere", "--out", tmp_path / "tuned")
    assert code == 2 and "does not exist" in text and not (tmp_path / "tuned").exists()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_D_lists_its_blocks_in_order(name: str) -> None:
    side = 32 if name == "dcgan" else 28
    cfg = load_config(
        None, [f"model.name={name}", f"model.resolution={side}", "model.r3gan.stage_widths=[8, 8, 8]", "model.r3gan.group_channels=8"]
    )
    _, D = build_models(cfg.model)
    assert isinstance(D, HasBlocks)
    blocks = D.blocks()
    order = {id(p): i for i, p in enumerate(D.parameters())}
    firsts = [min(order[id(p)] for p in b.parameters()) for b in blocks]
    assert len(blocks) >= 3 and firsts == sorted(set(firsts))  # in order from the input, none empty, none twice


def test_freeze_d_keeps_the_first_blocks_and_trains_the_rest(tiny_config: Path) -> None:
    trainer = make(tiny_config, "tricks.freeze_d=2")
    assert isinstance(trainer.D, HasBlocks)
    blocks = trainer.D.blocks()
    before = [[p.detach().clone() for p in b.parameters()] for b in blocks]
    steps(trainer, 3)
    moved = [any(not torch.equal(p, q) for p, q in zip(b.parameters(), was, strict=True)) for b, was in zip(blocks, before, strict=True)]
    assert moved == [False, False, True]
    assert all(not p.requires_grad for b in blocks[:2] for p in b.parameters())  # the G phase gave back only what trains
    assert all(p.requires_grad for p in blocks[2].parameters())


def test_freeze_d_beyond_the_blocks_is_one_line(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    code, text = run(cli, "train", tiny_config, "--out", tmp_path / "run", "--set", "tricks.freeze_d=4")
    assert code == 2 and "tricks.freeze_d = 4: the D of model 'dcgan28' has 3 blocks" in text, text
    assert len(text.strip().splitlines()) == 1 and not (tmp_path / "run").exists()
