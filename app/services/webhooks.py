"""Webhook deliveries: the outbox row a webhook run leaves, what an attempt sends, and their history.

The job that POSTs a delivery is ``webhook_delivery``; what follows an attempt,
``webhook_outcome``. A delivery is claimed with a short lease (so two copies of its message do not
both send), the POST happens outside any transaction, and the attempt is
recorded afterwards. Retries follow ``webhook_spec`` (backoff with jitter,
``Retry-After`` honoured) until the deadline, then the run is ``dead`` and
``orchestration.automation.rule_failed`` is recorded. Secrets stay in the
rule row: never in an attempt, an event, a log line or an answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.config import Settings
from app.domain.clock import Clock, iso
from app.domain.errors import Conflict
from app.domain.rule_actions import CallWebhook, Effect
from app.domain.runs import RunStatus
from app.store.tables import RuleRun
from app.store.uow import UnitOfWork
from app.store.webhook_rows import WebhookDeliveries

DELIVERING = RunStatus.DELIVERING  # a delivery and its run share the status while attempts go on
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


def schedule(deliveries: WebhookDeliveries, run: RuleRun, calls: list[Effect], clock: Clock) -> list[int]:
    """One delivery per webhook effect of a run, in the run's transaction; ids for after commit."""
    now = clock()
    urls = [call.url for call in calls if isinstance(call, CallWebhook)]
    assert len(urls) == len(calls)
    return deliveries.add_for_run(run, urls, DELIVERING, now, deadline=now + timedelta(days=1))


def current_secrets(params: dict[str, Any], now: datetime) -> list[str]:
    """The secret, and the previous one while its rotation window lasts (both signatures are sent)."""
    secrets = [str(params["secret"])]
    until = params.get("previous_until")
    if params.get("previous_secret") and until and datetime.fromisoformat(until) > now:
        secrets.append(str(params["previous_secret"]))
    return secrets


def sweep(uow: UnitOfWork, deliverer: Callable[[Sequence[int]], None], clock: Clock, overdue: float = 60.0) -> int:
    """Re-publish deliveries overdue by ``overdue`` seconds: their message was lost (broker down, worker killed).

    A copy of a message still on its way is harmless: the lease lets one attempt through.
    """
    with uow:
        due = uow.webhooks.due_before(DELIVERING, clock() - timedelta(seconds=overdue), SWEEP_BATCH)
    if due:
        deliverer(due)
    return len(due)


def attempts_of(deliveries: WebhookDeliveries, run_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The delivery of each webhook run among ``run_ids``, with every attempt, oldest first."""
    return {row.run_id: {"url": row.url, "status": row.status,
                         "attempts": [{"number": a.number, "started_at": iso(a.started_at),
                                       "duration_ms": a.duration_ms, "status_code": a.status_code,
                                       "outcome": a.outcome, "error": a.error,
                                       "response_excerpt": a.response_excerpt} for a in tries],
                         "next_attempt_at": iso(row.next_attempt_at) if row.status == DELIVERING else None,
                         "deadline_at": iso(row.deadline_at), "last_error": row.last_error}
            for row, tries in deliveries.of_runs(run_ids)}


def restart(deliveries: WebhookDeliveries, run: RuleRun, clock: Clock) -> int:
    """Deliver a webhook run again from scratch (redeliver): a new retry window, attempts kept as history."""
    row = deliveries.lock_of_run(run.id)
    if row is None:
        raise Conflict("only a webhook run can be redelivered", {"id": ["not a webhook run"]})
    if row.status == DELIVERING:
        raise Conflict("the webhook is still being delivered", {"status": [DELIVERING]})
    now = clock()
    row.status, row.created_at, row.next_attempt_at, row.finished_at = DELIVERING, now, now, None
    run.status, run.finished_at, run.error = DELIVERING, None, None
    return row.id
