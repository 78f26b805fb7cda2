"""A revoked token is refused by every gunicorn worker within a second, on the zero-service default (SQLite).

The same on PostgreSQL with Redis: ``test_token_load.py`` (it shares that module's server).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import cli_token
from tests.e2e.tokens_support import Server, gunicorn
from tests.support import sqlite_database

pytestmark = pytest.mark.slow
PROMISE = 1.0  # seconds: the README's promise (the epoch is polled every 0.5 s)


def statuses(server: Server, token: str, n: int = 24) -> list[int]:
    """``n`` concurrent reads, so both workers see some."""
    def get(_: int) -> int:
        return requests.get(f"{server.api}/sprints", headers={"Authorization": f"Bearer {token}"},
                            timeout=10).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(get, range(n)))


def workers_answering(server: Server, status: int, since: int) -> set[str]:
    return {pid for pid, _m, path, code in server.served()[since:] if path.endswith("/sprints") and code == status}


def test_a_revoked_token_gets_401_from_every_worker_within_a_second(tmp_path: Path) -> None:
    with gunicorn(sqlite_database(tmp_path), tmp_path) as server:
        admin = {"Authorization": f"Bearer {cli_token(server.env)}"}
        created = requests.post(f"{server.api}/tokens", json={"actor": "agent:leaked", "role": "reader"},
                                headers=admin, timeout=10).json()
        victim, victim_id = created["token"], created["id"]
        for _ in range(10):  # until both workers have the token cached
            assert set(statuses(server, victim)) == {200}
            if len(workers_answering(server, 200, 0)) == 2:
                break
        assert len(workers_answering(server, 200, 0)) == 2

        assert requests.delete(f"{server.api}/tokens/{victim_id}", headers=admin, timeout=10).status_code == 204
        revoked_at = time.monotonic()
        while 200 in statuses(server, victim, 8) and time.monotonic() - revoked_at < 5:
            pass
        print(f"\nrevoked token refused by every request after {time.monotonic() - revoked_at:.2f}s")
        time.sleep(max(0.0, PROMISE - (time.monotonic() - revoked_at)))
        mark = len(server.served())
        for _ in range(10):
            assert set(statuses(server, victim)) == {401}
            if len(workers_answering(server, 401, mark)) == 2:
                break
        assert len(workers_answering(server, 401, mark)) == 2
        assert victim not in server.logs() and victim[:8] in str(requests.get(f"{server.api}/tokens", headers=admin,
                                                                                timeout=10).json())
