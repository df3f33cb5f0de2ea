"""The import graph stays layered: the safety process needs nothing of the daemon, no cycles.

Every module of the project is parsed (not imported) and each import, including imports inside
functions, becomes an edge between packages: top-level packages (`foundation`, `wire`, `edge`,
`gate_controller`, `central`, `demo`, `provisioning`) and the rooms inside them (`edge.capture`,
`edge.vision`, ...). `__main__` modules are launchers (command tables that name modules as
strings) and stay out of the graph.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("foundation", "wire", "edge", "gate_controller", "central", "demo", "provisioning")

# package -> packages it may import (besides itself)
ALLOWED = {
    "foundation": set(),
    "wire": {"foundation"},
    "gate_controller": {"foundation", "wire"},
    "central": {"foundation", "wire"},
    "edge": {"foundation", "wire", "gate_controller"},
    "provisioning": {"foundation", "wire", "edge", "gate_controller", "central"},
    "demo": {"foundation", "wire", "edge", "gate_controller", "central", "provisioning"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__main__":
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n.split(".")[0] in PACKAGES}


def _room(module: str) -> str:
    """A module's room: `edge.capture` for `edge.capture.reader`, else its top package."""
    parts = module.split(".")
    if parts[0] != "edge":
        return parts[0]
    if len(parts) >= 2 and (ROOT.joinpath(*parts[:2]) / "__init__.py").exists():
        return ".".join(parts[:2])
    return parts[0]


MODULES = _modules()
GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def _edges(level) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        src = level(module)
        for target in targets:
            # `from pkg import name` names a module or an attribute: keep the longest module.
            while target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            dst = level(target)
            if dst != src:
                edges.setdefault(src, set()).add(dst)
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_the_layers_below_it(package):
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items() if module.split(".")[0] == package
        for target in targets if target.split(".")[0] not in ALLOWED[package] | {package})
    assert not wrong, "\n".join(wrong)


def test_the_gate_controller_imports_nothing_of_the_daemon():
    offenders = sorted(m for m, targets in GRAPH.items() if m.startswith("gate_controller")
                       and any(t.split(".")[0] == "edge" for t in targets))
    assert offenders == []


def test_no_cycle_between_packages():
    assert _cycle(_edges(lambda m: m.split(".")[0])) is None


def test_no_cycle_between_rooms():
    assert _cycle(_edges(_room)) is None


def test_no_cycle_between_modules():
    assert _cycle(_edges(lambda m: m)) is None


def test_no_module_over_400_lines():
    long = sorted(f"{p.relative_to(ROOT)}: {n}" for p in MODULES.values()
                  if (n := len(p.read_text().splitlines())) > 400)
    assert not long, "\n".join(long)
