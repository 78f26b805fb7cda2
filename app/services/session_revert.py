"""``POST /sessions/{key}/revert``: compensating changes that take a session back, field by field.

The plan is read in one snapshot: every stream event of the session (and,
with ``include_automation``, every event its events caused) grouped by entity.
Each entity is then reverted in its own transaction, under its row lock,
through the tracking service's update path, so compensations are granular,
hashed events like any change, written as the caller with
``causation_id`` = the session's last event and the session key in
``correlation_chain``. They get no outbox row (rules do not react to them)
unless ``trigger_rules``. A field changed by anyone else since the revert
set first changed it is a conflict: listed, and left alone unless ``force``.
Compensations of an earlier revert count as neither, so reverting twice
changes nothing the second time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from app.domain import events as catalogue
from app.domain import forensics as fx
from app.domain.clock import Clock
from app.domain.errors import DomainError, NotFound
from app.domain.runs import RevertStatus
from app.services import tracking
from app.services.context import ChangeContext
from app.store import session_queries as sq
from app.store.event_store import envelope
from app.store.uow import UnitOfWork

NOT_REVERTIBLE = "revert changes sprints and tasks only; notifications, alerts and sessions stay"
EntityKey = tuple[str, int]


@dataclass(frozen=True)
class RevertOptions:
    dry_run: bool = True
    include_automation: bool = False
    force: bool = False
    trigger_rules: bool = False


@dataclass
class RevertPlan:
    """The revert set by entity, read in one snapshot."""

    key: str
    cause: str
    by_entity: dict[EntityKey, list[dict[str, Any]]]


def revert(key: str, options: RevertOptions, ctx: ChangeContext, uow: UnitOfWork, clock: Clock) -> dict[str, Any]:
    plan = read_plan(key, options, uow)
    ctx = _compensating(ctx, plan, options)
    results = [_revert_entity(entity, events, plan, options, ctx, uow, clock)
               for entity, events in sorted(plan.by_entity.items())]
    applied = [r for r in results if r["status"] == RevertStatus.APPLIED]
    reverted = _record_reverted(plan, options, results, ctx, uow, clock) if applied else None
    conflicts = [c | {"entity": r["entity"]} for r in results for c in r.pop("conflict_details")]
    return {
        "session_key": key, **dataclasses.asdict(options), "causation_id": plan.cause,
        "entities": results, "conflicts": conflicts,
        "summary": {"entities": len(results), "fields": sum(len(r["fields"]) for r in results),
                    "conflicts": len(conflicts), **_count_statuses(results)},
        "reverted_event": reverted,
    }


def read_plan(key: str, options: RevertOptions, uow: UnitOfWork) -> RevertPlan:
    with uow:
        db = uow.db
        sq.one_snapshot(db)
        row = sq.session_row(db, key)
        if row is None:
            raise NotFound(f"no agent session with key {key!r}")
        upto = sq.log_head(db)
        last = sq.last_event(db, key, upto, catalogue.SESSION_REVERTED)
        events = sq.session_changes(db, key, upto, row.id)
        if options.include_automation:
            caused = fx.prune_compensations(sq.caused(db, key, upto), key)
            events = sorted(events + [e for e in caused if e["sequence"] is not None], key=lambda e: e["id"])
        by_entity: dict[EntityKey, list[dict[str, Any]]] = {}
        for event in events:
            by_entity.setdefault((event["entity"]["type"], event["entity"]["id"]), []).append(event)
        return RevertPlan(key, last["event_id"] if last else "", by_entity)


def _compensating(ctx: ChangeContext, plan: RevertPlan, options: RevertOptions) -> ChangeContext:
    """The caller acts; the session's last event is the cause; the session key joins the chain."""
    return dataclasses.replace(
        ctx, causation_id=plan.cause or None, correlation_chain=(*ctx.correlation_chain, plan.key),
        session_key=None if ctx.session_key == plan.key else ctx.session_key,
        trigger_rules=options.trigger_rules)


def _revert_entity(entity: EntityKey, events: list[dict[str, Any]], plan: RevertPlan, options: RevertOptions,
                   ctx: ChangeContext, uow: UnitOfWork, clock: Clock) -> dict[str, Any]:
    """One entity, one transaction: lock, re-read what happened since, patch back what is still ours."""
    ref = events[0]["entity"]
    result: dict[str, Any] = {"entity": ref, "status": RevertStatus.SKIPPED, "version": None, "fields": {},
                              "conflicts": [], "conflict_details": [], "detail": None, "events": []}
    if entity[0] not in fx.REVERTIBLE:
        return result | {"detail": NOT_REVERTIBLE}
    kind = tracking.KINDS[entity[0]]
    with uow:
        rows = uow.streams[kind.name]
        row = rows.get(ref["code"], lock=not options.dry_run, deleted=True)
        live = rows.live(row)
        ours = {e["id"] for e in events}
        later = [e for e in sq.stream_after(uow.db, entity, events[0]["id"])
                 if e["id"] not in ours and not fx.is_compensation(e, plan.key)]
        found = fx.plan_entity(events, later, live, force=options.force)
        result |= {"version": row.version, "fields": found.fields, "conflict_details": found.conflicts,
                   "conflicts": [c["field"] for c in found.conflicts], "detail": found.skipped}
        if found.skipped:
            return result
        if not found.patch:
            return result | {"status": RevertStatus.CONFLICT if found.conflicts else RevertStatus.UNCHANGED}
        if options.dry_run:
            return result | {"status": RevertStatus.PLANNED}
        return result | _apply(uow, kind, ref["code"], found.patch, row.version, plan, ctx, clock)


def _apply(uow: UnitOfWork, kind: tracking.Kind, code: str, patch: dict[str, Any], version: int,
           plan: RevertPlan, ctx: ChangeContext, clock: Clock) -> dict[str, Any]:
    checked = dataclasses.replace(ctx, expected_version=version)
    try:
        row, events = tracking.apply_update(uow, kind, code, patch, checked, clock,
                                            data={"reason": fx.REVERT_REASON, "session_key": plan.key})
    except DomainError as exc:  # e.g. leaving `cancelled`, or a sprint since deleted
        return {"status": RevertStatus.FAILED, "detail": exc.detail}
    uow.commit()
    return {"status": RevertStatus.APPLIED, "version": row.version, "events": [envelope(e) for e in events]}


def _record_reverted(plan: RevertPlan, options: RevertOptions, results: list[dict[str, Any]],
                     ctx: ChangeContext, uow: UnitOfWork, clock: Clock) -> dict[str, Any]:
    """``orchestration.session.reverted`` on the session's own stream, once something changed."""
    applied = [r for r in results if r["status"] == RevertStatus.APPLIED]
    data = {"reason": fx.REVERT_REASON, "session_key": plan.key,
            "include_automation": options.include_automation, "force": options.force,
            "entities": [r["entity"] for r in applied],
            "fields": sum(len(r["fields"]) for r in applied),
            "conflicts": sum(len(r["conflicts"]) for r in results)}
    with uow:
        rows = uow.streams["session"]
        row = rows.get(plan.key, lock=True)
        planned = catalogue.PlannedEvent(catalogue.SESSION_REVERTED, data=data)
        [event] = uow.events.append_to_stream(rows.ref(row), [planned], ctx, clock())
        uow.commit()
        return envelope(event)


def _count_statuses(results: list[dict[str, Any]]) -> dict[str, int]:
    return {status: sum(1 for r in results if r["status"] == status) for status in RevertStatus}
