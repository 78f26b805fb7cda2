"""After a webhook attempt: record it, then succeed, schedule the next one, or give up (``dead``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.domain import webhook_spec as spec
from app.domain.clock import Clock, as_utc
from app.domain.runs import AttemptOutcome, RunStatus
from app.services import automation
from app.services.webhooks import DELIVERING, Answer, Policy, Request
from app.store.tables import WebhookDelivery
from app.store.uow import UnitOfWork


def _verdict(answer: Answer, permanent: bool) -> AttemptOutcome:
    if permanent:
        return AttemptOutcome.REFUSED
    if answer.status is not None and 200 <= answer.status < 300:
        return AttemptOutcome.SUCCEEDED
    if answer.status is not None and 300 <= answer.status < 400:
        return AttemptOutcome.REDIRECT  # never followed: the URL must name the endpoint itself
    return AttemptOutcome.RETRY if spec.retryable(answer.status) else AttemptOutcome.REJECTED


def _error(answer: Answer, verdict: AttemptOutcome) -> str | None:
    if verdict == AttemptOutcome.SUCCEEDED:
        return None
    return answer.error or f"HTTP {answer.status}"


def _next_delay(answer: Answer, number: int, policy: Policy, now: datetime) -> float:
    """``Retry-After`` when the receiver gave one (never beyond the backoff cap), else backoff with jitter."""
    asked = spec.retry_after(answer.retry_after, now)
    if asked is not None:
        return min(asked, policy.backoff_max)
    return spec.backoff(number, policy.backoff_base, policy.backoff_max)


def record(uow: UnitOfWork, request: Request, answer: Answer, policy: Policy, clock: Clock, *,
           permanent: bool) -> float | None:
    """Seconds until the next attempt, or None (succeeded, dead, or another attempt got here first)."""
    with uow:
        now = clock()
        row = uow.webhooks.lock(request.delivery_id)
        if row is None or row.status != DELIVERING or row.attempts != request.number - 1:
            return None
        verdict = _verdict(answer, permanent)
        row.attempts = request.number
        row.last_error = _error(answer, verdict)
        uow.webhooks.add_attempt(row, request.number, now, answer.duration_ms, answer.status, verdict,
                                 answer.excerpt)
        delay = _next_delay(answer, request.number, policy, now) if verdict == AttemptOutcome.RETRY else None
        if delay is not None and now + timedelta(seconds=delay) <= as_utc(row.deadline_at):
            row.next_attempt_at = now + timedelta(seconds=delay)
            uow.commit()
            return delay
        if verdict == AttemptOutcome.RETRY:
            row.last_error = f"gave up after {request.number} attempts: {row.last_error}"
        _finish(uow, row, RunStatus.SUCCEEDED if verdict == AttemptOutcome.SUCCEEDED else RunStatus.DEAD, clock)
        uow.commit()
        return None


def _finish(uow: UnitOfWork, row: WebhookDelivery, status: RunStatus, clock: Clock) -> None:
    """The delivery and its run end together; a dead one records ``rule_failed``, caused by the trigger."""
    now = clock()
    row.status, row.finished_at, row.next_attempt_at = status, now, None
    run = uow.webhooks.run_of(row)
    if run is None:
        return
    run.status, run.finished_at, run.error = status, now, row.last_error
    if status != RunStatus.DEAD:
        return
    rule, event = uow.webhooks.rule_and_event(row)
    if rule is not None and event is not None:
        failed = automation.record_rule_failed(uow, rule.id, rule.name, event, row.last_error or "",
                                               row.attempts, clock)
        uow.pending_dispatch.extend(e.id for e in failed)
