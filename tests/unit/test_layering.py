"""The architecture the design promises: a pure domain and workers that never reach into the API."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INFRASTRUCTURE = ("flask", "sqlalchemy", "celery", "redis", "psycopg", "kombu", "marshmallow")


def imported_modules(folder: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        found[str(path)] = names
    return found


def offenders(folder: Path, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    return {
        path: sorted(n for n in names if n.split(".")[0] in forbidden or n.startswith(forbidden))
        for path, names in imported_modules(folder).items()
        if any(n.split(".")[0] in forbidden or n.startswith(forbidden) for n in names)
    }


def test_the_domain_imports_no_infrastructure() -> None:
    assert offenders(ROOT / "app" / "domain", INFRASTRUCTURE) == {}


def test_the_domain_imports_nothing_from_outer_layers() -> None:
    outer = ("app.store", "app.services", "app.api", "workers")
    assert offenders(ROOT / "app" / "domain", outer) == {}


def test_the_store_never_imports_use_cases_or_http() -> None:
    assert offenders(ROOT / "app" / "store", ("app.services", "app.api", "flask", "celery")) == {}


def test_use_cases_never_import_the_http_layer() -> None:
    assert offenders(ROOT / "app" / "services", ("app.api", "flask")) == {}


def test_workers_never_import_the_http_layer() -> None:
    folder = ROOT / "workers"
    if folder.exists():
        assert offenders(folder, ("app.api",)) == {}


def test_the_check_itself_catches_a_forbidden_import(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("from sqlalchemy import select\nimport flask\n")
    found = {n for names in imported_modules(tmp_path).values() for n in names}
    assert {"sqlalchemy", "flask"} <= found
