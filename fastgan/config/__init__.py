"""Typed, per-component configuration: frozen dataclasses (`schema`), loaded from TOML presets
with `--set` overrides and written back (`load`); layouts of earlier versions (`legacy`).
Everything else imports from here."""

from fastgan.config.load import (
    apply_override,
    flatten,
    load_config,
    loads_config,
    parse_value,
    tables_of,
    to_dict,
    to_toml,
)
from fastgan.config.schema import (
    AdamConfig,
    AugmentConfig,
    Config,
    DataConfig,
    DCGANConfig,
    LossConfig,
    MLPConfig,
    ModelConfig,
    OptimConfig,
    R3GANConfig,
    ScheduleConfig,
    TrainConfig,
    TricksConfig,
    ValueSchedule,
)

__all__ = [
    "AdamConfig",
    "AugmentConfig",
    "Config",
    "DCGANConfig",
    "DataConfig",
    "LossConfig",
    "MLPConfig",
    "ModelConfig",
    "OptimConfig",
    "R3GANConfig",
    "ScheduleConfig",
    "TrainConfig",
    "TricksConfig",
    "ValueSchedule",
    "apply_override",
    "flatten",
    "load_config",
    "loads_config",
    "parse_value",
    "tables_of",
    "to_dict",
    "to_toml",
]
