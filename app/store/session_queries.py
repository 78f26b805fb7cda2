"""What one agent session did and set off, read from the log through its indexes.

* the session's events: ``(session_key, id)``;
* what they caused, recursively: ``causation_id`` (a recursive CTE, one index
  probe per parent);
* an entity's later events: ``(entity_type, entity_id, sequence)``.

Every read is bounded by ``upto`` (an event id): ids become visible in commit
order, so ``id <= upto`` is the same prefix of the log on every page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Select, and_, any_, bindparam, func, literal, or_, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, aliased

from app.domain.paging import BIGINT_ID_MAX
from app.store.rollups import time_label
from app.store.tables import AgentSession, Event, Rule, RuleRun

MAX_DEPTH = 64
REFUSED_TYPES = ("orchestration.task.validation_failed", "orchestration.sprint.validation_failed")
# ``data`` is not read whole: only what says whether an event is a revert's compensation.
LIGHT = (Event.id, Event.event_id, Event.type, Event.entity_type, Event.entity_id, Event.entity_code,
         Event.sequence, Event.actor, Event.emitted_at, Event.causation_id, Event.session_key,
         Event.changes, Event.data["reason"].as_string().label("reason"),
         Event.data["session_key"].as_string().label("reverts"))
EntityKey = tuple[str, int]


def one_snapshot(session: Session) -> None:
    """Several statements, one snapshot (PostgreSQL REPEATABLE READ; SQLite's read
    transaction is one already). Call before the first statement."""
    if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def log_head(session: Session) -> int:
    return int(session.scalar(select(func.max(Event.id))) or 0)


def session_row(session: Session, key: str) -> AgentSession | None:
    return session.scalars(select(AgentSession).where(AgentSession.session_key == key)).unique().first()


def light(row: Any) -> dict[str, Any]:
    (id_, event_id, type_, entity_type, entity_id, code, sequence, actor, at, cause, key, changes, reason,
     reverts) = row[:14]
    return {"id": id_, "event_id": event_id, "type": type_,
            "entity": {"type": entity_type, "id": entity_id, "code": code},
            "sequence": sequence, "actor": actor, "timestamp": at, "causation_id": cause, "session_key": key,
            "changes": changes or {}, "data": {"reason": reason, "session_key": reverts} if reason else {}}


def _of_session(key: str, upto: int) -> Any:
    return and_(Event.session_key == key, Event.id <= upto)


def _touches(key: str, upto: int, own_id: int | None) -> Any:
    """The session's stream events on entities other than its own session stream."""
    own = and_(Event.entity_type == "session", Event.entity_id == (own_id or 0))
    return and_(_of_session(key, upto), Event.sequence.is_not(None), ~own)


@dataclass(frozen=True)
class SessionCounts:
    """The session's events counted once: by (type, actor, UTC minute label), first and last instant."""

    counts: Counter[tuple[str, str, str]]
    first: Any
    last: Any


def session_counts(session: Session, key: str, upto: int) -> SessionCounts:
    """One grouped scan of the session's index range gives every count the report shows."""
    label = time_label(session, Event.emitted_at, "minute")
    rows = session.execute(select(Event.type, Event.actor, label, func.count(), func.min(Event.emitted_at),
                                  func.max(Event.emitted_at))
                           .where(_of_session(key, upto)).group_by(Event.type, Event.actor, label))
    counts: Counter[tuple[str, str, str]] = Counter()
    firsts, lasts = [], []
    for event_type, actor, minute, n, first, last in rows:
        counts[(event_type, actor, str(minute))] += int(n)
        firsts.append(first)
        lasts.append(last)
    return SessionCounts(counts, min(firsts, default=None), max(lasts, default=None))


def entity_groups(session: Session, key: str, upto: int, own_id: int | None, after: int,
                  limit: int) -> tuple[int, list[Any]]:
    """(how many entities, one page of them) ordered by the session's first event on each;
    one aggregation, the total counted over it by a window."""
    grouped = (select(Event.entity_type, Event.entity_id, Event.entity_code,
                      func.min(Event.id).label("first_id"), func.max(Event.id).label("last_id"),
                      func.count().label("events"))
               .where(_touches(key, upto, own_id))
               .group_by(Event.entity_type, Event.entity_id, Event.entity_code).subquery())
    counted = select(grouped, func.count().over().label("total")).subquery()
    page = list(session.execute(select(counted).where(counted.c.first_id > after)
                                .order_by(counted.c.first_id).limit(limit)))
    if page:
        return int(page[0].total), page
    return int(session.scalar(select(func.count()).select_from(grouped)) or 0), page


