"""Rough edges a newcomer met: ages in minutes or weeks, and error messages that name codes, not ids."""

from __future__ import annotations

from flask import Flask

from tests.support import Api


def test_history_at_accepts_minutes_and_weeks_and_says_the_task_code_when_it_did_not_exist(api: Api) -> None:
    api.create_task("TASK-AGE")
    assert api.get("/tasks/TASK-AGE/history", query_string={"at": "0s"}).status_code == 200
    for age in ("1m", "2w"):
        response = api.get("/tasks/TASK-AGE/history", query_string={"at": age})
        assert response.status_code == 404
        assert "task TASK-AGE did not exist at" in response.get_json()["detail"]
    assert api.get("/events", query_string={"from": "15m"}).status_code == 200
    assert api.get("/events", query_string={"from": "15y"}).status_code == 422


def test_cli_older_than_accepts_weeks(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["orchestration", "archive-events", "--older-than", "2w",
                                                "--dry-run"])
    assert result.exit_code == 0, result.output
    refused = app.test_cli_runner().invoke(args=["orchestration", "archive-events", "--older-than", "2y"])
    assert refused.exit_code == 2 and "30s, 15m, 12h, 90d or 2w" in refused.output
