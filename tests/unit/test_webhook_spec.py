"""Standard Webhooks signing, allowed hosts and retry arithmetic: pure functions, checked against the reference."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from app.domain import rule_judgement as judgement
from app.domain import webhook_spec as spec
from app.domain.rule_actions import ACTIONS, CallWebhook, Facts, UpdateEntity

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OTHER = "whsec_" + base64.b64encode(b"o" * 24).decode()
NOW = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)


def test_our_signature_is_the_reference_libraries_and_both_verify_during_a_rotation() -> None:
    body, moment = b'{"id":1,"type":"custom.x"}', int(NOW.timestamp())
    assert spec.signature(SECRET, "msg-1", moment, body) == Webhook(SECRET).sign("msg-1", NOW, body.decode())
    fresh = int(datetime.now(UTC).timestamp())  # the verifier refuses stale timestamps
    live = spec.headers([SECRET, OTHER], "msg-1", fresh, body)
    assert Webhook(SECRET).verify(body, live) == {"id": 1, "type": "custom.x"}
    assert Webhook(OTHER).verify(body, live) == {"id": 1, "type": "custom.x"}


@pytest.mark.parametrize("secret", ["whsec_short", "nope_" + "A" * 44, "whsec_%%%%", None,
                                    "whsec_" + base64.b64encode(b"x" * 65).decode()])
def test_secrets_that_are_not_whsec_base64_of_24_to_64_bytes_are_refused(secret: object) -> None:
    assert spec.check_secret(secret)


@pytest.mark.parametrize(("url", "allowed", "ok"), [
    ("http://127.0.0.1:8080/hook", ("127.0.0.1",), True),
    ("http://127.0.0.1:8080/hook", ("127.0.0.1:8080",), True),
    ("http://127.0.0.1:8081/hook", ("127.0.0.1:8080",), False),
    ("https://Hooks.Example.com/x", ("hooks.example.com:443",), True),
    ("https://hooks.example.com.evil.org/x", ("hooks.example.com",), False),
    ("http://localhost/x", (), False),
])
def test_only_hosts_in_the_allow_list_are_reached(url: str, allowed: tuple[str, ...], ok: bool) -> None:
    assert spec.host_allowed(url, allowed) is ok


@pytest.mark.parametrize("url", ["ftp://host/x", "http:///x", "http://user:pw@host/x", "http://host:99999/x", 7])
def test_urls_that_are_not_plain_http_endpoints_are_refused(url: object) -> None:
    assert spec.check_url(url)


def test_backoff_grows_with_jitter_and_stays_under_its_cap() -> None:
    rng = random.Random(3)
    delays = [spec.backoff(n, 1.0, 30.0, rng) for n in range(1, 9)]
    assert all(0.5 * min(30, 2 ** (n - 1)) <= d <= min(30, 2 ** (n - 1)) for n, d in enumerate(delays, start=1))
    assert max(delays) <= 30


def test_retry_after_takes_seconds_or_an_http_date_and_only_some_answers_are_retried() -> None:
    assert spec.retry_after("7", NOW) == 7.0
    assert spec.retry_after("Tue, 01 Dec 2026 22:00:30 GMT", NOW) == 30.0
    assert spec.retry_after("soon", NOW) is None
    assert [s for s in (None, 200, 301, 400, 404, 408, 410, 429, 500, 503) if spec.retryable(s)] == [
        None, 408, 429, 500, 503]


def test_an_effect_live_state_no_longer_calls_for_is_stale_whatever_its_before_values() -> None:
    as_of = [UpdateEntity("sprint", "S", {"status": {"before": "active", "after": "completed"}})]
    live_same = [UpdateEntity("sprint", "S", {"status": {"before": "planned", "after": "completed"}})]
    assert judgement.stale(as_of, live_same) == []
    assert judgement.stale(as_of, []) == as_of
    assert judgement.describe_stale(as_of).endswith("update sprint S {'status': 'completed'}")
    assert judgement.updated_fields(as_of + [CallWebhook("http://h/")]) == {("sprint", "S", "status")}


def test_the_webhook_action_plans_one_call_and_checks_its_params() -> None:
    action = ACTIONS["webhook"]
    assert action.check({"url": "http://127.0.0.1/h", "secret": SECRET}) == []
    assert action.check({"url": "http://127.0.0.1/h"}) == ["params.secret: required", *spec.check_secret(None)]
    event = {"type": "custom.x", "entity": {"type": "task", "id": 1, "code": "T"}}
    assert action.plan(event, {"url": "http://h/x", "secret": SECRET}, Facts("task")) == [CallWebhook("http://h/x")]
