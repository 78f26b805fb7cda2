"""Property-based requests generated from our own OpenAPI spec never get a server error.

Schemathesis sends what the spec allows and much that it does not (wrong types,
out-of-range ids, NUL characters, huge numbers); every answer must be a
deliberate status with a problem+json body, never a 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings

from app import create_app
from app.services import tokens
from tests.conftest import make_settings
from tests.support import wipe

EXAMPLES = 40


@pytest.fixture
def fuzz_app(pg_url: str, tmp_path: Path) -> Iterator[Flask]:
    # Streams end at once here: a generated request must be answered, not followed forever.
    flask_app = create_app(make_settings(pg_url, tmp_path, stream_max_seconds=0.0))
    runtime = flask_app.extensions["orchestration"]
    wipe(runtime.engine)
    flask_app.config["FUZZ_TOKEN"] = tokens.create_token("user:fuzz", "admin", runtime.uow(), runtime.clock)
    yield flask_app
    if "orchestration_stream_hub" in flask_app.extensions:  # the stream follower started by a fuzzed stream
        flask_app.extensions["orchestration_stream_hub"].stop()
    runtime.engine.dispose()


@pytest.mark.postgres
def test_no_request_the_spec_can_describe_gets_a_server_error(fuzz_app: Flask) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app)
    headers = {"Authorization": f"Bearer {fuzz_app.config['FUZZ_TOKEN']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 37
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def never_a_server_error(case: Any) -> None:
            response = case.call(headers=headers)
            assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
            if response.status_code >= 400:
                content_type = {k.lower(): v for k, v in response.headers.items()}.get("content-type", [""])
                assert content_type[0].startswith("application/problem+json"), case.as_curl_command()

        never_a_server_error()
