"""The rules engine at work: evaluate one dispatched event, apply each matching rule once.

One transaction per matching rule: claim the event's outbox row, apply the
rule (in a savepoint), record its ``automation_rule_runs`` row (UNIQUE
rule+event) with the effects, commit; then delete the outbox row. A redelivered
message skips the rules whose runs are recorded, and finds the outbox row gone
once all are done (DESIGN §3).

The worker's job goes through ``automation_batch`` (many events per
transaction); this one-event path is what a batch falls back to, one by one,
when it meets an event it cannot evaluate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from app import metrics
from app.domain import rule_judgement as judgement
from app.domain.clock import Clock, as_utc
from app.domain.events import RULE_FAILED
from app.domain.rule_actions import CallWebhook, Effect
from app.domain.rules import Match, evaluate_rules
from app.domain.runs import RETRYABLE, RunStatus, Verdict
from app.services import rule_effects, rule_facts, rule_registry, signal_events, webhooks
from app.store.errors import TRANSIENT
from app.store.event_store import envelope
from app.store.outbox_rows import lock_busy
from app.store.tables import Event, RuleRun
from app.store.uow import Repositories, UnitOfWork

log = logging.getLogger(__name__)
runs_log = structlog.get_logger("app.automation")

__all__ = ["TRANSIENT", "envelope", "evaluate_event", "evaluate_events", "record_rule_failed"]
RETRYABLE_STATUS = RETRYABLE


@dataclass
class Attempt:
    """One delivery of one event: which attempt it is, and the rule being applied when it failed."""

    event_id: int
    final: bool
    depth_limit: int
    current_rule: int | None = None
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
    one (the common case) is applied in this same transaction: one rule keeps the lock order.

    The trigger is read, enveloped and matched once here; the single rule goes
    on with that match, its run row and the envelope (nothing can change them
    while this transaction holds the event's outbox row).
    """
    with uow:
        if not uow.outbox.claim(event_id):
            return []
        event = uow.events.get(event_id)
        trigger = Trigger(event, envelope(event)) if event is not None else None
        matches = _open_matches(uow, trigger, attempt, clock) if trigger is not None else []
        if len(matches) == 1 and trigger is not None:
            match, run = matches[0]
            _apply_claimed(uow, event_id, (match, run, trigger), attempt, clock, last=True)
            return []
        if not matches:
            uow.outbox.release(event_id)
        uow.commit()  # also keeps the rules enabled_rules may have seeded, with their ids
        return [match.rule.id for match, _ in matches]


@dataclass(frozen=True)
class Trigger:
    """The event a rule runs on, and its envelope (built once per transaction)."""

    event: Event
    seen: dict[str, Any]


Open = tuple[Match, RuleRun | None, Trigger]


def _apply_rule(uow: UnitOfWork, event_id: int, rule_id: int, attempt: Attempt, clock: Clock, *,
                last: bool) -> bool:
    """One rule in its own transaction: claim the outbox row, recheck, apply, record the run;
    the last one also releases the outbox row.

    A transaction per rule keeps the order of every writer: rows first,
    appends last. Had a first rule appended events (registering in flight,
    ``event_fence``) before a second waited on a row, the log's visible bound
    would stay below its events for as long as the row is held. False: another
    delivery finished the event meanwhile.
    """
    with uow:
        if not uow.outbox.claim(event_id):
            return False
        _apply_claimed(uow, event_id, _still_open(uow, event_id, rule_id, attempt), attempt, clock, last=last)
        return True


def _apply_claimed(uow: UnitOfWork, event_id: int, found: Open | None, attempt: Attempt, clock: Clock, *,
                   last: bool) -> None:
    """Apply and record one open rule, inside a transaction that holds the event's outbox row; commits."""
    if found is not None:
        match, run, trigger = found
        attempt.current_rule = match.rule.id
        run_one(uow, match, trigger, run, attempt, clock)
        uow.pending_deliveries.extend(attempt.deliveries)
        attempt.deliveries = []
    if last:
        uow.outbox.release(event_id)
    uow.commit()
    attempt.current_rule = None
    _report(attempt, clock)


def _report(attempt: Attempt, clock: Clock) -> None:
    """After the commit: one INFO line and the run metrics (latency: trigger commit to this commit)."""
    if attempt.recorded is None:
        return
    recorded, attempt.recorded = attempt.recorded, None
    report_run(attempt.event_id, recorded, clock)


