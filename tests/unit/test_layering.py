"""The architecture the design promises (DESIGN.md §2): a pure domain, use cases without SQL,
an HTTP layer that reaches the database only through use cases, and no import cycles.

Imports are read from the AST, function-local ones included: a cycle "broken" by importing
inside a function still ties the two modules together and is reported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRASTRUCTURE = ("flask", "sqlalchemy", "celery", "redis", "psycopg", "kombu", "marshmallow")


def _imports_of(tree: ast.Module, module: str, is_package: bool) -> list[tuple[str, tuple[str, ...]]]:
    """Every import of a file, anywhere in it, as ``(absolute module, names taken from it)``.

    Imports under ``if TYPE_CHECKING:`` never run, so they are left out.
    """
    found: list[tuple[str, tuple[str, ...]]] = []
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking_block(node)
               for child in node.body for n in ast.walk(child)}
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.extend((alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            if base:
                found.append((base, tuple(alias.name for alias in node.names)))
    return found


def _is_type_checking_block(node: ast.If) -> bool:
    test = node.test
    return ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def module_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module name → the modules it imports (inside the package or not).

    ``from a.b import c`` names ``a.b.c`` when that is a module of the package, else
    ``a.b``; the parent packages every import runs first are not counted as edges,
    or every module would be in a cycle with its package's ``__init__``.
    """
    files = {}
    for path in (root / package).rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        files[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in files.items():
        edges: set[str] = set()
        for base, taken in _imports_of(ast.parse(path.read_text()), name, is_package):
            submodules = {f"{base}.{t}" for t in taken if f"{base}.{t}" in files}
            edges |= submodules
            if len(submodules) < len(taken) or not taken:
                edges.add(base)
        graph[name] = edges
    return graph


def offenders(root: Path, package: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    """Modules of ``package`` (a dotted folder under ``root``) that import a forbidden name."""
    found = {}
    for module, names in module_graph(root, package.split(".")[0]).items():
        if not (module == package or module.startswith(package + ".")):
            continue
        bad = sorted(n for n in names if _is_under(n, forbidden))
        if bad:
            found[module] = bad
    return found


def _is_under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def import_cycles(root: Path, package: str) -> list[list[str]]:
    """Strongly connected groups of more than one module inside ``package`` (Tarjan)."""
    raw = module_graph(root, package)
    graph = {m: sorted(n for n in names if n in raw and n != m) for m, names in raw.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_domain_imports_no_infrastructure() -> None:
    assert offenders(ROOT, "app.domain", INFRASTRUCTURE) == {}


def test_the_domain_imports_nothing_from_outer_layers() -> None:
    assert offenders(ROOT, "app.domain", ("app.store", "app.services", "app.api", "workers")) == {}


def test_the_store_never_imports_use_cases_or_http() -> None:
    assert offenders(ROOT, "app.store", ("app.services", "app.api", "flask", "celery")) == {}


def test_use_cases_never_import_the_http_layer() -> None:
    assert offenders(ROOT, "app.services", ("app.api", "flask")) == {}


def test_use_cases_import_no_sqlalchemy() -> None:
    assert offenders(ROOT, "app.services", ("sqlalchemy",)) == {}


def test_the_http_layer_reaches_the_database_only_through_use_cases() -> None:
    assert offenders(ROOT, "app.api", ("sqlalchemy", "app.store")) == {}


def test_workers_never_import_the_http_layer() -> None:
    assert offenders(ROOT, "workers", ("app.api",)) == {}


def test_app_has_no_import_cycle() -> None:
    assert import_cycles(ROOT, "app") == []


# The checks themselves, fed a package with each violation: a rule that cannot fail proves nothing.

def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, source in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return tmp_path


@pytest.mark.parametrize(("package", "forbidden", "source"), [
    ("app.domain", INFRASTRUCTURE, "from sqlalchemy import select\n"),
    ("app.services", ("sqlalchemy",), "def f():\n    import sqlalchemy.orm\n"),
    ("app.api", ("sqlalchemy", "app.store"), "from app.store.uow import UnitOfWork\n"),
    ("app.api", ("sqlalchemy", "app.store"), "from ..store import tables\n"),
    ("app.api", ("sqlalchemy", "app.store"), "from sqlalchemy.exc import DBAPIError\n"),
])
def test_a_forbidden_import_is_caught(tmp_path: Path, package: str, forbidden: tuple[str, ...],
                                      source: str) -> None:
    folder = package.replace(".", "/")
    root = _package(tmp_path, {"app/__init__.py": "", f"{folder}/__init__.py": "", f"{folder}/bad.py": source})
    found = offenders(root, package, forbidden)
    assert list(found) == [f"{package}.bad"] and found[f"{package}.bad"]


def test_a_cycle_hidden_by_a_function_local_import_is_caught(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "app/__init__.py": "", "app/store/__init__.py": "",
        "app/store/log.py": "def take():\n    from app.store import snaps\n    return snaps\n",
        "app/store/snaps.py": "from app.store.reads import envelope\n",
        "app/store/reads.py": "from app.store.log import take as envelope\n",
        "app/store/alone.py": "from app.store import reads\n",
    })
    assert import_cycles(root, "app") == [["app.store.log", "app.store.reads", "app.store.snaps"]]


def test_type_checking_imports_make_no_cycle(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "app/__init__.py": "",
        "app/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app import b\n",
        "app/b.py": "from app import a\n",
    })
    assert import_cycles(root, "app") == []
