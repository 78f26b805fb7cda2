"""Backtesting: judge a rule (stored or draft) as of each event of a window, writing nothing.

The same planning the worker does (``rule_facts.plan_as_of``), fed by states
folded while the log streams past in keyset batches (``backtest_states``), so
memory stays flat and a page costs a bounded scan. A page ends after ``limit``
matches or ``SCAN_BUDGET`` events, whichever comes first; its summary covers
the events that page scanned, and ``next`` continues right after them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session

from app.domain.clock import iso
from app.domain.errors import Invalid, NotFound
from app.domain.event_filter import EventFilter
from app.domain.rule_actions import parse_action
from app.domain.rules import RuleDef, evaluate_rules, parse_trigger
from app.domain.rules import Trigger as _Trigger
from app.domain.runs import RunStatus, Verdict
from app.services import rule_facts, rule_registry
from app.services.backtest_states import CachedStates
from app.store import event_queries
from app.store.tables import Event, Rule, RuleRun
from app.store.uow import UnitOfWork

BATCH = 5_000
SCAN_BUDGET = 500_000
DIFFERENCES_SHOWN = 100
COLUMNS = (Event.id, Event.event_id, Event.type, Event.entity_type, Event.entity_id, Event.entity_code,
           Event.sequence, Event.actor, Event.emitted_at, Event.correlation_id, Event.correlation_chain,
           Event.causation_id, Event.causation_depth, Event.session_key, Event.priority, Event.changes,
           Event.data, Event.hash, Event.prev_hash, Event.archived_at)
# The scan reads JSON as text and decodes it only for the events it folds or judges.
RAW = {"correlation_chain": cast(Event.correlation_chain, Text), "changes": cast(Event.changes, Text),
       "data": cast(Event.data, Text)}
SCAN_COLUMNS = tuple(RAW[c.key].label(c.key) if c.key in RAW else c for c in COLUMNS)
# What every scanned event needs (to fold it); the rest is read only for the events a rule is judged on.
HEAVY = frozenset({"data", "correlation_chain", "hash", "prev_hash"})
LIGHT_COLUMNS = tuple(c for c in SCAN_COLUMNS if c.key not in HEAVY)


@dataclass
class Page:
    """What one page scanned and found."""

    scanned: int = 0
    last_id: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)
    effects: Counter[str] = field(default_factory=Counter)
    applying: list[int] = field(default_factory=list)


def draft_rule(body: dict[str, Any]) -> RuleDef:
    """A rule body as ``POST /rules`` takes it, checked the same way, never stored."""
    trigger = parse_trigger(body["trigger"])
    action = parse_action(body["action"], rule_registry.user_actions())
    return RuleDef(0, str(body["name"]), trigger, action, True)


def stored_rule(session: Session, rule_id: int) -> RuleDef:
    row = session.get(Rule, rule_id)
    if row is None:
        raise NotFound(f"no rule with id {rule_id}")
    found = rule_registry.to_def(row)
    if found is None:
        raise Invalid("the rule's trigger cannot be read", {"rule_id": ["unreadable trigger"]})
    return found


def _window(session: Session, flt: EventFilter) -> tuple[int, int]:
    """The id range holding the window's events (ids, not timestamps, order the scan)."""
    stmt = select(func.min(Event.id), func.max(Event.id))
    if flt.start is not None:
        stmt = stmt.where(Event.emitted_at >= flt.start)
    if flt.end is not None:
        stmt = stmt.where(Event.emitted_at < flt.end)
    first, last = session.execute(stmt).one()
    return (int(first or 0), int(last or 0))


def _json(raw: str | None) -> Any:
    return json.loads(raw) if raw else None


