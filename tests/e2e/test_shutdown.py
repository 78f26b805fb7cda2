"""Ctrl+C on ``make run`` under load: every process stops by itself, nothing is lost or applied twice.

The load creates P0 tasks (each must get exactly one ``alert_p0_task`` alert)
from two client threads; the interrupt lands while requests and rule runs are
in flight. After a restart in the same folder the outbox drains and every task
that exists, acknowledged or not, has its one alert.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
from collections import Counter
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.test_quickstart import QuickStart, alive, descendants, scratch_copy
from tests.integration.automation.workers import free_port, wait_for


class Load:
    """Two threads creating P0 tasks until told to stop; remembers which creations were acknowledged."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token
        self.acknowledged: list[str] = []
        self.stopping = threading.Event()
        self._numbers = itertools.count()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(2)]

    def _run(self) -> None:
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {self.token}"
        while not self.stopping.is_set():
            code = f"LOAD-{next(self._numbers)}"
            with suppress(requests.RequestException):
                response = http.post(f"{self.base}/tasks", timeout=5,
                                     json={"task_code": code, "title": code, "priority": "P0"})
                if response.status_code == 201:
                    self.acknowledged.append(code)

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(10)


def _get(base: str, token: str, path: str, **params: Any) -> Any:
    response = requests.get(f"{base}{path}", params=params, timeout=10, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


def _every(base: str, token: str, path: str, **params: Any) -> list[dict[str, Any]]:
    items, after = [], None
    while True:
        page = _get(base, token, path, limit=1000, **params, **({"after": after} if after else {}))
        items += page["items"]
        after = page["next"]
        if not after:
            return items


def _healthy(base: str) -> bool:
    with suppress(requests.RequestException):
        return requests.get(f"{base}/health", timeout=2).status_code == 200
    return False


@pytest.mark.slow
def test_ctrl_c_under_load_stops_every_process_without_sigkill_and_loses_no_rule_run(tmp_path: Path) -> None:
    folder, port = scratch_copy(tmp_path / "checkout"), free_port()
    base = f"http://127.0.0.1:{port}/api/orchestration"
    first = QuickStart(folder, port)
    try:
        token = first.token()
        wait_for(lambda: _healthy(base), 60, "the web process", 0.2)
        load = Load(base, token)
        load.start()
        wait_for(lambda: len(load.acknowledged) >= 20, 60, "some acknowledged writes", 0.1)

        tree = [first.process.pid, *descendants(first.process.pid)]
        os.killpg(first.process.pid, signal.SIGINT)
        wait_for(lambda: not alive(tree), 20, "every process of make run to exit", 0.1)
    finally:
        load.stop()
        first.stop()
    output = "\n".join(first.lines)
    assert "SIGKILL" not in output and "exited with 'signal" not in output, output[-4000:]
    assert "Warm shutdown" in output

    second = QuickStart(folder, port)
    try:
        wait_for(lambda: _healthy(base), 60, "the web process after the restart", 0.2)
        token = second.token()
        wait_for(lambda: _get(base, token, "/health")["outbox"]["pending"] == 0, 60, "the outbox to drain", 0.25)
        tasks = {t["task_code"] for t in _every(base, token, "/tasks")}
        alerts = Counter(e["data"]["task_code"] for e in _every(base, token, "/events",
                                                                type="orchestration.alert.raised"))
    finally:
        second.stop()
    assert set(load.acknowledged) <= tasks
    assert alerts == Counter({code: 1 for code in tasks}), "every task has exactly one alert"