def report_run(event_id: int, recorded: tuple[str, str, datetime], clock: Clock) -> None:
    """One committed run: its metrics and INFO line."""
    rule, outcome, triggered = recorded
    latency = (clock() - as_utc(triggered)).total_seconds()
    metrics.rule_ran(rule, outcome, latency)
    runs_log.info("rule run", event_id=event_id, rule=rule, outcome=outcome,
                  latency_ms=round(latency * 1000, 1))


def _still_open(uow: UnitOfWork, event_id: int, rule_id: int, attempt: Attempt) -> Open | None:
    """The rule's match on the event, unless the rule was disabled or its run finished meanwhile."""
    event, rule = uow.events.get(event_id), rule_registry.enabled_rule(uow, rule_id)
    run = uow.rules.run(rule_id, event_id)
    if event is None or rule is None or (run is not None and run.status != RETRYABLE_STATUS):
        return None
    seen = envelope(event)
    matches = evaluate_rules(seen, [rule], depth=event.causation_depth, depth_limit=attempt.depth_limit)
    return (matches[0], run, Trigger(event, seen)) if matches else None


def _open_matches(uow: UnitOfWork, trigger: Trigger, attempt: Attempt,
                  clock: Clock) -> list[tuple[Match, RuleRun | None]]:
    """Matches of enabled rules that have no finished run for this event yet, with their runs so far."""
    rules = rule_registry.enabled_rules(uow, clock)
    runs = {run.rule_id: run for run in uow.rules.runs_of_event(trigger.event.id)}
    matches = evaluate_rules(trigger.seen, rules, depth=trigger.event.causation_depth,
                             depth_limit=attempt.depth_limit)
    return [(m, runs.get(m.rule.id)) for m in matches
            if m.rule.id not in runs or runs[m.rule.id].status == RETRYABLE_STATUS]


@dataclass
class Outcome:
    """What applying one rule to one event came to."""

    status: RunStatus
    produced: list[Event] = field(default_factory=list)
    error: str | None = None
    reason: str | None = None
    deliveries: list[Effect] = field(default_factory=list)


@dataclass
class Judged:
    """A rule judged on an event: its run so far, and either its outcome or the effects still to apply."""

    match: Match
    trigger: Trigger
    run: RuleRun | None
    outcome: Outcome | None = None
    local: list[Effect] = field(default_factory=list)
    calls: list[Effect] = field(default_factory=list)


def run_one(uow: UnitOfWork, match: Match, trigger: Trigger, run: RuleRun | None, attempt: Attempt,
            clock: Clock) -> None:
    """Judge and apply one rule in one savepoint, then record its run; a failure that will not be
    retried is recorded ``dead``."""
    judged = Judged(match, trigger, run)

    def judge_and_apply() -> None:
        _judge(uow, judged)
        if judged.outcome is None:
            _apply_effects(uow, judged, clock)

    _guarded(uow, judged, attempt, clock, judge_and_apply)
    finish_one(uow, judged, attempt, clock)


def judge_one(uow: UnitOfWork, match: Match, trigger: Trigger, run: RuleRun | None, attempt: Attempt,
              clock: Clock) -> Judged:
    """Everything of a rule before its effects, in a savepoint: reads as of the trigger, live rows
    locked. Appends nothing (unless the rule dies), so it never holds the visible bound down."""
    judged = Judged(match, trigger, run)
    _guarded(uow, judged, attempt, clock, lambda: _judge(uow, judged))
    return judged


def finish_one(uow: UnitOfWork, judged: Judged, attempt: Attempt, clock: Clock) -> None:
    """Apply a judged rule's effects (in a savepoint) unless it already has an outcome; record its run."""
    if judged.outcome is None:
        _guarded(uow, judged, attempt, clock, lambda: _apply_effects(uow, judged, clock))
    outcome, event = judged.outcome, judged.trigger.event
    assert outcome is not None
    attempt.recorded = (judged.match.rule.name, outcome.status, event.emitted_at)
    recorded = _record(uow, judged.run, judged.match.rule.id, event.id, outcome, clock)
    attempt.deliveries.extend(webhooks.schedule(uow.webhooks, recorded, outcome.deliveries, clock))


