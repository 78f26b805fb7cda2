"""Pooled PostgreSQL connections the server has closed are never handed out (no pre-ping round trip)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text

from tests.processes import wait_for
from tests.support import Api

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def _terminate_pooled_backends(runtime: Any) -> int:
    """What a server restart or an administrator does to every idle connection of the pool
    (``pg_terminate_backend`` only signals: wait until those backends are gone)."""
    with runtime.engine.connect() as own:
        pids = list(own.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND pid <> pg_backend_pid()")).scalars())
        for pid in pids:
            own.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        own.commit()
        alive = text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)")

        def gone() -> bool:  # a fresh transaction each time: pg_stat_activity is read once per transaction
            with own.begin():
                return bool(own.execute(alive, {"pids": pids}).scalar_one() == 0)

        wait_for(gone, 10, "the terminated backends to exit", 0.01)
    return len(pids)


def test_a_request_after_its_pooled_connection_was_terminated_succeeds(api: Api, runtime: Any) -> None:
    api.create_task("T-POOL")
    assert runtime.engine.pool.checkedin() >= 1
    assert _terminate_pooled_backends(runtime) >= 1

    assert api.patch("/tasks/T-POOL", json={"progress": 5}).status_code == 200
    assert api.get("/tasks/T-POOL").get_json()["progress"] == 5


def test_a_live_pooled_connection_is_handed_out_without_a_round_trip(api: Api, runtime: Any) -> None:
    api.create_task("T-QUIET")
    sent: list[str] = []
    event.listen(runtime.engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    with runtime.engine.connect() as connection:
        connection.exec_driver_sql("SELECT 42")
    assert sent == ["SELECT 42"]