def _envelope(row: Any) -> dict[str, Any]:
    return {"id": row.id, "event_id": row.event_id, "type": row.type,
            "entity": {"type": row.entity_type, "id": row.entity_id, "code": row.entity_code},
            "sequence": row.sequence, "actor": row.actor, "timestamp": iso(row.emitted_at),
            "correlation_id": row.correlation_id, "correlation_chain": _json(row.correlation_chain) or [],
            "causation_id": row.causation_id, "session_key": row.session_key, "priority": row.priority,
            "changes": _json(row.changes) or {}, "data": _json(row.data) or {}, "hash": row.hash,
            "prev_hash": row.prev_hash, "archived_at": iso(row.archived_at)}


def _batches(session: Session, after: int, last: int) -> Iterator[list[Any]]:
    while after < last:
        rows = list(session.execute(select(*LIGHT_COLUMNS).where(Event.id > after, Event.id <= last)
                                    .order_by(Event.id).limit(BATCH)))
        if not rows:
            return
        yield rows
        after = rows[-1].id


def _full_rows(session: Session, ids: list[int]) -> dict[int, Any]:
    if not ids:
        return {}
    return {row.id: row for row in session.execute(select(*SCAN_COLUMNS).where(Event.id.in_(ids)))}


def _selected(session: Session, flt: EventFilter, rows: list[Any]) -> set[int]:
    """Ids of the batch that pass the ``/events`` filters (the same SQL the event lists use)."""
    stmt = select(Event.id).where(Event.id >= rows[0].id, Event.id <= rows[-1].id)
    return set(session.scalars(event_queries.apply_filter(stmt, flt)))


@dataclass
class Scan:
    rule: RuleDef
    flt: EventFilter
    limit: int
    depth_limit: int

    @property
    def looked_at(self) -> frozenset[str]:
        return _looked_at(self.rule)

    @property
    def folded(self) -> frozenset[str]:
        """The stream types whose states the action may read: only those are folded as the scan goes."""
        action = rule_registry.actions().get(self.rule.action.name)
        needs = action.needs(self.rule.action.params) if action is not None else frozenset()
        return frozenset(({"sprint", "task", "session"} if "entity" in needs else set())
                         | ({"sprint", "task"} if "sprint" in needs else set()))


def _sketch(row: Any, wanted: frozenset[str]) -> dict[str, Any]:
    """Enough of the envelope for the trigger's conditions: JSON decoded only where they look."""
    seen: dict[str, Any] = {"id": row.id, "event_id": row.event_id, "type": row.type, "sequence": row.sequence,
                            "entity": {"type": row.entity_type, "id": row.entity_id, "code": row.entity_code},
                            "actor": row.actor, "correlation_id": row.correlation_id,
                            "causation_id": row.causation_id, "session_key": row.session_key,
                            "priority": row.priority}
    for name in wanted - HEAVY:
        if name in RAW:
            seen[name] = _json(getattr(row, name)) or ({} if name != "correlation_chain" else [])
        elif name in ("timestamp", "archived_at"):
            seen[name] = iso(row.emitted_at if name == "timestamp" else row.archived_at)
    return seen


def _looked_at(rule: RuleDef) -> frozenset[str]:
    """The top-level envelope fields a trigger's conditions read."""
    return frozenset("changes" if c.op in ("changed_to", "changed_from") else c.path.split(".")[0]
                     for c in rule.trigger.conditions)


def _candidates(scan: Scan, rows: list[Any], chosen: set[int]) -> list[int]:
    """Events of the batch whose trigger matches: conditions read the event alone, so this is decided
    before folding, from the light columns (all of them when a condition looks at a heavy field)."""
    pattern = _Trigger(scan.rule.trigger.type)
    typed = [r for r in rows if r.id in chosen and pattern.matches({"type": r.type})]
    if scan.looked_at & HEAVY:
        return [r.id for r in typed]
    return [r.id for r in typed if evaluate_rules(_sketch(r, scan.looked_at), [scan.rule], depth=r.causation_depth,
                                                  depth_limit=scan.depth_limit)]


