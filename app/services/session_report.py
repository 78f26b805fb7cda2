"""``GET /sessions/{key}/report``: what a session did, what it was refused, and what it set off.

One snapshot (``session_queries.one_snapshot``) and one bound on the log
(``as_of_event_id``, carried by every cursor), so every page of every list
describes the same moment. Lists that grow with the session are keyset pages:
``entities``, ``refused``, ``blast_radius.items`` and ``blast_radius.entities``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from app.domain import forensics as fx
from app.domain.actors import actor_kind, by_actor_kind
from app.domain.clock import Clock, as_utc, iso
from app.domain.errors import NotFound
from app.store import session_queries as sq
from app.store.tables import AgentSession
from app.store.uow import UnitOfWork

Page = dict[str, Any]


def report(key: str, cursor: str | None, limit: int, uow: UnitOfWork, clock: Clock) -> dict[str, Any]:
    """The whole report; ``cursor`` (a ``next`` of any list) continues that list at the same snapshot."""
    position = fx.decode_cursor(cursor)
    afters = {position[0]: position[2]} if position else {}
    with uow:
        session = uow.session
        sq.one_snapshot(session)
        upto = position[1] if position else sq.log_head(session)
        row = sq.session_row(session, key)
        counted = sq.session_counts(session, key, upto)
        if row is None and not counted.counts:
            raise NotFound(f"no agent session with key {key!r}")
        caused = fx.prune_compensations(sq.caused(session, key, upto, with_changes=False), key)
        page = _Pager(upto, limit, afters)
        return {
            "session": _session_part(row, key, counted.first, counted.last, clock),
            "as_of_event_id": upto,
            "events": _event_counts(counted.counts),
            "entities": _entities(session, key, upto, row, page),
            "refused": _refused(session, key, upto, page),
            "blast_radius": _blast_radius(session, key, upto, caused, page),
            "activity": _activity(counted.counts),
        }


class _Pager:
    """Where each list starts, and the cursor that continues it."""

    def __init__(self, upto: int, limit: int, afters: dict[str, int]) -> None:
        self.upto, self.limit, self.afters = upto, limit, afters

    def after(self, section: str) -> int:
        return self.afters.get(section, 0)

    def body(self, section: str, total: int, items: list[Any], last_key: Callable[[Any], int],
             more: bool) -> Page:
        following = fx.encode_cursor(section, self.upto, last_key(items[-1])) if more and items else None
        return {"total": total, "items": items, "next": following}


def _session_part(row: AgentSession | None, key: str, first: datetime | None, last: datetime | None,
                  clock: Clock) -> dict[str, Any]:
    part: dict[str, Any] = {"session_key": key, "agent_id": None, "status": None, "started_at": None,
                            "resumed_at": None, "ended_at": None, "duration_seconds": None,
                            "first_event_at": iso(first), "last_event_at": iso(last)}
    if row is not None:
        started = as_utc(row.started_at)
        ended = as_utc(row.ended_at) if row.status == "ended" and row.ended_at else None
        part |= {"agent_id": row.agent_id, "status": row.status, "started_at": iso(started),
                 "resumed_at": iso(row.resumed_at), "ended_at": iso(row.ended_at),
                 "duration_seconds": round(((ended or clock()) - started).total_seconds(), 6)}
    return part


def _event_counts(counts: Counter[tuple[str, str, str]]) -> dict[str, Any]:
    by_type: Counter[str] = Counter()
    by_actor: Counter[str] = Counter()
    for (event_type, actor, _minute), n in counts.items():
        by_type[event_type] += n
        by_actor[actor] += n
    return {"total": sum(counts.values()), "by_type": dict(sorted(by_type.items())),
            "by_actor": dict(sorted(by_actor.items())), "by_actor_kind": by_actor_kind(by_actor)}


def _entities(session: Any, key: str, upto: int, row: AgentSession | None, page: _Pager) -> Page:
    total, groups = sq.entity_groups(session, key, upto, row.id if row else None, page.after("entities"),
                                     page.limit + 1)
    shown = groups[:page.limit]
    events = sq.entity_events(session, key, upto, [(g.entity_type, g.entity_id) for g in shown])
    by_entity: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for event in events:
        by_entity.setdefault((event["entity"]["type"], event["entity"]["id"]), []).append(event)
    items = [{"entity": {"type": g.entity_type, "id": g.entity_id, "code": g.entity_code},
              "events": int(g.events), "first_event_id": g.first_id, "last_event_id": g.last_id,
              "changes": fx.net_changes(by_entity.get((g.entity_type, g.entity_id), []))} for g in shown]
    return page.body("entities", total, items, lambda i: i["first_event_id"], len(groups) > page.limit)


def _refused(session: Any, key: str, upto: int, page: _Pager) -> Page:
    total, rows = sq.refused(session, key, upto, page.after("refused"), page.limit + 1)
    items = [{"id": e["id"], "event_id": e["event_id"], "type": e["type"], "entity": e["entity"],
              "actor": e["actor"], "timestamp": iso(e["timestamp"]), "status": e["data"].get("status"),
              "detail": e["data"].get("detail"), "errors": e["data"].get("errors") or {}}
             for e in rows[:page.limit]]
    return page.body("refused", total, items, lambda i: i["id"], len(rows) > page.limit)


def _blast_radius(session: Any, key: str, upto: int, caused: list[dict[str, Any]], page: _Pager) -> Page:
    """Counts over every caused event; the events and the entities they changed as two pages."""
    ordered = sorted(caused, key=lambda e: e["id"])
    events, more_events = _from(ordered, page.after("caused"), page.limit, lambda e: e["id"])
    streams = _streams(ordered)
    entities, more_entities = _from(streams, page.after("caused_entities"), page.limit, lambda es: es[0]["id"])
    changes = sq.changes_of(session, [e["id"] for e in events] + [e["id"] for es in entities for e in es])
    items = [_caused_item(e, changes.get(e["id"], {})) for e in events]
    entity_items = [_entity_item(es, [{"changes": changes.get(e["id"], {})} for e in es]) for es in entities]
    return {
        **_caused_counts(caused),
        "rule_runs": _runs(sq.rule_runs(session, key, upto, [e["id"] for e in caused])),
        "items": items,
        "next": page.body("caused", len(caused), items, lambda i: i["id"], more_events)["next"],
        "entities": page.body("caused_entities", len(streams), entity_items, lambda i: i["first_event_id"],
                              more_entities),
    }


def _from(rows: list[Any], after: int, limit: int, key: Callable[[Any], int]) -> tuple[list[Any], bool]:
    """The page of ``rows`` (in key order) after ``after``, and whether more follow it."""
    rest = [r for r in rows if key(r) > after]
    return rest[:limit], len(rest) > limit


def _streams(ordered: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Caused stream events grouped by entity, entities in the order of their first caused event."""
    grouped: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for event in ordered:
        if event["sequence"] is not None:
            grouped.setdefault((event["entity"]["type"], event["entity"]["id"]), []).append(event)
    return list(grouped.values())