def _guarded(uow: UnitOfWork, judged: Judged, attempt: Attempt, clock: Clock, step: Callable[[], None]) -> None:
    """Run a step of a rule in a savepoint; a failure that will not be retried makes the outcome ``dead``."""
    match, event = judged.match, judged.trigger.event
    savepoint = uow.savepoint()
    try:
        with structlog.contextvars.bound_contextvars(rule=match.rule.name):
            step()
        savepoint.commit()
    except TRANSIENT as exc:
        savepoint.rollback()
        if not attempt.final or lock_busy(exc):  # a busy row (see automation_batch) is never a rule's fault
            raise
        judged.outcome = _dead(uow, match, event, judged.run, exc, clock)
    except Exception as exc:  # noqa: BLE001 - a broken action must not stop the other rules; it is recorded dead
        savepoint.rollback()
        log.exception("rule %s failed on event %s", match.rule.name, event.id)
        judged.outcome = _dead(uow, match, event, judged.run, exc, clock)


def _judge(uow: UnitOfWork, judged: Judged) -> None:
    """Plan as of the trigger's place in the log; keep only what live state, under lock, still calls for."""
    match, event, seen = judged.match, judged.trigger.event, judged.trigger.seen
    if match.verdict == Verdict.LOOP:
        judged.outcome = Outcome(RunStatus.LOOP, error=f"causation depth {event.causation_depth} reached the limit")
        return
    action = rule_registry.actions().get(match.rule.action.name)
    if action is None:
        raise LookupError(f"no action named {match.rule.action.name!r} in this worker")
    params = match.rule.action.params
    states = rule_facts.DatabaseStates(uow.db)
    planned, found = rule_facts.plan_as_of(states, action, params, seen)
    if not planned:
        judged.outcome = Outcome(RunStatus.SKIPPED, reason=judgement.NOTHING_TO_DO.format(event=event.id))
        return
    superseded = rule_facts.superseded_by(states, match.rule, action, seen, planned, found.streams)
    if superseded:
        judged.outcome = Outcome(RunStatus.SKIPPED, reason=superseded)
        return
    live = action.plan(seen, params, rule_effects.gather_facts(uow, seen, action.needs(params), lock=True))
    stale = judgement.stale(planned, live)
    if stale:
        judged.outcome = Outcome(RunStatus.SKIPPED, reason=judgement.describe_stale(stale))
        return
    judged.local = [e for e in planned if not isinstance(e, CallWebhook)]
    judged.calls = [e for e in planned if isinstance(e, CallWebhook)]


def _apply_effects(uow: UnitOfWork, judged: Judged, clock: Clock) -> None:
    """The effects of a judged rule: the appends (and with them the in-flight registration) come here."""
    ctx = rule_effects.effect_context(judged.match.rule.name, judged.trigger.event)
    produced = rule_effects.apply_effects(uow, judged.local, ctx, clock)
    judged.outcome = Outcome(RunStatus.DELIVERING if judged.calls else RunStatus.SUCCEEDED, produced,
                             deliveries=list(judged.calls))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def _dead(uow: UnitOfWork, match: Match, event: Event, run: RuleRun | None, exc: BaseException,
          clock: Clock) -> Outcome:
    """Give up on this rule for this event: ``orchestration.automation.rule_failed`` says so."""
    error = _describe(exc)
    failed = record_rule_failed(uow, match.rule.id, match.rule.name, event, error,
                                (run.attempts if run is not None else 0) + 1, clock)
    return Outcome(RunStatus.DEAD, failed, error)


def record_rule_failed(repos: Repositories, rule_id: int, rule_name: str, event: Event, error: str, attempts: int,
                       clock: Clock) -> list[Event]:
    """The ``rule_failed`` signal for a rule that gave up on an event (also used by webhook deliveries)."""
    data = {"rule_id": rule_id, "rule": rule_name, "event_id": event.id, "event_type": event.type,
            "entity": {"type": event.entity_type, "id": event.entity_id, "code": event.entity_code},
            "error": error, "attempts": attempts}
    ctx = rule_effects.effect_context(rule_name, event)
    return signal_events.raise_signal(repos, signal_events.RULE_FAILURE, RULE_FAILED, data, event.priority, ctx,
                                      clock)


def _record(repos: Repositories, run: RuleRun | None, rule_id: int, event_id: int, outcome: Outcome,
            clock: Clock) -> RuleRun:
    now = clock()
    if run is None:
        run = repos.rules.add_run(rule_id, event_id, now)
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
            if not uow.outbox.claim(event_id):
                return
            run = uow.rules.run(rule_id, event_id)
            if run is not None and run.status != RETRYABLE_STATUS:
                return
            _record(uow, run, rule_id, event_id, Outcome(RETRYABLE_STATUS, error=_describe(exc)), clock)
            uow.commit()
    except Exception:  # noqa: BLE001 - the database may be what failed; the retry still happens
        log.warning("could not record the failed attempt of rule %s on event %s", rule_id, event_id,
                    exc_info=True)
