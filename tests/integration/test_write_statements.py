"""The API's write path, counted: a PATCH is the row lock and one tail statement on PostgreSQL.

The stream row's UPDATE rides in the tail statement (``row_update``) instead
of a flush of its own; what it wrote must be exactly what a flush would have,
and a change a flush alone can express (a task moved to another sprint) still
takes the flush. Counts, not times: they move only when the code path does.
"""

from __future__ import annotations

from typing import Any

from tests.integration.test_worker_statements import counting
from tests.support import Api

# Before: the row lock, the row's UPDATE (an ORM flush) and the tail; BEGIN and COMMIT are not statements here.
MAX_PATCH_STATEMENTS = {"postgresql": 2}


def _stream(api: Api, code: str) -> list[dict[str, Any]]:
    return sorted(api.events(entity_code=code), key=lambda e: e["sequence"] or 0)


def test_a_patch_sends_the_row_update_inside_the_tail_statement(api: Api, runtime: Any) -> None:
    api.create_task("T-W", title="write path", priority="P2")
    api.update_task("T-W", progress=1)

    with counting(runtime.engine) as counted:
        body = api.update_task("T-W", progress=2, priority="P1", metadata={"n": 2})

    assert counted.transactions == 1
    limit = MAX_PATCH_STATEMENTS.get(runtime.engine.dialect.name)
    if limit is not None:
        assert len(counted.statements) <= limit, "\n\n".join(counted.statements)
    fresh = api.get("/tasks/T-W").get_json()
    assert (fresh["progress"], fresh["priority"], fresh["metadata"], fresh["version"]) == (2, "P1", {"n": 2}, body["version"])
    assert fresh["updated_at"] == body["updated_at"]
    events = _stream(api, "T-W")
    assert [e["sequence"] for e in events] == list(range(1, fresh["version"] + 1))
    assert events[-1]["hash"] is not None


def test_the_next_write_sees_the_row_the_tail_updated(api: Api) -> None:
    """The row is left clean in the session, as a flush leaves it: nothing is written twice or lost."""
    api.create_task("T-W2", title="twice")
    for n in range(1, 6):
        api.update_task("T-W2", progress=n * 10)
    fresh = api.get("/tasks/T-W2").get_json()
    assert fresh["progress"] == 50
    assert [e["sequence"] for e in _stream(api, "T-W2")] == list(range(1, fresh["version"] + 1))


def test_moving_a_task_to_another_sprint_still_flushes_its_foreign_key(api: Api) -> None:
    api.create_sprint("S-W1")
    api.create_sprint("S-W2")
    api.create_task("T-W3", sprint="S-W1")

    api.update_task("T-W3", sprint_code="S-W2", progress=7)

    fresh = api.get("/tasks/T-W3").get_json()
    assert (fresh["sprint_code"], fresh["progress"]) == ("S-W2", 7)
    assert sum(api.get("/sprints/S-W2").get_json()["task_counts"].values()) == 1