def _caused_counts(caused: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "events": len(caused),
        "max_depth": max((e["depth"] for e in caused), default=0),
        "by_depth": {str(d): n for d, n in sorted(Counter(e["depth"] for e in caused).items())},
        "by_type": fx.count_by(caused, "type"),
        "by_actor_kind": dict(sorted(Counter(actor_kind(e["actor"]) for e in caused).items())),
    }


def _runs(runs: Counter[tuple[str, str]]) -> dict[str, Any]:
    by_rule: dict[str, dict[str, int]] = {}
    for (rule, status), n in sorted(runs.items()):
        by_rule.setdefault(rule, {})[status] = n
    return {"total": sum(runs.values()), "by_rule": by_rule}


def _caused_item(event: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    return {"id": event["id"], "event_id": event["event_id"], "type": event["type"], "actor": event["actor"],
            "actor_kind": actor_kind(event["actor"]), "entity": event["entity"],
            "timestamp": iso(event["timestamp"]), "causation_id": event["causation_id"],
            "depth": event["depth"], "changes": changes}


def _entity_item(events: list[dict[str, Any]], changed: list[dict[str, Any]]) -> dict[str, Any]:
    """One entity's line: its events' span and the net change of their ``changed`` (same order)."""
    return {"entity": events[0]["entity"], "events": len(events), "first_event_id": events[0]["id"],
            "last_event_id": events[-1]["id"], "changes": fx.net_changes(changed)}


def _activity(counts: Counter[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """Events per UTC minute, oldest first; minutes without events are left out."""
    minutes: Counter[str] = Counter()
    for (_type, _actor, minute), n in counts.items():
        minutes[minute] += n
    return [{"minute": f"{label}:00.000000+00:00", "count": n} for label, n in sorted(minutes.items())]
