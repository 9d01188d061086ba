"""The tree's layering, read from its imports (ast, no import is executed).

- ``networks`` and ``storage`` take nothing from ``containers`` but ``containers.models`` (pools
  hold containers); shared helpers (XML, names, MACs) live in ``console``.
- ``containers`` takes nothing from ``networks`` or ``storage`` but their models, except the
  exceptions listed below with their reason (each a known debt of issue 14, not a licence).
- No views module imports a driver module: views go through services.
- No import cycle among the apps' modules at module level. Imports inside a function (lazy, run
  after every module is loaded) and under ``if TYPE_CHECKING:`` are excluded from the cycle check;
  the other two rules read every import, lazy ones included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("console", "containers", "storage", "networks")

# (importer, imported module) pairs allowed into containers, with why.
CONTAINER_EXCEPTIONS = {
    ("containers.drivers.lxc", "storage.drivers.pool"): "lxc-create's -B arguments come from the pool kind",
    ("containers.services", "storage.drivers.pool"): "a container's store is checked against its pool kind",
    ("containers.services", "storage.drivers.zfs"): "a ZFS dataset name is validated before argv",
    ("containers.services", "storage.validators"): "an LVM name is validated before argv",
    ("containers.handlers", "storage.drivers.btrfs"): "a btrfs container's subvolume is made by the agent",
    ("containers.handlers", "storage.inventory"): "a pool's usage is refreshed after a container changes it",
    ("containers.inventory", "storage.drivers.lvm"): "a container's logical volume is read from lvs",
    ("containers.inventory", "storage.drivers.zfs"): "a container's dataset is read from zfs list",
    ("containers.inventory", "storage.validators"): "an LVM name read from a config is validated",
    ("containers.libvirt.services", "networks.network_xml"): "a domain's network name is validated",
}


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for app in APPS for p in (ROOT / app).rglob("*.py")}


def _imports(module: str, *, lazy: bool) -> set[str]:
    """The app modules ``module`` imports (``lazy``: also inside functions and TYPE_CHECKING)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def target(base: str, name: str | None = None) -> None:
        full = f"{base}.{name}" if name else base
        if full in MODULES:
            found.add(full)
        elif base in MODULES:
            found.add(base)

    def visit(nodes) -> None:
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                if lazy:
                    visit(ast.iter_child_nodes(node))
            elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                if lazy:
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    target(alias.name)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(parts + ([node.module] if node.module else []))
                for alias in node.names:
                    target(base, alias.name)
            else:
                visit(ast.iter_child_nodes(node))

    visit(ast.parse(path.read_text()).body)
    return found


def test_the_reader_finds_imports_at_every_level():
    # The checks below are only as good as this reader: a lazy import, a relative one, a module
    # imported by name from its package.
    assert "storage.drivers.btrfs" in _imports("containers.handlers", lazy=True)
    assert "console.tasks" in _imports("containers.handlers", lazy=False)
    lazy_only = _imports("containers.apps", lazy=True) - _imports("containers.apps", lazy=False)
    assert "containers.handlers" in lazy_only


def test_containers_take_only_models_from_networks_and_storage():
    bad = []
    for module in sorted(MODULES):
        if not module.startswith("containers"):
            continue
        for imported in sorted(_imports(module, lazy=True)):
            if imported.split(".")[0] not in ("networks", "storage") or imported.endswith(".models"):
                continue
            if (module, imported) not in CONTAINER_EXCEPTIONS:
                bad.append(f"{module} imports {imported}")
    assert bad == []


def test_networks_and_storage_take_only_the_model_from_containers():
    seen, bad = set(), []
    for module in sorted(MODULES):
        if module.split(".")[0] not in ("networks", "storage"):
            continue
        for imported in sorted(_imports(module, lazy=True)):
            if imported.split(".")[0] != "containers":
                continue
            seen.add(imported)
            if imported != "containers.models":
                bad.append(f"{module} imports {imported}")
    assert bad == []
    # The reader sees the one allowed import (storage's pools hold containers).
    assert seen == {"containers.models"}


def test_every_listed_exception_is_still_needed():
    stale = [pair for pair in CONTAINER_EXCEPTIONS if pair[1] not in _imports(pair[0], lazy=True)]
    assert stale == []


def test_no_views_module_imports_a_driver():
    views = [m for m in MODULES if m.rpartition(".")[2] == "views" or ".views." in m]
    assert views, "no views module found: the check would pass on anything"
    bad = [
        f"{m} imports {i}" for m in sorted(views) for i in sorted(_imports(m, lazy=True)) if ".drivers" in i
    ]
    assert bad == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            strong(module)
    return found


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a.x": {"b.y"}, "b.y": {"c.z"}, "c.z": {"a.x"}, "d.w": {"a.x"}}
    assert _cycles(graph) == [["a.x", "b.y", "c.z"]]
    assert _cycles({"a.x": {"b.y"}, "b.y": set()}) == []


@pytest.mark.parametrize("app", APPS)
def test_no_module_level_import_cycle(app):
    graph = {m: _imports(m, lazy=False) - {m} for m in MODULES}
    assert [c for c in _cycles(graph) if c[0].split(".")[0] == app] == []
