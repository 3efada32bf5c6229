"""Loading a config: defaults, then a TOML preset, then `--set section.key=value` overrides, each
key and type checked; and writing one back as TOML that loads to an equal Config.

An unknown key or a value of the wrong type fails with a message that names the key and what is
allowed. Registry-backed names (model, loss, data backend) are checked in fastgan.validate,
which may import torch; this module must not. Keys that moved to a model's own section
(fastgan.config.legacy) are still read where older presets and run folders put them.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path
from typing import Any

from fastgan.config.legacy import move_legacy_keys, moved_key
from fastgan.config.presets import find_preset, preset_names
from fastgan.config.schema import Config, ValueSchedule
from fastgan.errors import UsageError


def load_config(path: Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Defaults, then the TOML file at `path`, then `section.key=value` overrides."""
    tree: dict[str, Any] = {}
    if path is not None:
        tree = read_toml(path)
    return config_from_tree(tree, str(path) if path is not None else "defaults", overrides)


def loads_config(text: str, where: str) -> Config:
    """A config from TOML text (a run folder's marker holds the config its run started with)."""
    try:
        tree = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{where}: not valid TOML: {e}") from None
    return config_from_tree(tree, where)


def config_from_tree(tree: dict[str, Any], where: str, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    cfg = build(Config, move_legacy_keys(tree, where), prefix="", where=where)
    for item in overrides:
        cfg = apply_override(cfg, item)
    return cfg


def resolve_config(path: Path) -> Path:
    """A config file that exists, else the shipped preset `path` names (fastgan.config.presets)."""
    if path.is_file():
        return path
    preset = find_preset(path)
    if preset is None:
        raise UsageError(
            f"config file not found: {path}; give a preset by name, e.g. fashion-r3gan (the quickstart; "
            f"fastgan presets lists them all: {', '.join(preset_names())}), or the path of a TOML file"
        )
    return preset


def read_toml(path: Path) -> dict[str, Any]:
    path = resolve_config(path)
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: not valid TOML: {e}") from None


def build(cls: type, tree: dict[str, Any], prefix: str, where: str) -> Any:
    """Make dataclass `cls` from a nested dict, checking every key and type."""
    if not isinstance(tree, dict):
        raise UsageError(f"{where}: '{prefix.rstrip('.')}' must be a table of keys")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(tree) - set(fields))
    if unknown:
        key = prefix + unknown[0]
        raise UsageError(f"{where}: unknown key '{key}'; allowed in '{prefix.rstrip('.') or 'top level'}': {', '.join(fields)}")
    kwargs: dict[str, Any] = {}
    for name, value in tree.items():
        kwargs[name] = coerce(hints[name], value, prefix + name, where, fields[name])
    return cls(**kwargs)


def coerce(hint: Any, value: Any, key: str, where: str, f: dataclasses.Field[Any] | None = None) -> Any:
    """Check `value` against the annotation `hint`; return it in the field's type."""
    if dataclasses.is_dataclass(hint):
        return build(hint, value, key + ".", where)  # type: ignore[arg-type]
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"{where}: '{key}' must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(args[0], v, key, where) for v in value)
        if len(value) != len(args):
            raise UsageError(f"{where}: '{key}' must be a list of {len(args)} numbers, got {value!r}")
        return tuple(coerce(a, v, key, where) for a, v in zip(args, value, strict=True))
    if hint is bool:
        if not isinstance(value, bool):
            raise UsageError(f"{where}: '{key}' must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{where}: '{key}' must be a whole number, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"{where}: '{key}' must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise UsageError(f"{where}: '{key}' must be a string, got {value!r}")
        choices = f.metadata.get("choices") if f is not None else None
        if choices and value not in choices:
            raise UsageError(f"{where}: '{key}' = {value!r} is not allowed; choose one of: {', '.join(choices)}")
        return value
    raise AssertionError(f"unsupported config type {hint!r} for {key}")  # pragma: no cover


def parse_value(text: str) -> Any:
    """A `--set` value: TOML syntax (1e-4, true, [0.5, 0.99], "x"), else a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(cfg: Config, item: str) -> Config:
    """Apply one `section.key=value` to `cfg`, with the same checks as the file."""
    if "=" not in item:
        raise UsageError(f"--set {item!r}: expected section.key=value, e.g. --set train.batch_size=128")
    dotted, text = item.split("=", 1)
    path = moved_key(dotted.strip()).split(".")
    where = f"--set {item}"
    return _replace_path(cfg, path, parse_value(text.strip()), where, prefix="")


def _replace_path(node: Any, path: list[str], value: Any, where: str, prefix: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(node)}
    name = path[0]
    if name not in fields:
        scope = prefix.rstrip(".") or "top level"
        raise UsageError(f"{where}: unknown key '{prefix + name}'; allowed in '{scope}': {', '.join(fields)}")
    hint = typing.get_type_hints(type(node))[name]
    if len(path) == 1:
        if dataclasses.is_dataclass(hint):
            raise UsageError(
                f"{where}: '{prefix + name}' is a section; set one of its keys, e.g. {prefix + name}.{dataclasses.fields(hint)[0].name}=..."
            )  # type: ignore[arg-type]
        new = coerce(hint, value, prefix + name, where, fields[name])
    else:
        if not dataclasses.is_dataclass(hint):
            raise UsageError(f"{where}: '{prefix + name}' is a value, not a section")
        new = _replace_path(getattr(node, name), path[1:], value, where, prefix + name + ".")
    return dataclasses.replace(node, **{name: new})


# ---------------------------------------------------------------------------- writing


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested dict as dotted key -> value (`train.batch_size`), in the tree's order."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def tables_of(tree: dict[str, Any], name: str = "") -> dict[str, dict[str, Any]]:
    """A nested dict as TOML tables (`optim.G` -> its values), each table's values before its sub-tables."""
    scalars = {k: v for k, v in tree.items() if not isinstance(v, dict)}
    out = {name: scalars} if scalars and name else {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(tables_of(v, f"{name}.{k}" if name else k))
    return out


def render_tables(tables: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for name, values in tables.items():
        lines += [f"[{name}]", *(f"{k} = {_toml_value(v)}" for k, v in values.items()), ""]
    return "\n".join(lines)


def to_toml(cfg: Config) -> str:
    """The resolved config as TOML that `load_config` reads back to an equal Config.

    Only the `[schedule.<value>]` sections a config sets are written: an absent one means "not
    scheduled", so a config without schedules reads as it did before they existed (and hashes
    the same: a run folder's marker holds that hash, fastgan.run.folder)."""
    tree = to_dict(cfg)
    unset = dataclasses.asdict(ValueSchedule())
    tree["schedule"] = {name: values for name, values in tree["schedule"].items() if values != unset}
    return render_tables(tables_of(tree))


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise AssertionError(f"cannot write {v!r} as TOML")  # pragma: no cover
