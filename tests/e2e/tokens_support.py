"""Real gunicorn (two workers) for the token tests and bench, with an access log naming the worker of each
request, and the traffic they drive: a quiet client and a runaway one."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.e2e.conftest import BIN, ROOT, free_port, wait_until_healthy

ACCESS_FORMAT = "%(p)s %(m)s %(U)s %(s)s"
QUIET_EVERY = 0.05  # seconds between the quiet client's writes


@dataclass
class Server:
    base: str
    env: dict[str, str]
    access_log: Path
    error_log: Path

    @property
    def api(self) -> str:
        return f"{self.base}/api/orchestration"

    def logs(self) -> str:
        return "".join(path.read_text(errors="replace") for path in (self.access_log, self.error_log) if path.exists())

    def served(self) -> list[tuple[str, str, str, int]]:
        """(worker pid, method, path, status) of every request so far."""
        lines = self.access_log.read_text().splitlines() if self.access_log.exists() else []
        rows = [line.split(" ") for line in lines]
        return [(r[0], r[1], r[2], int(r[3])) for r in rows if len(r) == 4]


@contextmanager
def gunicorn(database_url: str, tmp_path: Path, **extra_env: str) -> Iterator[Server]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "PORT": str(port), "WEB_CONCURRENCY": "2",
           "ARCHIVE_DIR": str(tmp_path / "archive"), "ORCH_BROKER_DIR": str(tmp_path / "broker"),
           "ORCH_DISPATCH_AFTER_COMMIT": "0", **extra_env}
    access_log, error_log = tmp_path / f"access-{port}.log", tmp_path / f"gunicorn-{port}.log"
    errors = error_log.open("wb")
    process = subprocess.Popen([str(BIN / "gunicorn"), "app:create_app()", "--access-logfile", str(access_log),
                                "--access-logformat", ACCESS_FORMAT], cwd=ROOT, env=env,
                               stdout=errors, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, process)
        yield Server(base, env, access_log, error_log)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
        errors.close()


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


def runaway_traffic(server: Server, token: str, key: str, push: float, seconds: float) -> Outcome:
    """Writes offered at ``push`` per second for ``seconds``, from a pool so slow answers do not slow the offer."""
    outcome, local = Outcome(), threading.local()

    def send(n: int) -> None:
        time.sleep(max(0.0, start + n / push - time.monotonic()))
        if not hasattr(local, "session"):
            local.session = requests.Session()
        write(local.session, server, token, key, outcome)

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(send, range(int(push * seconds))))
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
