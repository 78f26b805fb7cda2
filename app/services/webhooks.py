"""Webhook deliveries: the outbox row a webhook run leaves, and the job that POSTs it.

A delivery is claimed with a short lease (so two copies of its message do not
both send), the POST happens outside any transaction, and the attempt is
recorded afterwards. Retries follow ``webhook_spec`` (backoff with jitter,
``Retry-After`` honoured) until the deadline, then the run is ``dead`` and
``orchestration.automation.rule_failed`` is recorded. Secrets stay in the
rule row: never in an attempt, an event, a log line or an answer.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.domain import webhook_spec as spec
from app.domain.clock import Clock, as_utc, iso
from app.domain.rule_actions import CallWebhook, Effect
from app.store.event_store import envelope
from app.store.tables import Event, Rule, RuleRun, WebhookAttempt, WebhookDelivery
from app.store.uow import UnitOfWork

log = logging.getLogger(__name__)

DELIVERING = "delivering"
EXCERPT_BYTES = 1024
# A claimed delivery is left alone this long beyond its timeouts: a crashed sender's claim expires.
LEASE_MARGIN = 30.0
SWEEP_BATCH = 500


@dataclass(frozen=True)
class Policy:
    """Where webhooks may go and how hard we try (from ``Settings``)."""

    allowed_hosts: tuple[str, ...]
    retry_for: float
    backoff_base: float
    backoff_max: float
    connect_timeout: float
    read_timeout: float
    rotation_window: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(settings.webhook_allowed_hosts, settings.webhook_retry_for, settings.webhook_backoff_base,
                   settings.webhook_backoff_max, settings.webhook_connect_timeout, settings.webhook_read_timeout,
                   settings.webhook_rotation_window)

    @property
    def lease(self) -> float:
        return self.connect_timeout + self.read_timeout + LEASE_MARGIN


# Settings' defaults, whose allow-list is empty: rules created without a policy may not call webhooks.
NO_WEBHOOKS = Policy.from_settings(Settings())


@dataclass
class Request:
    """What one attempt sends: everything read in the claiming transaction."""

    delivery_id: int
    number: int
    url: str
    secrets: list[str]
    msg_id: str
    body: bytes


@dataclass
class Answer:
    status: int | None
    duration_ms: float
    error: str | None = None
    excerpt: str | None = None
    retry_after: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


Sender = Callable[[Request, dict[str, str], Policy], Answer]


def schedule(session: Session, run: RuleRun, calls: list[Effect], clock: Clock) -> list[int]:
    """One delivery per webhook effect of a run, in the run's transaction; ids for after commit."""
    now, ids = clock(), []
    session.flush()
    for call in calls:
        assert isinstance(call, CallWebhook)
        row = WebhookDelivery(run_id=run.id, rule_id=run.rule_id, event_id=run.event_id, url=call.url,
                              status=DELIVERING, attempts=0, created_at=now, deadline_at=now + timedelta(days=1),
                              next_attempt_at=now)
        session.add(row)
        session.flush()
        ids.append(row.id)
    return ids


def current_secrets(params: dict[str, Any], now: datetime) -> list[str]:
    """The secret, and the previous one while its rotation window lasts (both signatures are sent)."""
    secrets = [str(params["secret"])]
    until = params.get("previous_until")
    if params.get("previous_secret") and until and datetime.fromisoformat(until) > now:
        secrets.append(str(params["previous_secret"]))
    return secrets


def _claim(uow: UnitOfWork, delivery_id: int, policy: Policy, clock: Clock) -> Request | None:
    """Take the delivery for one attempt (a lease), or None: finished, not due, or someone else's."""
    with uow:
        session, now = uow.session, clock()
        row = session.get(WebhookDelivery, delivery_id, with_for_update=True)
        if row is None or row.status != DELIVERING or (row.next_attempt_at and as_utc(row.next_attempt_at) > now):
            return None
        rule, event = session.get(Rule, row.rule_id), session.get(Event, row.event_id)
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
    from app import metrics
    from app.services import webhook_outcome  # the run's bookkeeping lives beside the automation service

    delay = webhook_outcome.record(uow, request, answer, policy, clock, permanent=permanent)
    ok = answer.status is not None and 200 <= answer.status < 300
    metrics.webhook_delivered("refused" if permanent else "succeeded" if ok else "failed")  # after the commit
    return delay


def sweep(uow: UnitOfWork, deliverer: Callable[[Sequence[int]], None], clock: Clock, overdue: float = 60.0) -> int:
    """Re-publish deliveries overdue by ``overdue`` seconds: their message was lost (broker down, worker killed).

    A copy of a message still on its way is harmless: the lease lets one attempt through.
    """
    with uow:
        stmt = (select(WebhookDelivery.id).where(WebhookDelivery.status == DELIVERING,
                                                 WebhookDelivery.next_attempt_at <= clock() - timedelta(seconds=overdue))
                .order_by(WebhookDelivery.id).limit(SWEEP_BATCH))
        due = list(uow.session.scalars(stmt))
    if due:
        deliverer(due)
    return len(due)


def attempts_of(session: Session, run_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The delivery of each webhook run among ``run_ids``, with every attempt, oldest first."""
    if not run_ids:
        return {}
    rows = list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.run_id.in_(run_ids))))
    tries: dict[int, list[dict[str, Any]]] = {row.id: [] for row in rows}
    if rows:
        stmt = select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(list(tries))).order_by(
            WebhookAttempt.delivery_id, WebhookAttempt.number)
        for attempt in session.scalars(stmt):
            tries[attempt.delivery_id].append({
                "number": attempt.number, "started_at": iso(attempt.started_at), "duration_ms": attempt.duration_ms,
                "status_code": attempt.status_code, "outcome": attempt.outcome, "error": attempt.error,
                "response_excerpt": attempt.response_excerpt})
    return {row.run_id: {"url": row.url, "status": row.status, "attempts": tries[row.id],
                         "next_attempt_at": iso(row.next_attempt_at) if row.status == DELIVERING else None,
                         "deadline_at": iso(row.deadline_at), "last_error": row.last_error} for row in rows}


def restart(session: Session, run: RuleRun, clock: Clock) -> int:
    """Deliver a webhook run again from scratch (redeliver): a new retry window, attempts kept as history."""
    from app.domain.errors import Conflict

    row = session.scalars(select(WebhookDelivery).where(WebhookDelivery.run_id == run.id)
                          .with_for_update()).first()
    if row is None:
        raise Conflict("only a webhook run can be redelivered", {"id": ["not a webhook run"]})
    if row.status == DELIVERING:
        raise Conflict("the webhook is still being delivered", {"status": [DELIVERING]})
    now = clock()
    row.status, row.created_at, row.next_attempt_at, row.finished_at = DELIVERING, now, now, None
    run.status, run.finished_at, run.error = DELIVERING, None, None
    return row.id