def _judge(scan: Scan, states: CachedStates, row: Any, page: Page) -> None:
    seen = _envelope(row)
    matches = evaluate_rules(seen, [scan.rule], depth=row.causation_depth, depth_limit=scan.depth_limit)
    action = rule_registry.actions().get(scan.rule.action.name)
    outcome, effects = "unknown_action", []
    if matches[0].verdict == Verdict.LOOP:
        outcome = RunStatus.LOOP
    elif action is not None:
        planned, _ = rule_facts.plan_as_of(states, action, scan.rule.action.params, seen)
        effects = [effect.describe() for effect in planned]
        outcome = "would_apply" if effects else "nothing_to_do"
    page.effects.update(effect["effect"] for effect in effects)
    if effects:
        page.applying.append(row.id)
    page.items.append({"event": seen, "conditions": scan.rule.trigger.explain(seen), "effects": effects,
                       "outcome": outcome})


def _scan(session: Session, scan: Scan, after: int, last: int) -> Page:
    states, page = CachedStates(session), Page(last_id=after)
    folded = scan.folded
    for rows in _batches(session, after, last):
        judged = _full_rows(session, _candidates(scan, rows, _selected(session, scan.flt, rows)))
        for row in rows:
            if row.entity_type in folded:
                states.advance(row.entity_type, row.entity_id, row.sequence, row.type, row.changes)
            page.scanned, page.last_id = page.scanned + 1, row.id
            if row.id in judged:
                _judge(scan, states, judged[row.id], page)
                if len(page.items) >= scan.limit:
                    return page
            if page.scanned >= SCAN_BUDGET:
                return page
    return page


def _actual(session: Session, rule: RuleDef, first: int, last: int, page: Page) -> dict[str, Any]:
    """What enabled rules really did on the events this page scanned (``automation_rule_runs``)."""
    stmt = (select(Rule.name, RuleRun.status, func.count()).join(Rule, Rule.id == RuleRun.rule_id)
            .where(RuleRun.event_id > first, RuleRun.event_id <= last).group_by(Rule.name, RuleRun.status))
    by_rule: dict[str, dict[str, int]] = {}
    for name, status, n in session.execute(stmt):
        by_rule.setdefault(name, {})[status] = n
    actual: dict[str, Any] = {"runs": sum(sum(s.values()) for s in by_rule.values()), "by_rule": by_rule}
    if rule.id:
        applied = set(session.scalars(select(RuleRun.event_id).where(
            RuleRun.rule_id == rule.id, RuleRun.status.in_((RunStatus.SUCCEEDED, RunStatus.DELIVERING, RunStatus.UNDONE)),
            RuleRun.event_id > first, RuleRun.event_id <= last)))
        would = set(page.applying)
        actual["would_apply_but_did_not"] = sorted(would - applied)[:DIFFERENCES_SHOWN]
        actual["applied_but_would_not_now"] = sorted(applied - would)[:DIFFERENCES_SHOWN]
    return actual


def backtest(rule: RuleDef, flt: EventFilter, after: int, limit: int, uow: UnitOfWork,
             depth_limit: int) -> dict[str, Any]:
    """One page of the backtest; writes nothing (a read-only unit of work, rolled back)."""
    with uow:
        session = uow.session
        first, last = _window(session, flt)
        start = max(after, first - 1) if first else last
        page = _scan(session, Scan(rule, flt, limit, depth_limit), start, last)
        done = page.last_id >= last
        summary = {"events_scanned": page.scanned, "matches": len(page.items),
                   "would_apply": len(page.applying), "effects_by_type": dict(page.effects),
                   "scanned_from_id": start + 1 if page.scanned else None,
                   "scanned_through_id": page.last_id if page.scanned else None,
                   "window_last_id": last or None,
                   "actual": _actual(session, rule, start, page.last_id, page)}
        return {"rule": {"id": rule.id or None, "name": rule.name}, "summary": summary, "items": page.items,
                "next_id": None if done else page.last_id}
