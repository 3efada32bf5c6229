"""`fastgan presets`: the presets shipped with fastgan (fastgan.config.presets), one line each:
its name, what it trains on what, and the first sentence of its header comment."""

from __future__ import annotations

from fastgan.config import load_config
from fastgan.config.presets import PRESETS_DIR, preset_names, summary


def preset_line(name: str) -> str:
    path = PRESETS_DIR / f"{name}.toml"
    cfg = load_config(path)
    m = cfg.model
    what = f"{m.name} {m.resolution}x{m.resolution} {'RGB' if m.channels == 3 else 'grey'} on {cfg.data.source}"
    return f"{name:<14} {what}, {cfg.train.total_images:,} images: {summary(path)}"


def run_presets() -> None:
    for name in preset_names():
        print(preset_line(name))
    print("train one with: fastgan train NAME (e.g. fastgan train fashion-r3gan, the quickstart); a path to a TOML file works too")
