"""The import graph of the fastgan package, checked against its layers.

    python scripts/import_graph.py            # the package graph as Mermaid (docs/architecture.md holds it)
    python scripts/import_graph.py --check    # exit 1 on an import circle or an upward import

Every import counts, also those inside functions (the lazy imports that keep `fastgan --help`
instant) and under TYPE_CHECKING: a lazy import is still a dependency. A module may import
modules of its own layer or of the layers below it, never above, and no set of modules may
import each other in a circle. tests/unit/test_architecture.py runs the check.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "fastgan"

# Lowest first. A module belongs to the first entry whose prefix it starts with.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "foundation",
        ("fastgan.errors", "fastgan.config", "fastgan.hardware", "fastgan.stats", "fastgan.latents", "fastgan.files", "fastgan.progress")
        + ("fastgan",),
    ),
    ("components", ("fastgan.models", "fastgan.losses", "fastgan.augment", "fastgan.data", "fastgan.sampling")),
    ("measures", ("fastgan.metrics", "fastgan.validate")),
    ("train", ("fastgan.train",)),
    ("run", ("fastgan.run",)),
    ("tools", ("fastgan.bench", "fastgan.report")),
    ("commands", ("fastgan.commands",)),
    ("cli", ("fastgan.cli", "fastgan.__main__")),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The fastgan modules `path` imports, anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from fastgan.run import checkpoint` imports the module fastgan.run.checkpoint
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module for a in node.names]
        else:
            continue
        found.update(n for n in names if n in known)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {m: imports_of(p, known) - {m} for m, p in mods.items()}


def layer_of(module: str) -> int:
    """The layer of the longest prefix that names `module` (the bare "fastgan" names only itself)."""
    matches = [
        (len(p), i)
        for i, (_, prefixes) in enumerate(LAYERS)
        for p in prefixes
        if module == p or (p != "fastgan" and module.startswith(p + "."))
    ]
    if not matches:
        raise AssertionError(f"{module} is in no layer of scripts/import_graph.py: add it to LAYERS")
    return max(matches)[1]


def circles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def upward(g: dict[str, set[str]]) -> list[str]:
    """`a -> b` for every import of a module from a higher layer."""
    return [
        f"{a} ({LAYERS[layer_of(a)][0]}) -> {b} ({LAYERS[layer_of(b)][0]})"
        for a in sorted(g)
        for b in sorted(g[a])
        if layer_of(b) > layer_of(a)
    ]


def package(module: str) -> str:
    """The node a module is drawn in: its sub-package, or the module itself at the top."""
    parts = module.split(".")
    return ".".join(parts[:2])


def node(package_name: str) -> str:
    return package_name.replace(".", "_")


def mermaid(g: dict[str, set[str]]) -> str:
    """Packages in their layers, and the imports between packages (config and errors, which
    every layer imports, are left out of the arrows)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for a, targets in g.items():
        for b in targets:
            if package(a) != package(b) and package(b) not in ("fastgan.config", "fastgan.errors"):
                edges[package(a)].add(package(b))
    lines = ["```mermaid", "flowchart TD"]
    for i, (name, _) in reversed(list(enumerate(LAYERS))):
        members = sorted({package(m) for m in g if layer_of(m) == i})
        lines.append(f"    subgraph {name}")
        lines += [
            f"        {m.replace('.', '_')}[{m.removeprefix('fastgan.') if m != 'fastgan' else 'fastgan (version)'}]" for m in members
        ]
        lines.append("    end")
    for a in sorted(edges):
        for b in sorted(edges[a]):
            lines.append(f"    {node(a)} --> {node(b)}")
    lines.append("```")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 on a circle or an upward import")
    args = parser.parse_args()
    g = graph()
    if not args.check:
        print(mermaid(g))
        return 0
    problems = [f"circle: {' <-> '.join(c)}" for c in circles(g)] + [f"upward: {u}" for u in upward(g)]
    for p in problems:
        print(p)
    print(f"{len(g)} modules, {sum(map(len, g.values()))} imports: {'ok' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
