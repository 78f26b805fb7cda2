"""The API served by real gunicorn processes on PostgreSQL, driven over HTTP."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.conftest import cli_token

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_concurrent_patches_over_http_leave_a_gap_free_chained_stream(gunicorn_server: tuple[str, dict[str, str]]) -> None:
    base, env = gunicorn_server
    api = f"{base}/api/orchestration"
    headers = {"Authorization": f"Bearer {cli_token(env, 'writer')}"}
    assert requests.post(f"{api}/tasks", json={"task_code": "T-E2E", "title": "t"}, headers=headers).status_code == 201

    def patch(n: int) -> int:
        return requests.patch(f"{api}/tasks/T-E2E", json={"progress": n + 1}, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        assert list(pool.map(patch, range(20))) == [200] * 20

    events = requests.get(f"{api}/events/entity/task/T-E2E", headers=headers, timeout=30).json()["items"]
    assert [e["sequence"] for e in events] == list(range(1, 22))
    assert [e["prev_hash"] for e in events[1:]] == [e["hash"] for e in events[:-1]]
    assert requests.get(f"{api}/tasks/T-E2E", headers=headers).headers["ETag"] == '"21"'


def test_problems_over_http_are_problem_json(gunicorn_server: tuple[str, dict[str, str]]) -> None:
    base, env = gunicorn_server
    api = f"{base}/api/orchestration"
    assert requests.get(f"{api}/sprints").status_code == 401
    reader = {"Authorization": f"Bearer {cli_token(env, 'reader')}"}
    forbidden = requests.post(f"{api}/sprints", json={"sprint_code": "S", "title": "t"}, headers=reader)
    assert forbidden.status_code == 403 and forbidden.headers["Content-Type"] == "application/problem+json"
    too_big = requests.post(f"{api}/sprints", data=b"{" + b" " * (1024 * 1024 + 1) + b"}", headers=reader)
    assert too_big.status_code == 413
    assert requests.get(f"{base}/openapi.json").json()["info"]["title"] == "Orchestration service"
