"""Fixtures: the app over SQLite and over a PostgreSQL database made for the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app import create_app
from app.config import Settings
from app.services import tokens
from tests.support import Api, postgres_database, sqlite_database, wipe
from tests.token_watch import remember_token, watch_report

_create_token, _issue_token = tokens.create_token, tokens.issue_token


def _remembering_create_token(*args: Any, **kwargs: Any) -> str:
    return remember_token(_create_token(*args, **kwargs))


def _remembering_issue_token(*args: Any, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    token, body = _issue_token(*args, **kwargs)
    return remember_token(token), body


# Every token the tests issue in-process (fixtures, the CLI, POST /tokens) is watched for in their output.
tokens.create_token, tokens.issue_token = _remembering_create_token, _remembering_issue_token


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return sqlite_database(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using it runs once per backend."""
    return str(request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url"))


# Suites drive the API far faster than any agent should: the limiter still runs, with limits no test reaches.
# The rate-limit tests set their own (per token, or through these same overrides).
UNREACHED_RATE = 1e6


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    options: dict[str, Any] = {
        "database_url": database_url,
        "archive_dir": str(tmp_path / "archive"),
        "broker_dir": str(tmp_path / "broker"),
        "dispatch_after_commit": False,
        "rate_limit_writes": UNREACHED_RATE,
        "rate_limit_reads": UNREACHED_RATE,
        "stream_slot_dir": str(tmp_path / "streams"),
    }
    return Settings(**{**options, **overrides})


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    flask_app = create_app(make_settings(database_url, tmp_path))
    runtime = flask_app.extensions["orchestration"]
    wipe(runtime.engine)
    yield flask_app
    if "orchestration_stream_hub" in flask_app.extensions:  # a test opened an event stream
        flask_app.extensions["orchestration_stream_hub"].stop()
    runtime.engine.dispose()


@pytest.fixture
def runtime(app: Flask) -> Any:
    return app.extensions["orchestration"]


@pytest.fixture
def api(app: Flask, runtime: Any) -> Api:
    issued = {
        role: tokens.create_token(f"user:{role}", role, runtime.uow(), runtime.clock)
        for role in tokens.ROLES
    }
    return Api(app.test_client(), issued)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    watch_report(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No token, ever, in any test's captured output (stdout, stderr, logs, failure reports)."""
    from tests.token_watch import leaks

    if leaks:
        print("\nA token appeared in the output of: " + ", ".join(sorted(leaks)))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
