#!/usr/bin/env python3
"""The runtime's module graph, from the code's own `crate::` paths.

Each top-level module of runtime/src (a file, or a folder with everything in
it) is a node; `crate::other::...` anywhere in its code (comments and doc
comments excluded) is an edge. Prints the graph; with --check, fails if the
subsystems form a cycle or a shared leaf imports anything of the crate.

    python3 .ci/module_graph.py [runtime/src] [--check]
"""
import re
import sys
from pathlib import Path

# Shared leaves: they must import nothing from the rest of the crate.
LEAVES = {"active_span", "clock", "rng", "error", "switch", "site"}


def module_of(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return parts[0]


def code_of(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//")[0] for line in text.splitlines())


def graph(root: Path) -> dict:
    edges = {}
    for path in sorted(root.rglob("*.rs")):
        module = module_of(root, path)
        if module == "lib":
            continue
        code = code_of(path.read_text())
        targets = edges.setdefault(module, set())
        for target in re.findall(r"\bcrate::(\w+)", code):
            if target != module:
                targets.add(target)
        # `use crate::{a, b::c}` groups
        for group in re.findall(r"\bcrate::\{([^}]*)\}", code):
            for name in re.findall(r"(?:^|,)\s*(\w+)", group):
                if name != module:
                    targets.add(name)
    known = set(edges)
    return {module: sorted(t for t in targets if t in known) for module, targets in edges.items()}


def cycles(edges: dict) -> list:
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in edges.get(node, []):
            if state.get(target) == "open":
                found.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    root = Path(args[0] if args else Path(__file__).resolve().parents[1] / "runtime" / "src")
    edges = graph(root)
    for module in sorted(edges):
        print(f"{module:<12} -> {', '.join(edges[module]) or '(nothing)'}")
    problems = [" -> ".join(cycle) for cycle in cycles(edges)]
    problems += [f"leaf `{leaf}` imports {edges[leaf]}" for leaf in LEAVES if edges.get(leaf)]
    if problems:
        print("\n" + "\n".join(f"problem: {p}" for p in problems))
    if "--check" in sys.argv and problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
