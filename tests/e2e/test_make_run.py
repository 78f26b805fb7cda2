"""A fresh ``make run`` as a newcomer meets it: the README's examples, then Ctrl+C under load.

1. Every ``curl`` of README.md, extracted from its ``sh`` blocks and run in
   order by bash against the fresh service, answers 2xx.
2. Ctrl+C under load: the load creates P0 tasks (each must get exactly one
   ``alert_p0_task`` alert) from two client threads; the interrupt lands while
   requests and rule runs are in flight. Every process stops by itself (no
   SIGKILL); after a restart in the same folder the outbox drains and every
   task that exists, acknowledged or not, has its one alert.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.test_quickstart import ROOT, QuickStart, scratch_copy
from tests.integration.automation.workers import free_port, wait_for
from tests.processes import alive, descendants


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


@dataclass
class FreshRun:
    folder: Path
    port: int
    run: QuickStart
    token: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/orchestration"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreshRun]:
    """One ``make run`` in a scratch copy for the module: the README test, then the Ctrl+C test."""
    folder, port = scratch_copy(tmp_path_factory.mktemp("make-run") / "checkout"), free_port()
    run = QuickStart(folder, port)
    try:
        started = FreshRun(folder, port, run, run.token())
        wait_for(lambda: _healthy(started.base), 60, "the web process", 0.2)
        yield started
    finally:
        run.stop()


# Each call of the README's curl is recorded with its status; bodies still flow to pipes ($(... | jq)).
CURL_RECORDER = """
curl() {
  local body status args="$*" limit=30
  [[ " $* " == *" -N "* ]] && limit=2  # a live stream (curl -N) answers 200, then is read for 2 s
  body=$(mktemp)
  status=$(command curl -sS --max-time "$limit" -o "$body" -w '%{http_code}' "$@")
  printf '%s\t%s\n' "$status" "${args//$'\n'/ }" >> "$CALLS"
  cat "$body"; rm -f "$body"
}
"""


def readme_script(port: int) -> str:
    """The shell lines of README.md's ``sh`` blocks that talk to the service, in order.

    Blocks without curl, ``flask`` commands and ``T=$(make -s token)`` (the
    test passes the token ``make run`` printed) are left out.
    """
    readme = (ROOT / "README.md").read_text()
    # A block that starts with "# needs:" names configuration a fresh make run does not have.
    blocks = [b for b in re.findall(r"```sh\n(.*?)```", readme, re.S) if "curl " in b and not b.startswith("# needs:")]
    commands = [c for block in blocks for c in re.split(r"(?<!\\)\n", block)]  # a line ending in \ continues
    kept = [c for c in commands if not c.startswith(("T=", "flask ", "make ", "export ", "createdb "))]
    return "\n".join(kept).replace("127.0.0.1:8000", f"127.0.0.1:{port}")


@pytest.mark.slow
def test_every_readme_curl_example_answers_2xx_in_order_on_a_fresh_make_run(fresh: FreshRun,
                                                                           tmp_path: Path) -> None:
    calls = tmp_path / "calls.tsv"
    script = CURL_RECORDER + readme_script(fresh.port)
    result = subprocess.run(["bash", "-c", script], env={**os.environ, "T": fresh.token, "CALLS": str(calls)},
                            cwd=fresh.folder, capture_output=True, text=True, timeout=120)
    recorded = [line.replace(fresh.token, "$T").split("\t", 1) for line in calls.read_text().splitlines()]
    assert len(recorded) >= 25, result.stderr
    failed = [(status, command) for status, command in recorded if not status.startswith("2")]
    assert failed == [], result.stdout[-3000:].replace(fresh.token, "$T")
    assert fresh.token not in result.stderr


@pytest.mark.slow
def test_ctrl_c_under_load_stops_every_process_without_sigkill_and_loses_no_rule_run(fresh: FreshRun) -> None:
    folder, port, base, first = fresh.folder, fresh.port, fresh.base, fresh.run
    load = Load(base, fresh.token)
    try:
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
        tasks = {t["task_code"] for t in _every(base, token, "/tasks") if t["task_code"].startswith("LOAD-")}
        alerts = Counter(e["data"]["task_code"] for e in _every(base, token, "/events",
                                                                type="orchestration.alert.raised")
                         if e["data"].get("task_code", "").startswith("LOAD-"))
    finally:
        second.stop()
    assert set(load.acknowledged) <= tasks
    assert alerts == Counter({code: 1 for code in tasks}), "every task has exactly one alert"
