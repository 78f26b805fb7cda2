"""The web tier under long-lived and slow connections: real gunicorn with the project's config.

Bounded and loopback only. Figures are written to ``tests/artifacts/stream_load.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from app.domain.subscriptions import Subscription, parse_channel
from tests.e2e.conftest import BIN, ROOT, cli_token, free_port, wait_until_healthy
from tests.integration.automation.workers import RedisServer

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SUBSCRIBERS, SLOW_CLIENTS, TOKENS = 200, 20, 20
STARVED_RATIO = 4.0
PAIRS = 60  # PATCH + GET per round (two rounds of each kind)
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
QUERIES: list[tuple[str, Subscription]] = [
    ("channel=orchestration.task.*", Subscription(channels=(parse_channel("orchestration.task.*"),))),
    ("channel=orchestration.task.LOAD-3", Subscription(channels=(parse_channel("orchestration.task.LOAD-3"),))),
    ("type=orchestration.task.progress_updated&actor=user:load",
     Subscription(type="orchestration.task.progress_updated", actor="user:load")),
    ("channel=orchestration.sprint.*", Subscription(channels=(parse_channel("orchestration.sprint.*"),))),
]


class SlowClients:
    """Sockets that send a partial request, then one header line every 3 s, and never finish it."""

    def __init__(self, port: int, count: int) -> None:
        self.socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
        for sock in self.socks:
            sock.sendall(b"GET /api/orchestration/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, daemon=True)
        self._thread.start()

    def _drip(self) -> None:
        line = 0
        while not self._stop.wait(3.0):
            line += 1
            for sock in self.socks:
                with contextlib.suppress(OSError):
                    sock.sendall(f"X-Slow-{line}: 1\r\n".encode())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in self.socks:
            sock.close()


@pytest.fixture
def loaded_server(pg_url: str, tmp_path: Path) -> Iterator[tuple[str, int, dict[str, str]]]:
    """gunicorn (project config: gevent workers) on PostgreSQL, woken through a private Redis."""
    from sqlalchemy import create_engine

    from tests.support import wipe

    engine = create_engine(pg_url)
    wipe(engine)
    engine.dispose()
    redis = RedisServer()
    redis.start()
    port = free_port()
    env = {**os.environ, "DATABASE_URL": pg_url, "PORT": str(port), "REDIS_URL": redis.url,
           "ARCHIVE_DIR": str(tmp_path / "archive"), "ORCH_BROKER_DIR": str(tmp_path / "broker"),
           "ORCH_STREAM_SLOT_DIR": str(tmp_path / "streams"), "ORCH_DISPATCH_AFTER_COMMIT": "0",
           # room for the next round's streams while the server notices the last round's hang-ups
           "ORCH_STREAM_MAX_PER_TOKEN": str(2 * SUBSCRIBERS // TOKENS), "ORCH_STREAM_HEARTBEAT": "1"}
    process = subprocess.Popen([str(BIN / "gunicorn"), "app:create_app()"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", process)
        yield f"http://127.0.0.1:{port}", port, env
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
        redis.stop()


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def run_round(api: str, headers: dict[str, str], start: int, pairs: int = PAIRS) -> list[float]:
    """PATCH then GET, paced, one client: latencies in seconds; every answer must be right."""
    latencies: list[float] = []
    session = requests.Session()
    for n in range(pairs):
        code = f"LOAD-{n % 10}"
        began = time.perf_counter()
        patched = session.patch(f"{api}/tasks/{code}", json={"progress": (start + n) % 101}, headers=headers, timeout=30)
        latencies.append(time.perf_counter() - began)
        began = time.perf_counter()
        read = session.get(f"{api}/tasks/{code}", headers=headers, timeout=30)
        latencies.append(time.perf_counter() - began)
        assert patched.status_code == 200 and read.status_code == 200
        time.sleep(0.03)  # a steady, unsaturated request rate: latency, not throughput, is compared
    return latencies


def reader_tokens(database_url: str, count: int) -> list[str]:
    """Made in-process (the CLI would cost a process start each)."""
    from app.config import Settings
    from app.runtime import Runtime
    from app.services import tokens

    rt = Runtime.build(Settings(database_url=database_url))
    try:
        return [tokens.create_token(f"user:watcher{i}", "reader", rt.uow(), rt.clock) for i in range(count)]
    finally:
        rt.engine.dispose()


def start_swarm(port: int, tokens: list[str], folder: Path) -> tuple[subprocess.Popen[str], list[str], Path]:
    folder.mkdir()
    queries = [QUERIES[i % len(QUERIES)][0] for i in range(SUBSCRIBERS)]
    plan = folder / "plan.json"
    plan.write_text(json.dumps([{"token": tokens[i % TOKENS], "query": q} for i, q in enumerate(queries)]))
    out = folder / "received.json"
    swarm = subprocess.Popen([sys.executable, "-m", "tests.e2e.sse_swarm", str(port), str(plan), str(out)],
                             cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert swarm.stdout is not None and swarm.stdout.readline().strip() == "ready"
    return swarm, queries, out


def loaded_round(api: str, headers: dict[str, str], port: int, tokens: list[str], folder: Path,
                 start: int) -> list[float]:
    """A round with 200 subscribers and 20 slow clients connected; checks every delivery after it."""
    tail = events_after(api, headers, 0)[-1]["id"]
    swarm, queries, out = start_swarm(port, tokens, folder)
    slow = SlowClients(port, SLOW_CLIENTS)
    try:
        latencies = run_round(api, headers, start)
        assert requests.get(f"{api}/health", timeout=10).status_code == 200
        swarm_sees_the_sentinels(swarm, api, headers, folder.name)
        log = events_after(api, headers, tail)
    finally:
        slow.close()
        if swarm.poll() is None:
            swarm.kill()
        swarm.wait(30)
    received = json.loads(out.read_text())
    by_query = dict(QUERIES)
    assert len(received) == SUBSCRIBERS
    for query, ids in zip(queries, received, strict=True):
        assert ids == [e["id"] for e in log if by_query[query].matches(e)], query
    return latencies


def test_200_subscribers_and_20_slow_clients_do_not_starve_patch_and_get(
        loaded_server: tuple[str, int, dict[str, str]], tmp_path: Path) -> None:
    base, port, env = loaded_server
    api = f"{base}/api/orchestration"
    headers = {"Authorization": f"Bearer {cli_token(env, 'writer', 'user:load')}"}
    for n in range(10):
        assert requests.post(f"{api}/tasks", json={"task_code": f"LOAD-{n}", "title": "t"}, headers=headers).ok
    tokens = reader_tokens(env["DATABASE_URL"], TOKENS)
    run_round(api, headers, 0, pairs=10)  # warm-up: connections, caches
    baseline: list[float] = []
    loaded: list[float] = []
    for cycle in range(2):  # rounds interleaved, so drift on a shared machine hits both sides
        baseline += run_round(api, headers, 1000 + cycle)
        loaded += loaded_round(api, headers, port, tokens, tmp_path / f"cycle{cycle}", 2000 + cycle)
    figures = {"baseline_p99_ms": p99(baseline) * 1000, "loaded_p99_ms": p99(loaded) * 1000,
               "ratio": p99(loaded) / p99(baseline), "samples_each": len(baseline), "subscribers": SUBSCRIBERS}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "stream_load.json").write_text(json.dumps(figures, indent=2))
    print(figures)
    # A guard against starvation, not a performance figure (those belong to `make bench`): on a quiet
    # machine the ratio is about 1 (0.87 measured), but this 2-core machine's neighbours alone have
    # pushed the baseline's p99 from 23 ms to 100 ms. A web tier that subscribers or slow clients starve
    # leaves requests queued for whole seconds, far beyond this bound.
    assert figures["ratio"] <= STARVED_RATIO, figures


def events_after(api: str, headers: dict[str, str], tail: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 1000}
    while True:
        body = requests.get(f"{api}/events", params=params, headers=headers, timeout=30).json()
        items.extend(e for e in body["items"] if e["id"] > tail)
        if not body["next"]:
            return items
        params["after"] = body["next"]


def swarm_sees_the_sentinels(swarm: subprocess.Popen[str], api: str, headers: dict[str, str], name: str) -> None:
    """Two last events every subscriber matches one of; the swarm stops once each has arrived."""
    progress = requests.get(f"{api}/tasks/LOAD-3", headers=headers, timeout=10).json()["progress"]
    task = requests.patch(f"{api}/tasks/LOAD-3", json={"progress": (progress + 1) % 101}, headers=headers, timeout=10)
    code = f"SENTINEL-{name.upper()}"
    sprint = requests.post(f"{api}/sprints", json={"sprint_code": code, "title": "s"}, headers=headers, timeout=10)
    ids = [requests.get(f"{api}/events/entity/{kind}/{code}", headers=headers, timeout=10).json()["items"][-1]["id"]
           for kind, code in (("task", "LOAD-3"), ("sprint", code))]
    assert task.ok and sprint.ok and swarm.stdin is not None
    swarm.stdin.write(f"{ids[0]} {ids[1]}\n")
    swarm.stdin.flush()
    swarm.wait(60)


def test_the_zero_config_web_process_answers_health_while_20_clients_trickle_their_headers(
        sqlite_gunicorn: tuple[str, dict[str, str]]) -> None:
    base, _env = sqlite_gunicorn
    port = int(base.rsplit(":", 1)[1])
    slow = SlowClients(port, SLOW_CLIENTS)
    try:
        deadline = time.monotonic() + 7  # across two header drips
        answers = []
        while time.monotonic() < deadline:
            answers.append(requests.get(f"{base}/api/orchestration/health", timeout=10).status_code)
            time.sleep(0.5)
        assert answers and set(answers) == {200}
        assert all(sock.fileno() != -1 for sock in slow.socks)  # still connected, still unanswered
    finally:
        slow.close()
