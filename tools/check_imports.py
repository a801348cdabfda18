#!/usr/bin/env python3
"""Fails when the modules of a Rust crate import each other in a circle.

For every crate given (a directory holding `src/`), each top-level module
(`src/x.rs` or `src/x/`) is a node; `crate::x` or (from a top-level file)
`super::x` anywhere in module y's files is an edge y -> x. A circle of two
or more modules is reported with its members; the crate root (lib.rs /
main.rs), which declares and re-exports modules, is not a node.

Usage: check_imports.py CRATE_DIR...   (exit 1 on a circle)
"""

import re
import sys
from pathlib import Path

USE = re.compile(r"\bcrate::(?:\{\s*)?([a-z_][a-z0-9_]*)")


def modules(src: Path) -> dict[str, list[Path]]:
    mods: dict[str, list[Path]] = {}
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src)
        if rel.parts[0] == "bin" or rel.name in ("lib.rs", "main.rs") and len(rel.parts) == 1:
            continue
        name = rel.parts[0].removesuffix(".rs")
        mods.setdefault(name, []).append(path)
    return mods


def edges(mods: dict[str, list[Path]]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, files in mods.items():
        for path in files:
            text = path.read_text()
            found = set(USE.findall(text))
            # `crate::{a, b}` lists: every name inside the braces.
            for group in re.findall(r"\bcrate::\{([^}]*)\}", text):
                found.update(re.findall(r"\b([a-z_][a-z0-9_]*)\b", group))
            if path.parent.name != name and path.name == f"{name}.rs":
                found.update(re.findall(r"\bsuper::([a-z_][a-z0-9_]*)", text))
            graph[name].update(m for m in found if m in mods and m != name)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of two or more nodes (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main(args: list[str]) -> int:
    bad = 0
    for crate in args:
        src = Path(crate) / "src"
        found = circles(edges(modules(src)))
        for comp in found:
            print(f"import circle in {crate}: {' <-> '.join(comp)}")
        bad += len(found)
    if bad == 0:
        print(f"check_imports: no import circles in {len(args)} crates")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
