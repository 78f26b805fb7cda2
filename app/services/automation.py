"""The rules engine at work: evaluate one dispatched event, apply each matching rule once.

One transaction per matching rule: claim the event's outbox row, apply the
rule (in a savepoint), record its ``automation_rule_runs`` row (UNIQUE
rule+event) with the effects, commit; then delete the outbox row. A redelivered
message skips the rules whose runs are recorded, and finds the outbox row gone
once all are done (DESIGN §3).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from app import metrics
from app.domain import rule_judgement as judgement
from app.domain.clock import Clock, as_utc
from app.domain.events import RULE_FAILED
from app.domain.rule_actions import CallWebhook, Effect
from app.domain.rules import Match, evaluate_rules
from app.domain.runs import RETRYABLE, RunStatus, Verdict
from app.services import outbox, rule_effects, rule_facts, rule_registry, signals, webhooks
from app.store.event_store import envelope
from app.store.tables import Event, RuleRun
from app.store.uow import UnitOfWork
from app.store.webhook_rows import WebhookDeliveries

log = logging.getLogger(__name__)
runs_log = structlog.get_logger("app.automation")

# Errors worth retrying: the database was unreachable, busy, or chose us as a deadlock victim.
TRANSIENT: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout)
RETRYABLE_STATUS = RETRYABLE


@dataclass
class Attempt:
    """One delivery of one event: which attempt it is, and the rule being applied when it failed."""

    event_id: int
    final: bool
    depth_limit: int
    current_rule: int | None = None
    dispatched: list[int] = field(default_factory=list)
    deliveries: list[int] = field(default_factory=list)
    # (rule name, outcome, trigger timestamp) of the run the current transaction records.
    recorded: tuple[str, str, datetime] | None = None


def evaluate_events(event_ids: Sequence[int], uow: UnitOfWork, clock: Clock, *, depth_limit: int,
                    final: bool) -> None:
    """Evaluate each event in order; a transient failure stops here and the job retries the rest."""
    for event_id in event_ids:
        evaluate_event(int(event_id), uow, clock, depth_limit=depth_limit, final=final)


def evaluate_event(event_id: int, uow: UnitOfWork, clock: Clock, *, depth_limit: int, final: bool) -> None:
    """Run every matching rule for one event; safe to deliver twice, or concurrently."""
    attempt = Attempt(event_id, final, depth_limit)
    structlog.contextvars.bind_contextvars(event_id=event_id)
    try:
        pending = _pending_rules(uow, event_id, attempt, clock)
        for position, rule_id in enumerate(pending, start=1):
            if not _apply_rule(uow, event_id, rule_id, attempt, clock, last=position == len(pending)):
                return
    except TRANSIENT as exc:
        if attempt.current_rule is not None:
            _record_failed_attempt(uow, attempt.current_rule, event_id, exc, clock)
        raise


def _pending_rules(uow: UnitOfWork, event_id: int, attempt: Attempt, clock: Clock) -> list[int]:
    """The rules still to apply; with none, the outbox row is released right away, and a single
    one (the common case) is applied in this same transaction: one rule keeps the lock order."""
    with uow:
        session = uow.session
        if not outbox.claim(session, event_id):
            return []
        event = session.get(Event, event_id)
        pending = [match.rule.id for match in _open_matches(session, event, attempt, clock)] if event else []
        if len(pending) == 1:
            _apply_claimed(uow, event_id, pending[0], attempt, clock, last=True)
            return []
        if not pending:
            outbox.release(session, event_id)
        uow.commit()  # also keeps the rules enabled_rules may have seeded, with their ids
        return pending


def _apply_rule(uow: UnitOfWork, event_id: int, rule_id: int, attempt: Attempt, clock: Clock, *,
                last: bool) -> bool:
    """One rule in its own transaction: claim the outbox row, recheck, apply, record the run;
    the last one also releases the outbox row.

    A transaction per rule keeps the lock order of every writer: rows first,
    the commit-order lock last. Had a first rule appended events (taking that
    lock) before a second locked a row, an API request holding the row and
    waiting for the lock would deadlock with it. False: another delivery
    finished the event meanwhile.
    """
    with uow:
        if not outbox.claim(uow.session, event_id):
            return False
        _apply_claimed(uow, event_id, rule_id, attempt, clock, last=last)
        return True


def _apply_claimed(uow: UnitOfWork, event_id: int, rule_id: int, attempt: Attempt, clock: Clock, *,
                   last: bool) -> None:
    """Recheck, apply and record one rule, inside a transaction that holds the event's outbox row; commits."""
    session = uow.session
    match, run, event = _still_open(session, event_id, rule_id, attempt)
    if match is not None and event is not None:
        attempt.current_rule = rule_id
        _run_one(session, match, event, envelope(event), run, attempt, clock)
        uow.pending_dispatch.extend(attempt.dispatched)
        uow.pending_deliveries.extend(attempt.deliveries)
        attempt.dispatched, attempt.deliveries = [], []
    if last:
        outbox.release(session, event_id)
    uow.commit()
    attempt.current_rule = None
    _report(attempt, clock)


