"""The webhook action against a real HTTP receiver on loopback, delivered by real workers.

The Procfile's layout: one worker for rules (``-X webhooks``), one for the webhook queue. They use
a broker of their own, so the suite's other workers never take these jobs.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from pytest_httpserver import HTTPServer
from standardwebhooks import Webhook
from werkzeug import Request, Response

from app import create_app
from tests.integration.automation.conftest import Stack, settings_for
from tests.integration.automation.workers import RedisServer, Worker, wait_for, worker_env
from tests.support import Api, wipe

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
NEW_SECRET = "whsec_" + base64.b64encode(b"n" * 32).decode()
WORKER_SETTINGS = {"ORCH_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1", "ORCH_WEBHOOK_RETRY_FOR": "4",
                   "ORCH_WEBHOOK_BACKOFF_BASE": "0.3", "ORCH_WEBHOOK_BACKOFF_MAX": "1.5",
                   "ORCH_WEBHOOK_CONNECT_TIMEOUT": "2", "ORCH_WEBHOOK_READ_TIMEOUT": "30"}


@pytest.fixture(scope="module")
def receiver() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def hooks(database_url: str, private_redis: RedisServer, automation_dir: Path) -> Stack:
    """The database of the run, a Redis database of its own (db 1), a broker folder of its own."""
    return Stack(database_url, private_redis.url.rsplit("/", 1)[0] + "/1", automation_dir / "broker-hooks")


@pytest.fixture(scope="module")
def hook_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Worker]]:
    pool: dict[str, Worker] = {}
    yield pool
    for worker in pool.values():
        worker.stop()


@pytest.fixture
def app(hooks: Stack, tmp_path: Path, hook_workers: dict[str, Worker], automation_dir: Path,
        receiver: HTTPServer) -> Iterator[Flask]:
    """The API allows localhost too (so a rule naming it can exist); the workers allow 127.0.0.1 only."""
    flask_app = create_app(settings_for(hooks, tmp_path, webhook_allowed_hosts=("127.0.0.1", "localhost")))
    runtime = flask_app.extensions["orchestration"]
    wipe(runtime.engine)
    receiver.clear()
    env = worker_env(hooks.database_url, hooks.broker_url, hooks.broker_dir, **WORKER_SETTINGS)
    for name, args in (("rules", ("-X", "webhooks")), ("hooks", ("-Q", "webhooks"))):
        if name not in hook_workers:
            hook_workers[name] = Worker(f"wh-{name}", env, automation_dir, args)
            hook_workers[name].start()
    yield flask_app
    runtime.engine.dispose()


def webhook_rule(api: Api, name: str, url: str, trigger: str = "custom.hook", secret: str = SECRET) -> Any:
    return api.post("/rules", json={"name": name, "trigger": {"type": trigger},
                                    "action": {"name": "webhook", "params": {"url": url, "secret": secret}}})


def fire(api: Api, type_: str = "custom.hook") -> dict[str, Any]:
    if api.get("/tasks/T-HOOK").status_code == 404:
        api.create_task("T-HOOK")
    response = api.post("/events", json={"type": type_, "entity_type": "task", "entity_code": "T-HOOK", "data": {}})
    assert response.status_code == 201
    return response.get_json()  # type: ignore[no-any-return]


def run_of(api: Api, trigger: dict[str, Any], *statuses: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        runs = api.get("/rules/runs", query_string={"event_id": trigger["id"]}).get_json()["items"]
        return next((r for r in runs if r["status"] in statuses), None)
    return wait_for(finished, 30, f"a run in {statuses}")  # type: ignore[no-any-return]


def test_a_delivery_is_signed_so_the_reference_verifier_accepts_it_and_the_secret_never_shows(
        app: Flask, api: Api, receiver: HTTPServer) -> None:
    receiver.expect_request("/signed", method="POST").respond_with_data("thanks", status=200)
    created = webhook_rule(api, "hook_signed", receiver.url_for("/signed"))
    assert created.status_code == 201 and SECRET not in created.get_data(as_text=True)
    trigger = fire(api)

    run = run_of(api, trigger, "succeeded")

    request, _ = receiver.log[-1]
    payload = Webhook(SECRET).verify(request.get_data(), dict(request.headers))
    assert payload["event_id"] == trigger["event_id"] == request.headers["webhook-id"]
    assert [(a["status_code"], a["outcome"], a["response_excerpt"]) for a in run["delivery"]["attempts"]] == [
        (200, "succeeded", "thanks")]
    assert "authorization" not in {name.lower() for name, _ in request.headers.items()}
    everything = json.dumps([api.events(), api.get("/rules").get_json(), run])
    assert SECRET not in everything and SECRET.removeprefix("whsec_") not in everything

    rotated = api.patch(f"/rules/{created.get_json()['id']}", json={"action": {
        "name": "webhook", "params": {"url": receiver.url_for("/signed"), "secret": NEW_SECRET}}})
    assert rotated.status_code == 200 and rotated.get_json()["action"]["params"]["rotating"] is True
    assert api.post(f"/rules/runs/{run['id']}/redeliver").status_code == 202
    wait_for(lambda: len(receiver.log) == 2, 30, "the redelivery")
    again, _ = receiver.log[-1]
    assert again.headers["webhook-id"] == trigger["event_id"]
    assert len(again.headers["webhook-signature"].split(" ")) == 2
    for secret in (SECRET, NEW_SECRET):
        Webhook(secret).verify(again.get_data(), dict(again.headers))


def test_a_503_with_retry_after_is_retried_after_that_delay(app: Flask, api: Api, receiver: HTTPServer) -> None:
    receiver.expect_ordered_request("/busy", method="POST").respond_with_data(
        "later", status=503, headers={"Retry-After": "1"})
    receiver.expect_ordered_request("/busy", method="POST").respond_with_data("ok", status=202)
    assert webhook_rule(api, "hook_busy", receiver.url_for("/busy")).status_code == 201

    run = run_of(api, fire(api), "succeeded")

    first, second = run["delivery"]["attempts"]
    assert (first["status_code"], first["outcome"], second["status_code"]) == (503, "retry", 202)
    gap = datetime.fromisoformat(second["started_at"]) - datetime.fromisoformat(first["started_at"])
    assert gap.total_seconds() >= 0.9


def test_a_receiver_that_keeps_failing_is_given_up_with_rule_failed_and_can_be_redelivered(
        app: Flask, api: Api, receiver: HTTPServer) -> None:
    receiver.expect_request("/down", method="POST").respond_with_data("down", status=503)
    assert webhook_rule(api, "hook_down", receiver.url_for("/down")).status_code == 201
    trigger = fire(api)

    run = run_of(api, trigger, "dead")

    assert len(run["delivery"]["attempts"]) >= 2
    assert {a["status_code"] for a in run["delivery"]["attempts"]} == {503}
    assert run["error"].startswith("gave up after")
    [failed] = wait_for(lambda: api.events(type="orchestration.automation.rule_failed"), 30, "rule_failed")
    assert failed["causation_id"] == trigger["event_id"] and failed["data"]["rule"] == "hook_down"

    receiver.clear()
    receiver.expect_request("/down", method="POST").respond_with_data("back", status=200)
    assert api.post(f"/rules/runs/{run['id']}/redeliver").status_code == 202
    assert run_of(api, trigger, "succeeded")["delivery"]["attempts"][-1]["status_code"] == 200


def test_a_4xx_fails_at_once(app: Flask, api: Api, receiver: HTTPServer) -> None:
    receiver.expect_request("/gone", method="POST").respond_with_data("no such hook", status=410)
    assert webhook_rule(api, "hook_gone", receiver.url_for("/gone")).status_code == 201

    run = run_of(api, fire(api), "dead")

    assert [(a["status_code"], a["outcome"]) for a in run["delivery"]["attempts"]] == [(410, "rejected")]


def test_a_hanging_receiver_does_not_slow_other_rules(app: Flask, api: Api, receiver: HTTPServer) -> None:
    entered, release = threading.Event(), threading.Event()

    def hang(request: Request) -> Response:
        entered.set()
        release.wait(20)
        return Response("late", status=200)

    receiver.expect_request("/hang", method="POST").respond_with_handler(hang)
    assert webhook_rule(api, "hook_hang", receiver.url_for("/hang"), trigger="custom.hang").status_code == 201
    hanging = fire(api, "custom.hang")
    assert entered.wait(30)
    try:
        api.create_task("T-OTHER")
        api.update_task("T-OTHER", status="blocked")
        wait_for(lambda: api.events(type="orchestration.notification.created"), 30, "the other rule")
        [run] = api.get("/rules/runs", query_string={"event_id": hanging["id"]}).get_json()["items"]
        assert (run["status"], run["delivery"]["attempts"]) == ("delivering", [])
    finally:
        release.set()
    assert run_of(api, hanging, "succeeded")["delivery"]["attempts"][0]["status_code"] == 200


def test_a_host_outside_the_allow_list_is_refused_at_creation_and_at_delivery(
        app: Flask, api: Api, receiver: HTTPServer) -> None:
    refused = webhook_rule(api, "hook_far", "http://example.org/hook")
    assert refused.status_code == 422
    assert "ORCH_WEBHOOK_ALLOWED_HOSTS" in refused.get_json()["errors"]["action"][0]
    # The API allows localhost, the workers do not: refused when it is time to send.
    assert webhook_rule(api, "hook_local", receiver.url_for("/local").replace("127.0.0.1", "localhost")
                        ).status_code == 201

    run = run_of(api, fire(api), "dead")

    [attempt] = run["delivery"]["attempts"]
    assert (attempt["outcome"], attempt["status_code"]) == ("refused", None)
    assert "not in ORCH_WEBHOOK_ALLOWED_HOSTS" in attempt["error"]
    assert receiver.log == []
    assert api.events(type="orchestration.automation.rule_failed")
