"""Poison messages: an event whose evaluation keeps failing is dead-lettered after a bounded number of deliveries.

A failure that is not a transient database error (the event cannot be
decoded, a condition or the engine itself raises) would fail the same way on
every delivery, and re-sending it forever hides it. Each such failure is
counted on the event's outbox row (``failures``); below
``ORCH_OUTBOX_MAX_DELIVERIES`` the job delivers the event again after a short
backoff, and at the limit every enabled rule whose trigger type matches it
gets a ``dead`` run and an ``orchestration.automation.rule_failed`` signal,
and the outbox row goes. Later events never wait for it.

Only the event's scalar columns are read here: its JSON may be what fails.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from app.domain.clock import Clock
from app.domain.events import RULE_FAILED, type_matches
from app.domain.rules import RuleDef, automation_actor
from app.domain.runs import FINISHED, RunStatus
from app.services import automation, rule_effects, rule_registry, signal_events
from app.services.context import ChangeContext
from app.store.dead_letters import Poisoned
from app.store.tables import RuleRun
from app.store.uow import UnitOfWork

log = logging.getLogger(__name__)
MAX_BACKOFF = 30.0


def evaluate_guarded(event_ids: Sequence[int], uow: UnitOfWork, clock: Clock, *, depth_limit: int, final: bool,
                     max_deliveries: int) -> dict[int, int]:
    """Evaluate each event; one that fails for a non-transient reason is counted and the rest go on.

    Returns ``{event id: failures}`` of the events to deliver again. A
    transient error still stops here: the job retries the message (events
    already evaluated find their outbox rows gone and cost a lookup).
    """
    again: dict[int, int] = {}
    for event_id in (int(i) for i in event_ids):
        try:
            automation.evaluate_event(event_id, uow, clock, depth_limit=depth_limit, final=final)
        except automation.TRANSIENT:
            raise
        except Exception as exc:  # noqa: BLE001 - a poison event must not stall the others
            log.exception("evaluating event %s failed", event_id)
            failures = record_failure(uow, event_id, exc, clock, max_deliveries=max_deliveries)
            if failures is not None:
                again[event_id] = failures
    return again


def backoff(failures: int) -> float:
    """Seconds before the next delivery: 1, 2, 4, … capped."""
    return min(2.0 ** max(failures - 1, 0), MAX_BACKOFF)


def record_failure(uow: UnitOfWork, event_id: int, exc: BaseException, clock: Clock, *,
                   max_deliveries: int) -> int | None:
    """Count one failed delivery; the failures so far when the event should be delivered again, else None."""
    with uow:
        row = uow.dead_letters.lock_outbox_entry(event_id)
        if row is None:
            return None  # another delivery finished it meanwhile
        row.failures = (row.failures or 0) + 1
        row.dispatched_at = clock()  # the job re-sends it; the sweep only if that message is lost
        failures = row.failures
        if failures < max_deliveries:
            uow.commit()
            return failures
        produced = _dead_letter(uow, event_id, exc, failures, clock)
        uow.dead_letters.remove_outbox_entry(row)
        uow.pending_dispatch.extend(produced)
        uow.commit()
        log.error("event %s dead-lettered after %d failed deliveries: %s", event_id, failures, _describe(exc))
        return None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def _dead_letter(uow: UnitOfWork, event_id: int, exc: BaseException, failures: int, clock: Clock) -> list[int]:
    """A dead run and a ``rule_failed`` signal for each rule that could have fired; the new event ids."""
    event = uow.dead_letters.poisoned(event_id)
    if event is None:
        return []
    runs = uow.dead_letters.runs_by_rule(event_id)
    produced: list[int] = []
    for rule in rule_registry.enabled_rules(uow, clock):
        run = runs.get(rule.id)
        if not type_matches(rule.trigger.type, event.type) or (run is not None and run.status in FINISHED):
            continue
        produced.extend(_dead_run(uow, rule, event, run, exc, failures, clock))
    return produced


def _dead_run(uow: UnitOfWork, rule: RuleDef, event: Poisoned, run: RuleRun | None, exc: BaseException,
              failures: int, clock: Clock) -> list[int]:
    now, error = clock(), _describe(exc)
    data = {"rule_id": rule.id, "rule": rule.name, "event_id": event.id, "event_type": event.type,
            "entity": {"type": event.entity_type, "id": event.entity_id, "code": event.entity_code},
            "error": error, "attempts": failures, "reason": "max_deliveries"}
    ctx = ChangeContext(actor=automation_actor(rule.name), correlation_chain=(event.correlation_id,),
                        causation_id=event.event_id, causation_depth=event.causation_depth + 1)
    failed = signal_events.raise_signal(uow, signal_events.RULE_FAILURE, RULE_FAILED, data, event.priority, ctx,
                                        clock)
    if run is None:
        run = uow.dead_letters.new_run(rule.id, event.id, now)
    run.status, run.attempts, run.error, run.finished_at = RunStatus.DEAD, failures, error, now
    run.effects = [rule_effects.summary(e) for e in failed]
    return [e.id for e in failed]