def _report(attempt: Attempt, clock: Clock) -> None:
    """After the commit: one INFO line and the run metrics (latency: trigger commit to this commit)."""
    if attempt.recorded is None:
        return
    rule, outcome, triggered = attempt.recorded
    attempt.recorded = None
    latency = (clock() - as_utc(triggered)).total_seconds()
    metrics.rule_ran(rule, outcome, latency)
    runs_log.info("rule run", event_id=attempt.event_id, rule=rule, outcome=outcome,
                  latency_ms=round(latency * 1000, 1))


def _still_open(session: Session, event_id: int, rule_id: int,
                attempt: Attempt) -> tuple[Match | None, RuleRun | None, Event | None]:
    """The rule's match on the event, unless the rule was disabled or its run finished meanwhile."""
    event, rule = session.get(Event, event_id), rule_registry.enabled_rule(session, rule_id)
    run = session.scalars(select(RuleRun).where(RuleRun.rule_id == rule_id, RuleRun.event_id == event_id)).first()
    if event is None or rule is None or (run is not None and run.status != RETRYABLE_STATUS):
        return None, run, event
    matches = evaluate_rules(envelope(event), [rule], depth=event.causation_depth, depth_limit=attempt.depth_limit)
    return (matches[0] if matches else None), run, event


def _open_matches(session: Session, event: Event | None, attempt: Attempt, clock: Clock) -> list[Match]:
    """Matches of enabled rules that have no finished run for this event yet."""
    if event is None:
        return []
    rules = rule_registry.enabled_rules(session, clock)
    finished = set(session.scalars(select(RuleRun.rule_id).where(RuleRun.event_id == event.id,
                                                                 RuleRun.status != RETRYABLE_STATUS)))
    matches = evaluate_rules(envelope(event), rules, depth=event.causation_depth, depth_limit=attempt.depth_limit)
    return [m for m in matches if m.rule.id not in finished]


@dataclass
class Outcome:
    """What applying one rule to one event came to."""

    status: RunStatus
    produced: list[Event] = field(default_factory=list)
    error: str | None = None
    reason: str | None = None
    deliveries: list[Effect] = field(default_factory=list)


def _run_one(session: Session, match: Match, event: Event, seen: dict[str, Any], run: RuleRun | None,
             attempt: Attempt, clock: Clock) -> None:
    """Apply one rule in a savepoint; a failure that will not be retried is recorded ``dead``."""
    savepoint = session.begin_nested()
    try:
        with structlog.contextvars.bound_contextvars(rule=match.rule.name):
            outcome = _apply(session, match, event, seen, clock)
        savepoint.commit()
    except TRANSIENT as exc:
        savepoint.rollback()
        if not attempt.final:
            raise
        outcome = _dead(session, match, event, run, exc, clock)
    except Exception as exc:  # noqa: BLE001 - a broken action must not stop the other rules; it is recorded dead
        savepoint.rollback()
        log.exception("rule %s failed on event %s", match.rule.name, event.id)
        outcome = _dead(session, match, event, run, exc, clock)
    attempt.dispatched.extend(row.id for row in outcome.produced)
    attempt.recorded = (match.rule.name, outcome.status, event.emitted_at)
    recorded = _record(session, run, match.rule.id, event.id, outcome, clock)
    attempt.deliveries.extend(webhooks.schedule(WebhookDeliveries(session), recorded, outcome.deliveries, clock))


