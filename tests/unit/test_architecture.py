"""The house rules the code and its reference are held to: the package's import graph has no
circle and no upward import (scripts/import_graph.py), and docs/config.md is what the config
schema says (scripts/config_docs.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from fastgan.config import Config, flatten, to_dict
from tests.support import REPO


@pytest.fixture(scope="module")
def import_graph() -> Iterator[ModuleType]:
    """scripts/import_graph.py as a module (scripts/ is no package)."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import import_graph

        yield import_graph
    finally:
        sys.path.remove(str(REPO / "scripts"))


def test_the_package_imports_in_no_circle_and_never_upward(import_graph: ModuleType) -> None:
    g = import_graph.graph()
    assert len(g) > 50 and "fastgan.cli" in g and "fastgan.train.step" in g  # the whole package was read
    assert import_graph.circles(g) == []
    assert import_graph.upward(g) == []
    check = subprocess.run([sys.executable, "scripts/import_graph.py", "--check"], cwd=REPO, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


def test_the_import_check_finds_a_circle_and_an_upward_import(import_graph: ModuleType) -> None:
    circle = {"fastgan.models.mlp": {"fastgan.models.dcgan"}, "fastgan.models.dcgan": {"fastgan.models.mlp"}, "fastgan.errors": set()}
    assert import_graph.circles(circle) == [["fastgan.models.dcgan", "fastgan.models.mlp"]]
    up = {"fastgan.config.load": {"fastgan.cli"}, "fastgan.cli": {"fastgan.config.load"}}  # foundation -> cli, and a circle
    assert import_graph.upward(up) == ["fastgan.config.load (foundation) -> fastgan.cli (cli)"]
    assert import_graph.circles(up) == [["fastgan.cli", "fastgan.config.load"]]


def test_docs_config_md_is_what_the_code_says() -> None:
    check = subprocess.run([sys.executable, "scripts/config_docs.py", "--check"], cwd=REPO, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    # and, independently of the script: every key in a table under its section's heading
    text = (REPO / "docs" / "config.md").read_text()
    keys_by_section: dict[str, set[str]] = {}
    for block in re.split(r"^## ", text, flags=re.M)[1:]:
        heading, _, body = block.partition("\n")
        section = re.fullmatch(r"`\[([A-Za-z0-9_.]+)\]`", heading.strip())
        if section:  # other headings hold no keys
            keys_by_section[section.group(1)] = set(re.findall(r"^\| `([A-Za-z0-9_]+)` \|", body, flags=re.M))
    for dotted in flatten(to_dict(Config())):
        section, _, key = dotted.rpartition(".")
        assert key in keys_by_section.get(section, set()), f"{dotted}: no `{key}` row under ## `[{section}]` in docs/config.md"
