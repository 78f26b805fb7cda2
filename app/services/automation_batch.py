"""The worker's batch: one message's events, and whatever else is pending (up to a bound), per transaction.

``evaluate_event`` spends a transaction per event (per rule when an event
matches several), and each costs a dozen round trips: claim, read the event,
read the rules, read its runs, release, commit. Here one transaction claims
the outbox rows of the whole batch in one statement (``SKIP LOCKED``, which
also returns the events), reads the enabled rules and the batch's runs once,
judges every event, applies each open rule in its savepoint (as
``evaluate_event`` does), records the runs, releases the finished rows in one
DELETE and commits.

The guarantees are ``evaluate_event``'s: a run is recorded once per rule and
event (UNIQUE), judgement is as of the trigger, a row held by another delivery
is skipped, and what a transaction did not finish keeps its outbox row.

Lock order (rows first, appends last) is what bounds a batch. The first rule
that appends events registers the transaction in flight (``event_fence``)
until COMMIT, which holds the log's visible bound below its events: readers
following the log and other evaluations wait for it. From then on the
transaction waits for a row lock at most a few milliseconds
(``outbox.bound_lock_waits``) and, when a row is busy, commits what it has and
goes on in a new transaction. It also commits after ``MAX_EFFECTS`` rules
with effects, so the bound never lags long behind it.

A failure that is not transient, outside any rule (an event that cannot be
decoded), fails the batch: its events are then evaluated one by one by
``dead_letter.evaluate_guarded``, which isolates and counts the poison event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

import structlog

from app.domain.clock import Clock
from app.domain.rules import Match, RuleDef, evaluate_rules
from app.services import automation, dead_letter, rule_registry
from app.services.automation import RETRYABLE_STATUS, Attempt, Judged, Trigger
from app.store.errors import TRANSIENT
from app.store.outbox_rows import lock_busy
from app.store.tables import Event, RuleRun
from app.store.uow import UnitOfWork

log = logging.getLogger(__name__)

# Other pending events the first transaction of a message may take on besides the message's own,
# and the events one transaction claims at most (a sweep's message carries up to a hundred).
EXTRA_EVENTS = 32
PASS_EVENTS = 64
# Rules judged per transaction, and of them, rules with effects: every effect after the first one that
# appended runs while the transaction holds the visible bound down (event_fence), and readers wait for it.
MAX_RULES = 64
MAX_EFFECTS = 16


@dataclass
class _Pass:
    """What one transaction of the batch did: events finished, events left, runs to report after COMMIT."""

    finished: list[int] = field(default_factory=list)
    left: list[int] = field(default_factory=list)
    recorded: list[tuple[int, tuple[str, str, datetime]]] = field(default_factory=list)
    applied: int = 0
    bounded: bool = False  # lock waits bounded (something was appended: registered in flight)


def evaluate_batch(event_ids: Sequence[int], uow: UnitOfWork, clock: Clock, *, depth_limit: int, final: bool,
                   max_deliveries: int) -> dict[int, int]:
    """Evaluate these events (and other pending ones) in as few transactions as lock order allows.

    Returns ``{event id: failures}`` of events to deliver again, as
    ``dead_letter.evaluate_guarded`` does. A transient error propagates (the
    job retries the message; what was committed finds its rows gone).
    """
    # A last attempt records transient failures dead: it takes on no other message's events.
    todo, extra = sorted({int(i) for i in event_ids}), 0 if final else EXTRA_EVENTS
    while todo:
        try:
            left = _one_pass(todo[:PASS_EVENTS], extra, uow, clock, depth_limit=depth_limit, final=final)
            todo = sorted(set(left) | set(todo[PASS_EVENTS:]))
        except TRANSIENT:
            raise
        except Exception:  # noqa: BLE001 - a poison event among them: one by one isolates it
            log.warning("batch of events %s failed; evaluating them one by one", todo, exc_info=True)
            return dead_letter.evaluate_guarded(todo, uow, clock, depth_limit=depth_limit, final=final,
                                                max_deliveries=max_deliveries)
        extra = 0  # the continuation takes only what the first pass claimed and left
    return {}


def _one_pass(todo: list[int], extra: int, uow: UnitOfWork, clock: Clock, *, depth_limit: int,
              final: bool) -> list[int]:
    """One transaction over the batch; returns the events it claimed but did not finish.

    Two phases, so the transaction is in flight as briefly as a batch allows:
    every rule is judged first (reads as of the trigger, live rows locked, runs
    without effects recorded), then the effects are applied one rule after
    another (the first append takes the lock) and their runs recorded.
    """
    done = _Pass()
    attempt = Attempt(0, final, depth_limit)
    try:
        with uow:
            events = uow.outbox.claim_batch(todo, extra)
            if not events:
                return []
            rules = rule_registry.enabled_rules(uow, clock)
            runs = uow.rules.runs_of_events([event.id for event in events])
            judged = _judge_all(uow, events, rules, runs, attempt, done, clock)
            _apply_all(uow, judged, attempt, done, clock)
            uow.outbox.release_many([e.id for e in events if e.id not in done.left])
            uow.commit()  # also keeps the rules enabled_rules may have seeded, with their ids
    except TRANSIENT as exc:
        if attempt.current_rule is not None and not lock_busy(exc):
            automation._record_failed_attempt(uow, attempt.current_rule, attempt.event_id, exc, clock)
        raise
    finally:
        structlog.contextvars.unbind_contextvars("event_id", "rule")
    for event_id, recorded in done.recorded:
        automation.report_run(event_id, recorded, clock)
    return done.left


def _judge_all(uow: UnitOfWork, events: list[Event], rules: list[RuleDef], runs: dict[int, dict[int, RuleRun]],
               attempt: Attempt, done: _Pass, clock: Clock) -> list[Judged]:
    """Phase one: judge every open rule of every event, in order, up to ``MAX_RULES`` rules or
    ``MAX_EFFECTS`` rules with effects; the rules that need no effect are recorded here. Events from
    the one that hit a bound on are left."""
    pending: list[Judged] = []
    for position, event in enumerate(events):
        attempt.event_id = event.id
        structlog.contextvars.bind_contextvars(event_id=event.id)
        trigger = Trigger(event, automation.envelope(event))  # through automation: one seam for tests
        matches = evaluate_rules(trigger.seen, rules, depth=event.causation_depth, depth_limit=attempt.depth_limit)
        event_runs = runs.get(event.id, {})
        open_ = [(m, event_runs.get(m.rule.id)) for m in matches]
        open_ = [(m, run) for m, run in open_ if run is None or run.status == RETRYABLE_STATUS]
        if done.applied > 0 and (done.applied + len(open_) > MAX_RULES or len(pending) >= MAX_EFFECTS):
            done.left = [e.id for e in events[position:]]
            break
        for match, run in open_:
            if not _step(uow, attempt, done, match.rule.id,
                         partial(_judge, uow, match, trigger, run, attempt, done, pending, clock)):
                done.left = [e.id for e in events[position:]]
                return [j for j in pending if j.trigger.event.id not in done.left]
    return pending


def _judge(uow: UnitOfWork, match: Match, trigger: Trigger, run: RuleRun | None, attempt: Attempt, done: _Pass,
           pending: list[Judged], clock: Clock) -> None:
    judged = automation.judge_one(uow, match, trigger, run, attempt, clock)
    done.applied += 1
    if judged.outcome is None:
        pending.append(judged)
    else:
        _finish(uow, judged, attempt, done, clock)


def _apply_all(uow: UnitOfWork, pending: list[Judged], attempt: Attempt, done: _Pass, clock: Clock) -> None:
    """Phase two: apply each judged rule's effects and record its run; a busy row stops here and leaves
    its event (and the ones after it) for the next transaction."""
    for judged in pending:
        event_id = judged.trigger.event.id
        if event_id in done.left:
            continue
        attempt.event_id = event_id
        if not _step(uow, attempt, done, judged.match.rule.id, partial(_finish, uow, judged, attempt, done, clock)):
            done.left = sorted(set(done.left) | {j.trigger.event.id for j in pending if j.trigger.event.id >= event_id})
            return


def _finish(uow: UnitOfWork, judged: Judged, attempt: Attempt, done: _Pass, clock: Clock) -> None:
    automation.finish_one(uow, judged, attempt, clock)
    uow.pending_deliveries.extend(attempt.deliveries)
    attempt.deliveries = []
    if attempt.recorded is not None:
        done.recorded.append((judged.trigger.event.id, attempt.recorded))
        attempt.recorded = None


def _step(uow: UnitOfWork, attempt: Attempt, done: _Pass, rule_id: int, step: Callable[[], None]) -> bool:
    """One step of one rule; False when a row was busy after this transaction had appended events."""
    if uow.pending_dispatch and not done.bounded:  # something was appended: in flight until COMMIT
        uow.outbox.bound_lock_waits()
        done.bounded = True
    attempt.current_rule = rule_id
    try:
        step()
    except TRANSIENT as exc:
        if lock_busy(exc) and done.bounded:
            attempt.current_rule = None
            return False
        raise
    attempt.current_rule = None
    return True