def _apply(session: Session, match: Match, event: Event, seen: dict[str, Any], clock: Clock) -> Outcome:
    """Plan as of the trigger's place in the log; apply only what live state, under lock, still calls for."""
    if match.verdict == Verdict.LOOP:
        return Outcome(RunStatus.LOOP, error=f"causation depth {event.causation_depth} reached the limit")
    action = rule_registry.actions().get(match.rule.action.name)
    if action is None:
        raise LookupError(f"no action named {match.rule.action.name!r} in this worker")
    params = match.rule.action.params
    planned, found = rule_facts.plan_as_of(rule_facts.DatabaseStates(session), action, params, seen)
    if not planned:
        return Outcome(RunStatus.SKIPPED, reason=judgement.NOTHING_TO_DO.format(event=event.id))
    superseded = rule_facts.superseded_by(session, match.rule, action, seen, planned, found.streams)
    if superseded:
        return Outcome(RunStatus.SKIPPED, reason=superseded)
    live = action.plan(seen, params, rule_effects.gather_facts(session, seen, action.needs(params), lock=True))
    stale = judgement.stale(planned, live)
    if stale:
        return Outcome(RunStatus.SKIPPED, reason=judgement.describe_stale(stale))
    ctx = rule_effects.effect_context(match.rule.name, event)
    local = [e for e in planned if not isinstance(e, CallWebhook)]
    produced = rule_effects.apply_effects(session, local, ctx, clock)
    calls = [e for e in planned if isinstance(e, CallWebhook)]
    return Outcome(RunStatus.DELIVERING if calls else RunStatus.SUCCEEDED, produced, deliveries=list(calls))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def _dead(session: Session, match: Match, event: Event, run: RuleRun | None, exc: BaseException,
          clock: Clock) -> Outcome:
    """Give up on this rule for this event: ``orchestration.automation.rule_failed`` says so."""
    error = _describe(exc)
    failed = record_rule_failed(session, match.rule.id, match.rule.name, event, error,
                                (run.attempts if run is not None else 0) + 1, clock)
    return Outcome(RunStatus.DEAD, failed, error)


def record_rule_failed(session: Session, rule_id: int, rule_name: str, event: Event, error: str, attempts: int,
                       clock: Clock) -> list[Event]:
    """The ``rule_failed`` signal for a rule that gave up on an event (also used by webhook deliveries)."""
    data = {"rule_id": rule_id, "rule": rule_name, "event_id": event.id, "event_type": event.type,
            "entity": {"type": event.entity_type, "id": event.entity_id, "code": event.entity_code},
            "error": error, "attempts": attempts}
    ctx = rule_effects.effect_context(rule_name, event)
    return signals.raise_signal(session, signals.RULE_FAILURE, RULE_FAILED, data, event.priority, ctx, clock)


def _record(session: Session, run: RuleRun | None, rule_id: int, event_id: int, outcome: Outcome,
            clock: Clock) -> RuleRun:
    now = clock()
    if run is None:
        run = RuleRun(rule_id=rule_id, event_id=event_id, attempts=0, created_at=now)
        session.add(run)
    run.status = outcome.status
    run.attempts += 1
    run.effects = [rule_effects.summary(row) for row in outcome.produced]
    run.error = outcome.error
    run.reason = outcome.reason
    run.finished_at = None if outcome.status == RunStatus.DELIVERING else now
    return run


def _record_failed_attempt(uow: UnitOfWork, rule_id: int, event_id: int, exc: BaseException,
                           clock: Clock) -> None:
    """Best effort, in its own transaction: the run shows ``failed`` and its attempts while retrying.

    It claims the outbox row like an evaluation does: if another delivery has
    evaluated the event meanwhile (row gone), or the run already ended, the
    failure is history and nothing is written.
    """
    try:
        with uow:
            session = uow.session
            if not outbox.claim(session, event_id):
                return
            run = session.scalars(select(RuleRun).where(RuleRun.rule_id == rule_id,
                                                        RuleRun.event_id == event_id)).first()
            if run is not None and run.status != RETRYABLE_STATUS:
                return
            _record(session, run, rule_id, event_id, Outcome(RETRYABLE_STATUS, error=_describe(exc)), clock)
            uow.commit()
    except Exception:  # noqa: BLE001 - the database may be what failed; the retry still happens
        log.warning("could not record the failed attempt of rule %s on event %s", rule_id, event_id,
                    exc_info=True)
