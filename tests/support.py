"""Test helpers shared by the suites: databases made for the run, an API client with roles."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def migrate(url: str) -> None:
    """Bring a database to head with the real Alembic migrations."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")


@contextmanager
def postgres_database(prefix: str = "orch_test") -> Iterator[str]:
    """A fresh PostgreSQL database for one run, dropped afterwards."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def sqlite_database(folder: Path) -> str:
    url = f"sqlite:///{folder / 'orchestration.db'}"
    migrate(url)
    return url


TABLES_IN_DELETE_ORDER = (
    "webhook_attempts",
    "webhook_deliveries",
    "automation_rule_runs",
    "orchestration_outbox",
    "orchestration_event_rollups",
    "orchestration_event_marginals",
    "orchestration_snapshots",
    "orchestration_archive_manifests",
    "orchestration_events_archive",
    "orchestration_events",
    "agent_sessions",
    "signals",
    "tasks",
    "sprints",
    "api_tokens",
)


def wipe(engine: Any) -> None:
    """Empty every table between tests (user rules only: built-in rules stay).

    As a writer (BEGIN IMMEDIATE on SQLite): a deferred transaction that reads
    first and writes later fails at once if a worker commits in between. On
    PostgreSQL a real worker may still be claiming a previous test's event
    (the visible bound's sequence read, then the outbox rows) while TRUNCATE
    locks the same relations in its own order; when the database picks the
    TRUNCATE as the deadlock victim, it is simply tried again.
    """
    from sqlalchemy.exc import OperationalError

    for attempt in range(5):
        try:
            return _wipe_once(engine)
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != "40P01" or attempt == 4:  # deadlock_detected
                raise


def _wipe_once(engine: Any) -> None:
    with engine.execution_options(orchestration_write=True).begin() as connection:
        names = set(engine.dialect.get_table_names(connection))
        tables = [t for t in TABLES_IN_DELETE_ORDER if t in names]
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))
        if "orchestration_rollup_watermark" in names:  # nothing left to fold (ids may restart at 1)
            connection.execute(text("UPDATE orchestration_rollup_watermark SET folded_upto = 0"))
        if "automation_rules" in names:
            connection.execute(text("DELETE FROM automation_rules WHERE builtin = false"))
            connection.execute(text("UPDATE automation_rules SET enabled = true"))


class Api:
    """A Flask test client that speaks as a reader, writer or admin."""

    BASE = "/api/orchestration"

    def __init__(self, client: Any, tokens: dict[str, str]) -> None:
        self.client = client
        self.tokens = tokens

    def call(self, method: str, path: str, role: str | None = "admin", headers: dict[str, str] | None = None,
             **kwargs: Any) -> Any:
        merged = dict(headers or {})
        if role is not None:
            merged.setdefault("Authorization", f"Bearer {self.tokens[role]}")
        url = path if path.startswith("/openapi") or path.startswith("/docs") else self.BASE + path
        return self.client.open(url, method=method, headers=merged, **kwargs)

    def get(self, path: str, **kw: Any) -> Any:
        return self.call("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.call("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.call("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.call("DELETE", path, **kw)

    # --- the vocabulary tests speak ---

    def create_sprint(self, code: str, **fields: Any) -> dict[str, Any]:
        response = self.post("/sprints", json={"sprint_code": code, "title": f"Sprint {code}", **fields})
        assert response.status_code == 201, response.get_json()
        return response.get_json()  # type: ignore[no-any-return]

    def create_task(self, code: str, sprint: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {"task_code": code, "title": f"Task {code}", **fields}
        if sprint:
            body["sprint_code"] = sprint
        response = self.post("/tasks", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()  # type: ignore[no-any-return]

    def update_task(self, code: str, **fields: Any) -> dict[str, Any]:
        response = self.patch(f"/tasks/{code}", json=fields)
        assert response.status_code == 200, response.get_json()
        return response.get_json()  # type: ignore[no-any-return]

    def events(self, path: str = "/events", role: str = "admin", **params: Any) -> list[dict[str, Any]]:
        """Every item of a list (events by default) under the filters, following ``next`` to the end."""
        items: list[dict[str, Any]] = []
        params = {"limit": 1000, **params}
        while True:
            response = self.get(path, role=role, query_string=params)
            assert response.status_code == 200, response.get_json()
            body = response.get_json()
            items.extend(body["items"])
            if not body["next"]:
                return items
            params["after"] = body["next"]


def move_marked_to_archive(runtime: Any) -> None:
    """Rows a test stamped ``archived_at`` in place go where the archiver puts them: the archive table."""
    from app.store import archive_partitions
    from app.store.tables import EVENTS_ARCHIVE, Event

    with runtime.uow() as uow:
        session = uow.session
        stamps = session.scalars(select(Event.emitted_at).where(Event.archived_at.is_not(None)))
        archive_partitions.ensure(session, list(stamps))
        columns = ", ".join(c.name for c in Event.__table__.columns)
        session.execute(text(f"INSERT INTO {EVENTS_ARCHIVE.name} ({columns}) SELECT {columns} "
                             "FROM orchestration_events WHERE archived_at IS NOT NULL"))
        session.execute(text("DELETE FROM orchestration_events WHERE archived_at IS NOT NULL"))
        uow.commit()


FLAG_SPRINT_RULE = {
    "name": "flag_sprint",
    "trigger": {"type": "orchestration.task.status_changed",
                "conditions": [{"path": "status", "op": "changed_to", "value": "blocked"}]},
    "action": {"name": "set_field", "params": {"field": "title", "value": "has a blocked task", "target": "sprint"}},
}


def evaluate_beside_a_writer_holding_the_sprint(runtime: Any, sprint_code: str, evaluate: Any) -> list[BaseException]:
    """The lock-order scenario: a writer holds ``sprint_code``'s row while ``evaluate()`` runs in a thread;
    once that thread waits on a lock, the writer appends (registering in flight, as every writer does)
    and commits; the evaluation must then go on, neither deadlocked nor failed. Returns what it raised."""
    import threading
    import time

    from app.domain.events import PlannedEvent
    from app.services.context import ChangeContext
    from app.store import repositories
    from app.store.event_store import append

    writer = runtime.writer()
    sprint = repositories.find_sprint(writer, sprint_code, lock=True)
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            evaluate()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's assertion
            failures.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    deadline = time.monotonic() + 20
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    with runtime.engine.connect() as probe:
        while probe.execute(text(waiting)).scalar() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
    title, sprint.title = sprint.title, "held by a writer"
    append(writer, repositories.stream_of("sprint", sprint),
           [PlannedEvent("orchestration.sprint.updated", {"title": {"before": title, "after": sprint.title}})],
           ChangeContext(actor="user:writer").meta(), runtime.clock())
    writer.commit()
    writer.close()
    thread.join(30)
    return failures
