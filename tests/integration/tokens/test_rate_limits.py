"""Per-token rate limits: 429 with Retry-After, decided before anything is recorded; shared through Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import create_app
from app.config import Settings
from app.services.rate_limit import LocalBuckets, RedisBuckets, RequestLimiter
from app.services.tokens import Principal
from tests.conftest import make_settings
from tests.integration.automation.workers import RedisServer
from tests.support import Api, wipe


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def slow_writer(api: Api) -> str:
    """A writer allowed one write per ten seconds (a bucket of one), and reads at the default rate."""
    response = api.post("/tokens", json={"actor": "agent:runaway", "role": "writer", "writes_per_second": 0.1})
    assert response.status_code == 201
    return str(response.get_json()["token"])


def test_writes_past_the_limit_get_429_with_retry_after_and_record_nothing(api: Api, slow_writer: str) -> None:
    first = api.post("/sprints", role=None, headers=bearer(slow_writer), json={"sprint_code": "S-1", "title": "t"})
    assert first.status_code == 201
    refused = api.post("/sprints", role=None, headers=bearer(slow_writer), json={"sprint_code": "S-2", "title": "t"})
    assert refused.status_code == 429 and refused.content_type == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 10
    assert refused.get_json()["status"] == 429 and "0.1 writes per second" in refused.get_json()["detail"]
    assert api.get("/sprints/S-2").status_code == 404
    assert [e["entity"]["code"] for e in api.events(entity_type="sprint")] == ["S-1"]


def test_a_limited_token_still_reads_and_other_tokens_are_untouched(api: Api, slow_writer: str) -> None:
    api.post("/sprints", role=None, headers=bearer(slow_writer), json={"sprint_code": "S-1", "title": "t"})
    assert api.patch("/sprints/S-1", role=None, headers=bearer(slow_writer), json={"title": "u"}).status_code == 429
    assert api.get("/sprints/S-1", role=None, headers=bearer(slow_writer)).status_code == 200
    for n in range(5):
        assert api.patch("/sprints/S-1", role="writer", json={"title": f"v{n}"}).status_code == 200


def test_the_global_limits_come_from_the_environment() -> None:
    settings = Settings.from_env({"ORCH_RATE_LIMIT_WRITES": "5", "ORCH_RATE_LIMIT_READS": "7",
                                  "ORCH_RATE_LIMIT_BURST": "3"})
    assert (settings.rate_limit_writes, settings.rate_limit_reads, settings.rate_limit_burst) == (5, 7, 3)
    assert Settings().rate_limit_writes == 50 and Settings().rate_limit_reads == 200


def test_a_global_write_limit_applies_to_tokens_without_their_own(database_url: str, tmp_path: Path) -> None:
    app = create_app(make_settings(database_url, tmp_path, rate_limit_writes=0.1, rate_limit_burst=1))
    runtime = app.extensions["orchestration"]
    wipe(runtime.engine)
    from app.services import tokens

    api = Api(app.test_client(), {"writer": tokens.create_token("user:w", "writer", runtime.uow(), runtime.clock)})
    statuses = [api.post("/sprints", role="writer", json={"sprint_code": f"S-{n}", "title": "t"}).status_code
                for n in range(3)]
    assert statuses == [201, 429, 429]
    assert api.get("/sprints", role="writer").status_code == 200
    runtime.engine.dispose()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


def principal(token_id: int, writes: float | None) -> Principal:
    return Principal("agent:x", "writer", token_id, None, writes, None)


def test_redis_buckets_are_shared_by_every_limiter_on_the_same_redis(redis_server: RedisServer) -> None:
    settings = Settings(database_url="sqlite:///shared.db", redis_url=redis_server.url, rate_limit_burst=10)
    one, two = RequestLimiter(settings), RequestLimiter(settings)  # two processes: a bucket of 5, +1 per 2 s
    assert isinstance(one._buckets, RedisBuckets)
    taken = [limiter.admit(principal(1, 0.5), write=True) for limiter in (one, two) * 5]
    assert taken[:5] == [0.0] * 5 and all(wait > 0 for wait in taken[5:])
    assert max(taken) <= 2.0 + 1e-6
    elsewhere = RequestLimiter(Settings(database_url="sqlite:///other.db", redis_url=redis_server.url))
    assert elsewhere.admit(principal(1, 0.5), write=True) == 0.0, "another database's token 1 has its own bucket"


def test_a_redis_that_does_not_answer_falls_back_to_the_process_buckets() -> None:
    dead = RedisServer()  # never started: nothing listens on its port
    buckets = RedisBuckets(dead.url, LocalBuckets())
    assert [buckets.take("k", 1.0, 2.0) for _ in range(3)][:2] == [0.0, 0.0]
    assert buckets.take("k", 1.0, 2.0) > 0


def test_local_buckets_refill_at_the_rate() -> None:
    buckets = LocalBuckets()
    assert buckets.take("slow", 0.01, 1.0) == 0.0
    assert 99 < buckets.take("slow", 0.01, 1.0) <= 100
    assert buckets.take("fast", 100.0, 1.0) == 0.0
    time.sleep(0.02)  # two tokens' worth of refill, capped at the bucket's one
    assert buckets.take("fast", 100.0, 1.0) == 0.0


def test_a_clock_set_back_neither_empties_a_bucket_nor_stops_revocation_checks(api: Api, runtime: object) -> None:
    """freezegun moves ``time.monotonic`` too; leaving a frozen future must not lock a token out."""
    from freezegun import freeze_time

    response = api.post("/tokens", json={"actor": "agent:t", "role": "reader", "reads_per_second": 5})
    created = response.get_json()
    with freeze_time("2031-01-01"):
        assert api.get("/sprints", role=None, headers=bearer(created["token"])).status_code == 200
    assert api.get("/sprints", role=None, headers=bearer(created["token"])).status_code == 200
    assert api.delete(f"/tokens/{created['id']}").status_code == 204
    with freeze_time("2031-01-01"):
        assert api.get("/sprints", role=None, headers=bearer(created["token"])).status_code == 401


def test_a_global_rate_of_zero_means_no_limit_but_a_token_of_its_own_keeps_its_limit() -> None:
    limiter = RequestLimiter(Settings(database_url="sqlite:///x.db", rate_limit_writes=0, rate_limit_burst=1))
    assert all(limiter.admit(principal(1, None), write=True) == 0.0 for _ in range(500))
    assert [limiter.admit(principal(2, 0.01), write=True) > 0 for _ in range(2)] == [False, True]
