from __future__ import annotations

from pathlib import Path

import pytest

from fastgan.config import Config, load_config, to_toml
from fastgan.errors import UsageError
from fastgan.validate import validate
from tests.support import REPO


def test_defaults_and_every_preset_load_and_validate() -> None:
    assert load_config(None) == Config()
    for preset in sorted((REPO / "configs").glob("*.toml")):
        cfg = load_config(preset)
        validate(cfg)


def test_preset_is_a_diff_from_defaults() -> None:
    cfg = load_config(REPO / "configs" / "mnist-mlp.toml")
    assert cfg.model.name == "mlp" and cfg.model.mlp.g_hidden == (256, 512, 1024)
    assert cfg.optim.G.lr == 2e-4  # untouched default


def test_overrides_are_typed() -> None:
    cfg = load_config(
        None, ["train.batch_size=128", "optim.D.lr=1e-4", "optim.G.betas=[0.0, 0.99]", "data.source=mnist", "data.hflip=true"]
    )
    assert cfg.train.batch_size == 128
    assert cfg.optim.D.lr == 1e-4 and cfg.optim.G.lr == 2e-4
    assert cfg.optim.G.betas == (0.0, 0.99)
    assert cfg.data.source == "mnist" and cfg.data.hflip is True


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.batchsize=3", "unknown key 'train.batchsize'"),
        ("nosuch.key=1", "unknown key 'nosuch'"),
        ("train.batch_size=abc", "'train.batch_size' must be a whole number"),
        ("train.batch_size=1.5", "must be a whole number"),
        ("data.hflip=1", "must be true or false"),
        ("train.precision=fp8", "choose one of: no, bf16, fp16"),
        ("optim.G.betas=[0.5]", "list of 2 numbers"),
        ("train=1", "is a section"),
        ("train.batch_size", "expected section.key=value"),
    ],
)
def test_bad_overrides_name_the_key(override: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_config(None, [override])


def test_unknown_key_in_file_names_file_and_key(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text("[model]\nnmae = 'mlp'\n")
    with pytest.raises(UsageError, match=r"c.toml: unknown key 'model.nmae'; allowed in 'model': name, z_dim"):
        load_config(p)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text("[model\n")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_config(p)
    with pytest.raises(UsageError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    cfg = load_config(REPO / "configs" / "cifar10-dcgan.toml", ["tricks.label_smoothing=0.1", "model.mlp.g_hidden=[8, 16]"])
    p = tmp_path / "resolved.toml"
    p.write_text(to_toml(cfg))
    assert load_config(p) == cfg


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.name=resnet", "model.name = 'resnet' is not known; choose one of: mlp, dcgan28, dcgan"),
        ("loss.name=wasserstein", "loss.name = 'wasserstein' is not known"),
        ("data.backend=ffcv", "data.backend = 'ffcv' is not known"),
        ("model.resolution=48", "model.resolution = 48: model 'dcgan28' makes 28 px images"),
        ("tricks.label_smoothing=1.5", "tricks.label_smoothing"),
        ("train.batch_size=0", "train.batch_size = 0: must be at least 1"),
    ],
)
def test_validate_names_the_option(override: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        validate(load_config(None, [override]))


def test_smoothing_refused_for_losses_without_targets() -> None:
    with pytest.raises(UsageError, match="does not have"):
        validate(load_config(None, ["loss.name=hinge", "tricks.label_smoothing=0.1"]))


def test_penalties_in_the_compiled_D_phase_are_refused() -> None:
    for per_step in (["loss.r1_gamma=1.0"], ["loss.r2_gamma=1.0"], ["loss.name=wgan-gp"]):
        with pytest.raises(UsageError, match="double backward"):
            validate(load_config(None, [*per_step, "loss.reg_every=1", "train.compile=default"]))
    # lazy R1/R2 run through the eager D: compile stays allowed
    validate(load_config(None, ["loss.name=rpgan", "loss.r1_gamma=1.0", "loss.r2_gamma=1.0", "loss.reg_every=16", "train.compile=default"]))


def test_keys_of_one_model_have_their_own_section_and_the_old_places_still_load(tmp_path: Path) -> None:
    new = tmp_path / "new.toml"
    new.write_text(
        '[model]\nname = "r3gan"\n\n[model.r3gan]\nstage_widths = [8, 8, 8]\ngroup_channels = 4\n\n[model.mlp]\nd_dropout = 0.1\n'
    )
    old = tmp_path / "old.toml"  # fastgan 0.1's layout: every model key in [model]
    old.write_text('[model]\nname = "r3gan"\nstage_widths = [8, 8, 8]\ngroup_channels = 4\nd_dropout = 0.1\n')
    cfg = load_config(new)
    assert cfg.model.r3gan.stage_widths == (8, 8, 8) and cfg.model.r3gan.group_channels == 4 and cfg.model.mlp.d_dropout == 0.1
    assert load_config(old) == cfg
    assert load_config(None, ["model.name=r3gan", "model.stage_widths=[8, 8, 8]", "model.group_channels=4", "model.d_dropout=0.1"]) == cfg
    assert "[model.r3gan]" in to_toml(cfg) and "stage_widths" not in to_toml(cfg).split("[model.dcgan]")[0]
    both = tmp_path / "both.toml"
    both.write_text("[model]\nwidth = 8\n\n[model.dcgan]\nwidth = 16\n")
    with pytest.raises(UsageError, match="'model.width' and 'model.dcgan.width' are the same key"):
        load_config(both)


def test_a_run_folder_of_fastgan_0_1_is_recognised_as_started_with_its_preset() -> None:
    """0.1's marker holds the hash of its own config.toml layout; --auto-resume with the same command must know it."""
    from fastgan.run.folder import read_marker, started_with

    for recipe in ("r3gan-recipe", "dcgan-tricks"):
        run_dir = REPO / "tests" / "fixtures" / "legacy-runs" / recipe
        assert "config" not in read_marker(run_dir)  # written by 0.1
        preset = REPO / "tests" / "fixtures" / "legacy-runs" / f"{recipe}.toml"
        assert started_with(run_dir, load_config(preset))
        assert not started_with(run_dir, load_config(preset, ["train.total_images=256"]))
