"""docs/config.md, made from the config dataclasses (fastgan/config/schema.py): every key with
its default, what is allowed, and the comment beside or above it in the code.

    python scripts/config_docs.py            # rewrite docs/config.md
    python scripts/config_docs.py --check    # exit 1 if docs/config.md is not what the code says

tests/unit/test_architecture.py runs the check, so the reference cannot drift from the code.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import sys
import typing
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fastgan.config import schema  # noqa: E402
from fastgan.config.legacy import MOVED  # noqa: E402
from fastgan.config.load import _toml_value  # noqa: E402

SCHEMA = REPO / "fastgan" / "config" / "schema.py"
OUT = REPO / "docs" / "config.md"

HEADER = """# Configuration reference

Every key fastgan reads, by section, with its default. This file is made from
`fastgan/config/schema.py` by `python scripts/config_docs.py`; a test fails when the two differ.

A preset is a TOML file of the keys it changes; `--set section.key=value` changes one more
(`--set train.batch_size=128`, `--set 'optim.G.betas=[0.0, 0.99]'`). An unknown key, a wrong
type, or `nan`/`inf` is refused with one line and exit code 2, before anything is written. What
may change when a run is resumed is in [runs.md](runs.md#what-a-resume-may-change).
"""


def comments(path: Path) -> dict[tuple[str, str], str]:
    """(class, field) -> the comment beside the field, or else the comment lines right above it."""
    lines = path.read_text().splitlines()
    out: dict[tuple[str, str], str] = {}
    for node in ast.parse(path.read_text()).body:
        if not isinstance(node, ast.ClassDef):
            continue
        for item in node.body:
            if not isinstance(item, ast.AnnAssign) or not isinstance(item.target, ast.Name):
                continue
            line = lines[item.lineno - 1]
            text = line.split("  # ", 1)[1].strip() if "  # " in line else ""
            above: list[str] = []
            i = item.lineno - 2
            while i >= 0 and lines[i].strip().startswith("#"):
                above.insert(0, lines[i].strip().lstrip("#").strip())
                i -= 1
            out[(node.name, item.target.id)] = " ".join([*above, text]).strip()
    return out


def rows(cls: type, prefix: str, notes: dict[tuple[str, str], str]) -> list[tuple[str, list[str]]]:
    """(table name, its markdown rows) for `cls` and the sections inside it, in order."""
    hints = typing.get_type_hints(cls)
    mine: list[str] = []
    nested: list[tuple[str, list[str]]] = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            nested += rows(hint, f"{prefix}{f.name}.", notes)  # type: ignore[arg-type]
            continue
        default: Any = f.default
        choices = f.metadata.get("choices")
        allowed = " \\| ".join(f"`{c}`" for c in choices) if choices else type_name(hint)
        key = f"{prefix}{f.name}"
        old = [o for o, n in MOVED.items() if n == key]
        note = notes.get((cls.__name__, f.name), "").replace("|", "\\|")
        if old:
            note += f" (older presets: `{old[0]}`)"
        mine.append(f"| `{f.name}` | `{_toml_value(default)}` | {allowed} | {note} |")
    table = prefix.rstrip(".")
    return ([(table, mine)] if mine else []) + nested


def type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        inner = type_name(args[0])
        return f"list of {inner}" + ("" if args[-1] is Ellipsis else f" ({len(args)})")
    return {bool: "true / false", int: "whole number", float: "number", str: "string"}.get(hint, str(hint))


def render() -> str:
    notes = comments(SCHEMA)
    parts = [HEADER]
    tables = rows(schema.Config, "", notes)
    classes = [section_class(table) for table, _ in tables]
    first: dict[Any, str] = {}  # a class several sections share -> the first of them
    for (table, lines), section_cls in zip(tables, classes, strict=True):
        cls_doc = ""
        parts.append(f"\n## `[{table}]`\n")
        parent, _, name = table.rpartition(".")
        parent_cls = section_class(parent)
        note = notes.get((parent_cls.__name__ if parent_cls else "", name), "")
        shared = classes.count(section_cls) > 1 and note  # a class several sections share (the [schedule.*] ones)
        if shared:  # a line each on what it is for (the field's comment); the class's own doc once
            parts.append(f"{note[:1].upper()}{note[1:]}.\n")
        doc = section_cls.__doc__ if section_cls is not None and not (shared and section_cls in first) else None
        if shared:
            first.setdefault(section_cls, table)
        if section_cls is not None and doc and not doc.startswith(section_cls.__name__ + "("):
            cls_doc = " ".join(doc.split()).removeprefix(f"`[{table}]`: ")
            cls_doc = cls_doc[:1].upper() + cls_doc[1:]
            parts.append(f"{cls_doc}\n")
        parts.append("| key | default | allowed | what it does |\n|---|---|---|---|")
        parts.extend(lines)
    return "\n".join(parts) + "\n"


def section_class(table: str) -> type | None:
    node: Any = schema.Config
    for part in table.split("."):
        hint = typing.get_type_hints(node).get(part)
        if hint is None or not dataclasses.is_dataclass(hint):
            return None
        node = hint
    return node  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/config.md differs from the code")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not OUT.is_file() or OUT.read_text() != text:
            print(f"{OUT.relative_to(REPO)} is not what the code says: run python scripts/config_docs.py")
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
