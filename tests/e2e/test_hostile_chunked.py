"""Through real gunicorn: chunked bodies are checked like any other (413 over the limit), and
gunicorn's own answer to an over-long request line is problem+json.

The Flask test client can only imitate a server that de-chunks (``wsgi.input_terminated``);
here the bytes really travel with ``Transfer-Encoding: chunked``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.e2e.conftest import cli_token

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def chunks(body: bytes, size: int = 4096) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start:start + size]


def test_chunked_bodies_are_checked_and_bounded_and_an_over_long_request_line_is_problem_json(gunicorn_server: tuple[str, dict[str, str]]) -> None:
    base, env = gunicorn_server
    api = f"{base}/api/orchestration"
    headers = {"Authorization": f"Bearer {cli_token(env, 'writer')}", "Content-Type": "application/json"}
    hostile = {
        "NUL": b'{"task_code": "T-C", "title": "a\\u0000b"}',
        "lone surrogate": b'{"task_code": "T-C", "title": "a\\ud800b"}',
        "NaN": b'{"task_code": "T-C", "title": "t", "metadata": {"x": NaN}}',
        "1e309": b'{"task_code": "T-C", "title": "t", "metadata": {"x": 1e309}}',
        "deep": b'{"task_code": "T-C", "title": "t", "metadata": ' + b"[" * 1000 + b"]" * 1000 + b"}",
        "5000 digits": b'{"task_code": "T-C", "title": "t", "progress": ' + b"9" * 5000 + b"}",
    }
    for label, body in hostile.items():
        response = requests.post(f"{api}/tasks", data=chunks(body), headers=headers, timeout=30)
        assert response.status_code == 422, (label, response.text[:200])
        assert response.headers["Content-Type"] == "application/problem+json"
    too_big = b'{"task_code": "T-C", "title": "' + b"x" * (1024 * 1024) + b'"}'
    response = requests.post(f"{api}/tasks", data=chunks(too_big, 65536), headers=headers, timeout=30)
    assert response.status_code == 413 and response.headers["Content-Type"] == "application/problem+json"
    assert requests.get(f"{api}/tasks/T-C", headers=headers, timeout=30).status_code == 404
    written = requests.get(f"{api}/events", params={"type": "orchestration.task.*"}, headers=headers, timeout=30)
    assert written.json()["items"] == []
    fine = requests.post(f"{api}/tasks", data=chunks(b'{"task_code": "T-C", "title": "t"}', 8), headers=headers,
                         timeout=30)
    assert fine.status_code == 201

    # gunicorn refuses an over-long request line itself; its answer is problem+json too
    response = requests.get(f"{api}/tasks/{'A' * 9000}", headers=headers, timeout=30)
    assert response.status_code == 400 and response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 400 and "8190" in problem["detail"]
    assert requests.get(f"{api}/tasks/{'A' * 60}", headers=headers, timeout=30).status_code == 404
