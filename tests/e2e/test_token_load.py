"""Load on loopback: a runaway token is held to its limit across both gunicorn workers (shared Redis buckets),
another token keeps working, and every accepted write is in the log exactly once.

Bounded: about 3 s of quiet traffic alone, then 3 s with the runaway token pushing 5x its limit.
Latencies are recorded (printed and attached to the test report), not asserted: the machine is shared.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine

from tests.e2e.conftest import cli_token
from tests.e2e.test_token_revocation import statuses, workers_answering
from tests.e2e.tokens_support import Server, gunicorn
from tests.integration.automation.workers import RedisServer
from tests.support import wipe

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# The runaway token's writes per second (burst: 2 s worth, the default); low, so that even a shared,
# loaded 2-core machine can offer 5x the limit and serve the excess its 429s.
LIMIT = 5.0
PUSH = 5 * LIMIT
SECONDS = 3.0
QUIET_EVERY = 0.05


@pytest.fixture(scope="module")
def server(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """gunicorn (2 workers) on PostgreSQL with a private Redis for the rate-limit buckets."""
    engine = create_engine(pg_url)
    wipe(engine)
    engine.dispose()
    redis = RedisServer()
    redis.start()
    try:
        with gunicorn(pg_url, tmp_path_factory.mktemp("load"), REDIS_URL=redis.url) as running:
            yield running
    finally:
        redis.stop()


@dataclass
class Outcome:
    sent: list[tuple[str, int, float]] = field(default_factory=list)  # (event_id, status, seconds)
    retry_after: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def status_counts(self) -> Counter[int]:
        return Counter(status for _, status, _ in self.sent)

    def accepted(self) -> list[str]:
        return [event_id for event_id, status, _ in self.sent if status in (200, 201)]

    def p99(self) -> float:
        latencies = sorted(seconds for _, _, seconds in self.sent)
        return latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]


def write(session: requests.Session, server: Server, token: str, key: str, outcome: Outcome) -> None:
    event_id = str(uuid.uuid4())
    started = time.perf_counter()
    response = session.post(f"{server.api}/events", headers={"Authorization": f"Bearer {token}"}, timeout=30,
                            json={"type": "custom.load", "session_key": key, "event_id": event_id, "data": {}})
    elapsed = time.perf_counter() - started
    with outcome.lock:
        outcome.sent.append((event_id, response.status_code, elapsed))
        if response.status_code == 429:
            outcome.retry_after.add(response.headers.get("Retry-After", ""))


def quiet_traffic(server: Server, token: str, key: str, stop: threading.Event) -> Outcome:
    """One client writing every 50 ms, one request at a time, until told to stop."""
    outcome, session = Outcome(), requests.Session()
    while not stop.is_set():
        write(session, server, token, key, outcome)
        time.sleep(QUIET_EVERY)
    return outcome


def runaway_traffic(server: Server, token: str, key: str) -> Outcome:
    """Writes offered at PUSH per second for SECONDS, from a pool so slow answers do not slow the offer."""
    outcome, local = Outcome(), threading.local()

    def send(n: int) -> None:
        time.sleep(max(0.0, start + n / PUSH - time.monotonic()))
        if not hasattr(local, "session"):
            local.session = requests.Session()
        write(local.session, server, token, key, outcome)

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(send, range(int(PUSH * SECONDS))))
    return outcome


def quiet_for(server: Server, token: str, key: str, seconds: float) -> Outcome:
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(quiet_traffic, server, token, key, stop)
        time.sleep(seconds)
        stop.set()
        return future.result()


def logged_event_ids(server: Server, admin: dict[str, str], key: str) -> Counter[str]:
    found: Counter[str] = Counter()
    params: dict[str, Any] = {"limit": 1000}
    while True:
        body = requests.get(f"{server.api}/events/session/{key}", params=params, headers=admin, timeout=30).json()
        found.update(e["event_id"] for e in body["items"] if e["type"] == "custom.load")
        if not body["next"]:
            return found
        params["after"] = body["next"]


def make_token(server: Server, admin: dict[str, str], actor: str, **limits: float) -> str:
    response = requests.post(f"{server.api}/tokens", json={"actor": actor, "role": "writer", **limits},
                             headers=admin, timeout=10)
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def test_a_runaway_token_gets_429_for_its_excess_while_another_token_keeps_writing(
        server: Server, record_property: Any) -> None:
    admin = {"Authorization": f"Bearer {cli_token(server.env)}"}
    quiet, runaway = make_token(server, admin, "agent:quiet"), make_token(server, admin, "agent:runaway",
                                                                             writes_per_second=LIMIT)
    for key in ("sess-quiet", "sess-runaway"):
        assert requests.post(f"{server.api}/sessions", json={"agent_id": "agent:x", "session_key": key},
                             headers=admin, timeout=10).status_code == 201

    baseline = quiet_for(server, quiet, "sess-quiet", SECONDS)
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as pool:
        during = pool.submit(quiet_traffic, server, quiet, "sess-quiet", stop)
        started = time.monotonic()
        noisy = runaway_traffic(server, runaway, "sess-runaway")
        elapsed = time.monotonic() - started
        stop.set()
        contended = during.result()

    counts = noisy.status_counts()
    print(f"\nrunaway: {dict(counts)} in {elapsed:.2f}s; quiet: {dict(baseline.status_counts())}, "
          f"{dict(contended.status_counts())}")
    # 503 only when the shared PostgreSQL refuses connections (other suites on this machine): the documented
    # answer, and such a write is not recorded, which the log check below verifies as well.
    assert counts[429] > 0 and set(counts) <= {201, 429, 503}
    assert counts[201] <= 2 * LIMIT + LIMIT * (elapsed + 1), "both workers share one bucket: 2 s worth, then LIMIT/s"
    for quiet_outcome in (baseline, contended):
        assert quiet_outcome.status_counts()[201] > 0 and set(quiet_outcome.status_counts()) <= {201, 503}
    assert noisy.retry_after <= {"1", "2"} and noisy.retry_after
    for key, outcomes in (("sess-runaway", [noisy]), ("sess-quiet", [baseline, contended])):
        accepted = [event_id for outcome in outcomes for event_id in outcome.accepted()]
        assert logged_event_ids(server, admin, key) == Counter(accepted), "every 2xx write once, no 429 write"

    figures = {"offered_per_s": round(len(noisy.sent) / elapsed, 1), "runaway_2xx": counts[201],
               "runaway_429": counts[429], "quiet_p99_alone_ms": round(baseline.p99() * 1000, 1),
               "quiet_p99_with_runaway_ms": round(contended.p99() * 1000, 1),
               "quiet_median_alone_ms": round(statistics.median(s for *_, s in baseline.sent) * 1000, 1),
               "quiet_median_with_runaway_ms": round(statistics.median(s for *_, s in contended.sent) * 1000, 1)}
    for name, value in figures.items():
        record_property(name, value)
    print(f"\n{figures}")


def test_a_revoked_token_gets_401_from_every_worker_on_postgresql_with_redis(server: Server) -> None:
    admin = {"Authorization": f"Bearer {cli_token(server.env)}"}
    created = requests.post(f"{server.api}/tokens", json={"actor": "agent:leaked", "role": "reader"},
                            headers=admin, timeout=10).json()
    mark = len(server.served())
    for _ in range(10):
        assert set(statuses(server, created["token"])) == {200}
        if len(workers_answering(server, 200, mark)) == 2:
            break
    assert requests.delete(f"{server.api}/tokens/{created['id']}", headers=admin, timeout=10).status_code == 204
    time.sleep(1.0)
    mark = len(server.served())
    for _ in range(10):
        assert set(statuses(server, created["token"])) == {401}
        if len(workers_answering(server, 401, mark)) == 2:
            break
    assert len(workers_answering(server, 401, mark)) == 2
    assert created["token"] not in server.logs()
