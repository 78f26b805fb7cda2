"""The worker's hot path, counted: one message that completes a sprint's last task.

Counts the SQL statements (and transactions) ``automation.evaluate_event``
issues for that message, with an engine listener. A count, not a time: it
only moves when the code path changes, so a regression shows up here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, select

from app.services import automation
from app.store.tables import OutboxEntry
from tests.support import Api

# Before issue 10: 33 statements on SQLite, 30 on PostgreSQL (the trigger read, enveloped and matched
# twice, the sprint looked up then locked twice, the trigger's task folded twice). After: 24 and 21.
# PostgreSQL's claim then read the visible bound first (event_fence: the log complete below the trigger): 22.
MAX_STATEMENTS = {"sqlite": 24, "postgresql": 22}
MAX_TRANSACTIONS = 1


@dataclass
class Counted:
    statements: list[str] = field(default_factory=list)
    transactions: int = 0


@contextmanager
def counting(engine: Any) -> Iterator[Counted]:
    counted = Counted()

    def on_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")):
            counted.statements.append(statement)

    def on_begin(conn: Any) -> None:
        counted.transactions += 1

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "begin", on_begin)
    try:
        yield counted
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "begin", on_begin)


def _evaluate_pending(runtime: Any) -> None:
    with runtime.read_uow() as uow:
        pending = list(uow.session.scalars(select(OutboxEntry.event_id).order_by(OutboxEntry.event_id)))
    automation.evaluate_events(pending, runtime.uow(), runtime.clock, depth_limit=5, final=False)


def test_completing_the_last_task_completes_the_sprint_in_few_statements(api: Api, runtime: Any) -> None:
    api.create_sprint("S-HOT", status="active")
    api.create_task("T-HOT-1", sprint="S-HOT", status="completed")
    api.create_task("T-HOT-2", sprint="S-HOT", status="in_progress")
    _evaluate_pending(runtime)  # the creations' rule runs, and the rule rows seeded: not what is measured
    api.update_task("T-HOT-2", status="completed")
    [trigger] = api.events(type="orchestration.task.status_changed", entity_code="T-HOT-2")

    with counting(runtime.engine) as counted:
        automation.evaluate_event(trigger["id"], runtime.uow(), runtime.clock, depth_limit=5, final=False)

    assert api.get("/sprints/S-HOT").get_json()["status"] == "completed"
    print(f"\nworker hot path: {len(counted.statements)} statements in {counted.transactions} transactions")
    limit = MAX_STATEMENTS[runtime.engine.dialect.name]
    assert len(counted.statements) <= limit, "\n\n".join(counted.statements)
    assert counted.transactions <= MAX_TRANSACTIONS
