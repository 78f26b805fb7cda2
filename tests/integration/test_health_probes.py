"""Health that tells the truth, and the load balancer's probes (CONTRACT: /health, /livez, /readyz)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text, update

from app import create_app
from app.config import Settings
from app.runtime import Runtime
from app.store.tables import OutboxEntry
from tests.conftest import make_settings
from tests.integration.automation.workers import free_port
from tests.support import Api


def test_livez_and_readyz_answer_ok_without_a_token(api: Api) -> None:
    assert api.client.get("/livez").get_json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["database"] == {"status": "ok"}


def test_with_the_database_down_health_and_readyz_answer_503_and_livez_still_200(tmp_path: Path) -> None:
    closed = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere?connect_timeout=2"
    client = create_app(make_settings(closed, tmp_path)).test_client()

    health = client.get("/api/orchestration/health")
    assert health.status_code == 503 and health.headers["Retry-After"] == "5"
    body = health.get_json()
    assert body["status"] == "unavailable" and body["database"]["status"] == "unavailable"
    assert body["broker"]["status"] == "ok" and body["outbox"] is None
    assert client.get("/readyz").status_code == 503
    assert client.get("/livez").status_code == 200
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and "orch_database_up 0.0" in metrics.get_data(as_text=True)


def test_with_redis_down_health_is_200_degraded_naming_the_broker(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, celery_broker_url=f"redis://127.0.0.1:{free_port()}/0")
    response = create_app(settings).test_client().get("/api/orchestration/health")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["database"]["status"], body["broker"]["status"]) == ("degraded", "ok",
                                                                                      "unavailable")
    assert body["outbox"]["status"] == "ok"


def test_an_outbox_row_stuck_past_the_threshold_makes_health_degraded(app: Flask, api: Api) -> None:
    runtime = app.extensions["orchestration"]
    api.create_task("T-STUCK", priority="P0")  # alert_p0_task will see it: an outbox row, and no worker here
    fresh = api.get("/health", role=None).get_json()
    assert fresh["status"] == "ok" and fresh["outbox"]["pending"] == 1

    with runtime.engine.begin() as connection:  # as a poison message leaves it: sent again and again
        connection.execute(update(OutboxEntry).values(dispatch_count=25,
                                                      created_at=runtime.clock() - timedelta(minutes=61)))
    response = api.get("/health", role=None)
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "degraded" and body["broker"]["status"] == "ok"
    assert body["outbox"]["status"] == "lagging" and body["outbox"]["pending"] == 1
    assert body["outbox"]["oldest_pending_age_seconds"] > body["outbox"]["max_age_seconds"] == 60.0


@pytest.mark.postgres
def test_behind_pgbouncer_psycopg_prepares_no_statement(pg_url: str, tmp_path: Path) -> None:
    """ORCH_PGBOUNCER=1: transaction pooling hands each transaction any server connection."""
    settings = Settings.from_env({"DATABASE_URL": pg_url, "ORCH_PGBOUNCER": "1"})
    engine = Runtime.build(settings).engine
    try:
        with engine.connect() as connection:
            for _ in range(10):  # psycopg would prepare from the 5th execution on
                connection.execute(text("SELECT 1"))
            assert connection.connection.dbapi_connection.prepare_threshold is None  # type: ignore[union-attr]
            prepared = connection.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one()
            assert prepared == 0
    finally:
        engine.dispose()
