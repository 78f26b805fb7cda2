"""The webhook job: claim a delivery, POST it outside any transaction, record the attempt.

Its own module, above ``webhooks`` (the rows and types the automation service
schedules) and ``webhook_outcome`` (what follows an attempt), so neither of
those imports the other's callers.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import httpx

from app import metrics
from app.domain import webhook_spec as spec
from app.domain.clock import Clock, as_utc
from app.services import webhook_outcome
from app.services.webhooks import DELIVERING, Answer, Policy, Request, Sender, current_secrets
from app.store.envelopes import envelope
from app.store.uow import UnitOfWork

EXCERPT_BYTES = 1024


def _claim(uow: UnitOfWork, delivery_id: int, policy: Policy, clock: Clock) -> Request | None:
    """Take the delivery for one attempt (a lease), or None: finished, not due, or someone else's."""
    with uow:
        now = clock()
        row = uow.webhooks.lock(delivery_id)
        if row is None or row.status != DELIVERING or (row.next_attempt_at and as_utc(row.next_attempt_at) > now):
            return None
        rule, event = uow.webhooks.rule_and_event(row)
        if rule is None or event is None:
            return None
        row.next_attempt_at = now + timedelta(seconds=policy.lease)
        row.deadline_at = as_utc(row.created_at) + timedelta(seconds=policy.retry_for)
        body = json.dumps(envelope(event), separators=(",", ":"), ensure_ascii=False).encode()
        request = Request(row.id, row.attempts + 1, row.url, current_secrets(dict(rule.action["params"]), now),
                          event.event_id, body)
        uow.commit()
        return request


def send(request: Request, headers: dict[str, str], policy: Policy) -> Answer:
    """One POST: no redirects, no credentials from the environment, at most a short excerpt read."""
    timeout = httpx.Timeout(policy.read_timeout, connect=policy.connect_timeout)
    started = time.monotonic()
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client, \
                client.stream("POST", request.url, content=request.body, headers=headers) as response:
            excerpt = bytearray()
            for chunk in response.iter_bytes():
                excerpt += chunk
                if len(excerpt) >= EXCERPT_BYTES:
                    break
            return Answer(response.status_code, _ms(started), None,
                          bytes(excerpt[:EXCERPT_BYTES]).decode(errors="replace"), response.headers.get("retry-after"))
    except httpx.HTTPError as exc:
        return Answer(None, _ms(started), f"{type(exc).__name__}: {exc}"[:500])


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 3)


def deliver(delivery_id: int, uow: UnitOfWork, clock: Clock, policy: Policy,
            sender: Sender = send) -> float | None:
    """One attempt; returns the seconds until the next one, or None when there is none to make."""
    request = _claim(uow, delivery_id, policy, clock)
    if request is None:
        return None
    if not spec.host_allowed(request.url, policy.allowed_hosts):
        answer = Answer(None, 0.0, f"host not allowed: {spec.host_and_port(request.url)[0]} is not in "
                                   "ORCH_WEBHOOK_ALLOWED_HOSTS")
        return _record(uow, request, answer, policy, clock, permanent=True)
    headers = spec.headers(request.secrets, request.msg_id, int(clock().timestamp()), request.body)
    return _record(uow, request, sender(request, headers, policy), policy, clock)


def _record(uow: UnitOfWork, request: Request, answer: Answer, policy: Policy, clock: Clock, *,
            permanent: bool = False) -> float | None:
    delay = webhook_outcome.record(uow, request, answer, policy, clock, permanent=permanent)
    ok = answer.status is not None and 200 <= answer.status < 300
    metrics.webhook_delivered("refused" if permanent else "succeeded" if ok else "failed")  # after the commit
    return delay