def entity_events(session: Session, key: str, upto: int, keys: Iterable[EntityKey]) -> list[dict[str, Any]]:
    """The session's stream events on the given entities, oldest first."""
    wanted = sorted(set(keys))
    if not wanted:
        return []
    stmt = (select(*LIGHT).where(_of_session(key, upto), Event.sequence.is_not(None),
                                 tuple_(Event.entity_type, Event.entity_id).in_(wanted)).order_by(Event.id))
    return [light(r) for r in session.execute(stmt)]


def session_changes(session: Session, key: str, upto: int, own_id: int | None) -> list[dict[str, Any]]:
    """Every stream event of the session outside its own stream, oldest first (revert plans read them all)."""
    return [light(r) for r in session.execute(select(*LIGHT).where(_touches(key, upto, own_id)).order_by(Event.id))]


def refused(session: Session, key: str, upto: int, after: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """``validation_failed`` events of the session (they stand outside any stream)."""
    where = and_(_of_session(key, upto), Event.sequence.is_(None), Event.type.in_(REFUSED_TYPES))
    total = session.scalar(select(func.count()).where(where))
    rows = session.execute(select(*LIGHT, Event.data).where(where, Event.id > after).order_by(Event.id).limit(limit))
    return int(total or 0), [light(r) | {"data": r.data or {}} for r in rows]


def last_event(session: Session, key: str, upto: int, exclude_type: str) -> dict[str, Any] | None:
    stmt = select(*LIGHT).where(_of_session(key, upto), Event.type != exclude_type)
    row = session.execute(stmt.order_by(Event.id.desc()).limit(1)).first()
    return light(row) if row is not None else None


def caused(session: Session, key: str, upto: int, *, with_changes: bool = True) -> list[dict[str, Any]]:
    """Every event caused, recursively through ``causation_id``, by the session's events,
    outside the session itself; each with its ``depth`` (1: caused by a session event).
    Parents come before their children. Without ``with_changes`` their ``changes`` are
    left unread (``None``): a report reads them for one page only (``changes_of``)."""
    root, child = aliased(Event), aliased(Event)
    outside = or_(child.session_key.is_(None), child.session_key != key)
    base = (select(child.id, child.event_id, literal(1).label("depth"))
            .join(root, child.causation_id == root.event_id)
            .where(root.session_key == key, root.id <= upto, child.id <= upto, outside))
    tree = base.cte("tree", recursive=True)
    step = aliased(Event)
    tree = tree.union_all(
        select(step.id, step.event_id, (tree.c.depth + 1).label("depth"))
        .join(tree, step.causation_id == tree.c.event_id)
        .where(step.id <= upto, tree.c.depth < MAX_DEPTH,
               or_(step.session_key.is_(None), step.session_key != key)))
    columns = LIGHT if with_changes else tuple(literal(None).label("changes") if c is Event.changes else c
                                               for c in LIGHT)
    stmt: Select[Any] = (select(*columns, tree.c.depth).join(tree, Event.id == tree.c.id)
                         .order_by(tree.c.depth, Event.id))
    return [light(r) | {"depth": int(r.depth)} for r in session.execute(stmt)]


def changes_of(session: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    return {i: c or {} for i, c in session.execute(select(Event.id, Event.changes).where(_among(session, Event.id, ids)))}


def _among(session: Session, column: Any, ids: list[int]) -> Any:
    """``column IN ids``; on PostgreSQL one array parameter (``= ANY``), not thousands of them."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(BigInteger)))
    return column.in_(ids)


def stream_after(session: Session, entity: EntityKey, after_id: int) -> list[dict[str, Any]]:
    """An entity's stream events after a given event id, oldest first."""
    stmt = select(*LIGHT).where(Event.entity_type == entity[0], Event.entity_id == entity[1],
                                Event.sequence.is_not(None), Event.id > after_id)
    return [light(r) for r in session.execute(stmt.order_by(Event.sequence))]


def rule_runs(session: Session, key: str, upto: int, caused_ids: list[int]) -> Counter[tuple[str, str]]:
    """Rule runs triggered by the session's events or by what they caused: (rule, status) → n."""
    triggers = or_(RuleRun.event_id.in_(select(Event.id).where(_of_session(key, upto))),
                   _among(session, RuleRun.event_id, caused_ids or [BIGINT_ID_MAX]))
    stmt = (select(Rule.name, RuleRun.status, func.count()).join(Rule, Rule.id == RuleRun.rule_id)
            .where(triggers).group_by(Rule.name, RuleRun.status))
    return Counter({(name, status): int(n) for name, status, n in session.execute(stmt)})
