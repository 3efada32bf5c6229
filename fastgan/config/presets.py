"""Presets by name: `fastgan train fashion-r3gan` works from any folder, in the clone or not.

configs/ is the presets' home; the package ships a copy of each in fastgan/presets/ (package
data), and tests/cli/test_packaging.py fails when the two differ. A config argument is a file
when one is there, else a preset's name (`fashion-r3gan`, `fashion-r3gan.toml`, or
`configs/fashion-r3gan.toml` outside the clone, which names the same file).
"""

from __future__ import annotations

from pathlib import Path

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def find_preset(path: Path) -> Path | None:
    """The shipped preset that `path` names, or None: a bare name, NAME.toml, or configs/NAME.toml."""
    bare = len(path.parts) == 1 or (len(path.parts) == 2 and path.parts[0] == "configs")
    if not bare or path.suffix not in ("", ".toml"):
        return None
    shipped = PRESETS_DIR / f"{path.stem if path.suffix else path.name}.toml"
    return shipped if shipped.is_file() else None


def summary(path: Path) -> str:
    """The first sentence of a preset's header comment, after its name: what it is for."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#") or line.startswith("#   "):  # the header ends at its first command line
            break
        lines.append(line.lstrip("# ").strip())
    text = " ".join(lines).split(": ", 1)[-1]
    for i, ch in enumerate(text):
        if ch == "." and (i + 1 == len(text) or (text[i + 1] == " " and text[i + 2 : i + 3].isupper())):
            return text[: i + 1]
    return text
