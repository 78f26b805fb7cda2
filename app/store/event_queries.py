"""Composable scopes over the event log; each narrows a ``Select`` of events.

They combine freely, so ``/events``, the correlation, session and entity views,
timeline and statistics share one filter vocabulary. The PostgreSQL index behind
each (migrations 0001 and 0002):

* ``by_correlation``: ``correlation_id`` btree OR the GIN ``jsonb_path_ops`` index
  on ``correlation_chain`` (a BitmapOr);
* ``by_session``: ``(session_key, id)``, so a page is an ordered index range;
* ``by_entity_stream`` / ``by_entity_chain``: ``(entity_type, entity_id, sequence)``;
* ``by_date_range``: ``emitted_at``; ``by_actor``: ``actor``; exact ``by_type``: ``type``;
* ``entity_code``: ``(entity_type, entity_code)``, or ``(entity_code, id)`` alone.

A type *prefix* (``orchestration.task.*``) narrows the rows another scope found.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Select, and_, exists, false, func, literal, or_, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from app.domain.actors import NAMED_KINDS, OTHER, kind_prefix
from app.domain.event_filter import EventFilter
from app.domain.paging import INT_ID_MAX
from app.domain.stream_types import has_rows
from app.store.stream_registry import stored
from app.store.tables import AgentSession, Event, Task


class prefix_match(FunctionElement[bool]):
    """``column`` starts with a literal prefix, case-sensitively on every backend.

    PostgreSQL: ``LIKE 'prefix%'`` (served by a ``varchar_pattern_ops`` index
    whatever the database collation). SQLite: ``GLOB 'prefix*'``, because its
    ``LIKE`` ignores case. Build it with :func:`type_condition`.
    """

    type = Boolean()
    inherit_cache = True
    name = "prefix_match"
    _is_implicitly_boolean = True


@compiles(prefix_match)
def _prefix_like(element: prefix_match, compiler: Any, **kw: Any) -> str:
    column, like, _glob = element.clauses
    return f"{compiler.process(column, **kw)} LIKE {compiler.process(like, **kw)} ESCAPE '\\'"


@compiles(prefix_match, "sqlite")
def _prefix_glob(element: prefix_match, compiler: Any, **kw: Any) -> str:
    column, _like, glob = element.clauses
    return f"{compiler.process(column, **kw)} GLOB {compiler.process(glob, **kw)}"


def type_condition(column: Any, pattern: str) -> ColumnElement[bool]:
    """An exact type, or a prefix ending in ``.*``; for the log and its rollups alike."""
    if not pattern.endswith(".*"):
        return column == pattern  # type: ignore[no-any-return]
    return starts_with(column, pattern[:-1])


def starts_with(column: Any, prefix: str) -> ColumnElement[bool]:
    """``column`` begins with ``prefix`` (an index range on PostgreSQL and SQLite alike)."""
    like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    glob = "".join(f"[{c}]" if c in "*?[" else c for c in prefix) + "*"
    return prefix_match(column, literal(like), literal(glob))


def by_type(stmt: Select, pattern: str) -> Select:  # type: ignore[type-arg]
    return stmt.where(type_condition(Event.type, pattern))


def by_actor(stmt: Select, actor: str) -> Select:  # type: ignore[type-arg]
    return stmt.where(Event.actor == actor)


def actor_kind_condition(column: Any, kind: str) -> ColumnElement[bool]:
    """``user``/``agent``/``automation``: the actor's prefix; ``other``: none of those."""
    if kind == OTHER:
        return ~or_(*(starts_with(column, kind_prefix(k)) for k in NAMED_KINDS))
    return starts_with(column, kind_prefix(kind))


def by_session(stmt: Select, key: str) -> Select:  # type: ignore[type-arg]
    return stmt.where(Event.session_key == key)


def by_date_range(stmt: Select, start: datetime | None, end: datetime | None) -> Select:  # type: ignore[type-arg]
    """``start`` inclusive, ``end`` exclusive."""
    if start is not None:
        stmt = stmt.where(Event.emitted_at >= start)
    if end is not None:
        stmt = stmt.where(Event.emitted_at < end)
    return stmt


def by_entity(stmt: Select, entity_type: str | None, code: str | None) -> Select:  # type: ignore[type-arg]
    """An empty value filters nothing, as for every other filter (and the rollups)."""
    if entity_type:
        stmt = stmt.where(Event.entity_type == entity_type)
    if code:
        stmt = stmt.where(Event.entity_code == code)
    return stmt


def hot_only(stmt: Select, include_archived: bool) -> Select:  # type: ignore[type-arg]
    """The events table holds hot rows only; archived ones are added by
    ``archive_reads`` when a read includes them, so there is nothing to filter here."""
    return stmt


def correlation_condition(session: Session, correlation_id: str) -> ColumnElement[bool]:
    """The event's own ``correlation_id`` or any id in its ``correlation_chain``."""
    if session.get_bind().dialect.name == "postgresql":
        in_chain = type_coerce(Event.correlation_chain, JSONB).contains([correlation_id])
    else:
        members = func.json_each(Event.correlation_chain).table_valued("value")
        in_chain = exists(select(1).select_from(members).where(members.c.value == correlation_id))
    return or_(Event.correlation_id == correlation_id, in_chain)


def by_correlation(stmt: Select, session: Session, correlation_id: str) -> Select:  # type: ignore[type-arg]
    return stmt.where(correlation_condition(session, correlation_id))


def related_streams(session: Session, entity_type: str, entity_id: int) -> dict[str, set[int]]:
    """The entity plus related ones: a sprint's tasks and the sessions attached to
    the sprint or its tasks; a task's sprint and the sessions attached to the task."""
    streams: dict[str, set[int]] = {entity_type: {entity_id}}
    if entity_type == "sprint":
        task_ids = set(session.scalars(select(Task.id).where(Task.sprint_id == entity_id)))
        streams["task"] = task_ids
        attached = or_(AgentSession.sprint_id == entity_id, AgentSession.task_id.in_(task_ids))
        streams["session"] = set(session.scalars(select(AgentSession.id).where(attached)))
    elif entity_type == "task":
        sprint_id = session.scalar(select(Task.sprint_id).where(Task.id == entity_id))
        if sprint_id is not None:
            streams["sprint"] = {sprint_id}
        streams["session"] = set(
            session.scalars(select(AgentSession.id).where(AgentSession.task_id == entity_id))
        )
    return streams


def by_entity_stream(stmt: Select, entity_type: str, entity_id: int) -> Select:  # type: ignore[type-arg]
    """One entity's own stream (``validation_failed`` events included)."""
    return stmt.where(Event.entity_type == entity_type, Event.entity_id == entity_id)


def by_entity_chain(stmt: Select, session: Session,  # type: ignore[type-arg]
                    entity_type: str, entity_id: int) -> Select:  # type: ignore[type-arg]
    """The entity and its related streams; ids are resolved first so the plan is a
    union of index probes on ``(entity_type, entity_id)``."""
    conditions = [
        and_(Event.entity_type == kind, Event.entity_id.in_(sorted(ids)))
        for kind, ids in related_streams(session, entity_type, entity_id).items()
        if ids
    ]
    return stmt.where(or_(*conditions) if conditions else false())


def apply_filter(stmt: Select, flt: EventFilter) -> Select:  # type: ignore[type-arg]
    if flt.type:
        stmt = by_type(stmt, flt.type)
    stmt = by_entity(stmt, flt.entity_type, flt.entity_code)
    if flt.actor:
        stmt = by_actor(stmt, flt.actor)
    if flt.actor_kind:
        stmt = stmt.where(actor_kind_condition(Event.actor, flt.actor_kind))
    if flt.session_key:
        stmt = by_session(stmt, flt.session_key)
    stmt = by_date_range(stmt, flt.start, flt.end)
    return hot_only(stmt, flt.include_archived)


class pattern_range(FunctionElement[bool]):
    """``column`` equals a value, written as a range of the pattern operators (``~>=~``, ``~<=~``)
    on PostgreSQL, so a ``varchar_pattern_ops`` index serves it and the planner, not
    seeing a constant, keeps the column in the sort (see ``index_led``). Plain ``=`` on SQLite."""

    type = Boolean()
    inherit_cache = True
    name = "pattern_range"
    _is_implicitly_boolean = True


@compiles(pattern_range)
def _pattern_range(element: pattern_range, compiler: Any, **kw: Any) -> str:
    column, value = (compiler.process(c, **kw) for c in element.clauses)
    return f"({column} ~>=~ {value} AND {column} ~<=~ {value})"


@compiles(pattern_range, "sqlite")
def _pattern_equal(element: pattern_range, compiler: Any, **kw: Any) -> str:
    column, value = (compiler.process(c, **kw) for c in element.clauses)
    return f"{column} = {value}"


class pattern_order(FunctionElement[Any]):
    """``ORDER BY column USING ~<~`` on PostgreSQL: the order of a ``varchar_pattern_ops`` index."""

    inherit_cache = True
    name = "pattern_order"


@compiles(pattern_order)
def _pattern_order(element: pattern_order, compiler: Any, **kw: Any) -> str:
    return f"{compiler.process(next(iter(element.clauses)), **kw)} USING ~<~"


@compiles(pattern_order, "sqlite")
def _plain_order(element: pattern_order, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(next(iter(element.clauses)), **kw))


# Equality filters with a ``(column, id)`` index (0002, 0006), most selective first.
ORDERED_BY = ("session_key", "entity_code", "actor", "entity_type")


@dataclass(frozen=True)
class IndexLed:
    """A list filter arranged so PostgreSQL reads one index range in id order (see ``index_led``)."""

    rest: EventFilter
    conditions: tuple[ColumnElement[bool], ...] = ()
    lead: tuple[Any, ...] = ()


def index_led(flt: EventFilter) -> IndexLed:
    """A page of ``/events`` as an index range, never the log walked by id and filtered.

    The most selective equality filter with a ``(column, id)`` index is written as
    ``column >= v AND column <= v`` and leads the ``ORDER BY``: the same rows and the
    same order as ``column = v … ORDER BY id`` (the column is constant), but the
    planner cannot drop the constant column from the sort, so only that index yields
    the order and it reads that range, stopping after a page. A time range also
    bounds ``id`` by the smallest and largest id inside it (from the ``(emitted_at,
    id)`` index), so no page starts at the head of the log. An exact ``type`` with no
    other equality filter leads the same way through its ``varchar_pattern_ops``
    index, whose range and order are the pattern operators' (``pattern_range``).
    """
    rest, conditions, lead = flt, [], []
    for name in ORDERED_BY:
        value = getattr(flt, name)
        if value:
            column = getattr(Event, name)
            cleared: dict[str, Any] = {name: None}
            rest, conditions, lead = dataclasses.replace(flt, **cleared), [column >= value, column <= value], [column]
            break
    else:
        if flt.type and not flt.type.endswith(".*"):  # an exact type alone: its (type pattern_ops, id) index
            rest, conditions = dataclasses.replace(flt, type=None), [pattern_range(Event.type, flt.type)]
            lead = [pattern_order(Event.type)]
    # OFFSET 0 fences the window: a bare min(id)/max(id) is planned as a walk of the primary
    # key from one end filtering on time (the whole log for a recent window); fenced, it is
    # one range of the (emitted_at, id) index, exact whatever the order of ids and times.
    window = by_date_range(select(Event.id), flt.start, flt.end).offset(0).subquery("time_window")
    if flt.start is not None:
        conditions.append(Event.id >= select(func.min(window.c.id)).scalar_subquery())
    if flt.end is not None:
        conditions.append(Event.id <= select(func.max(window.c.id)).scalar_subquery())
    return IndexLed(rest, tuple(conditions), tuple(lead))


def keyset(stmt: Select, after_id: int, limit: int, *, fenced: bool = False,  # type: ignore[type-arg]
           lead: tuple[Any, ...] = ()) -> Select:  # type: ignore[type-arg]
    """Oldest first by id, after ``after_id`` (the caller bounds ``id`` by
    ``event_fence.visible_bound``, so ``id > cursor`` skips nothing).

    ``fenced`` is for scopes made of several index probes (a correlation, an
    entity chain): their matching ids are gathered first (a materialized CTE),
    then the page is taken from them. Without the fence the planner may walk the
    whole log in id order hoping to meet ``limit`` matches early; with it a page
    costs the size of the scope, never the size of the log.
    """
    stmt = stmt.where(Event.id > after_id)
    if not fenced:
        return stmt.order_by(*lead, Event.id).limit(limit)
    scope = stmt.with_only_columns(Event.id).cte("scope").prefix_with("MATERIALIZED")
    first = select(scope.c.id).order_by(scope.c.id).limit(limit)
    return select(Event).where(Event.id.in_(first)).order_by(Event.id)


def entity_id_for(session: Session, entity_type: str, code: str) -> int | None:
    """Any entity ever created, deleted ones included: their history stays readable."""
    if has_rows(entity_type):
        kind = stored(entity_type)
        return session.scalar(select(kind.model.id).where(getattr(kind.model, str(kind.declared.code_field)) == code))
    from app.store.archive_reads import first_of  # archived events name entities too

    by_code: int | None = first_of(session,
                       select(Event.entity_id).where(Event.entity_type == entity_type, Event.entity_code == code)
                       .limit(1))
    if by_code is None and code.isascii() and code.isdigit() and len(code) <= 10 and int(code) <= INT_ID_MAX:
        by_id: int | None = first_of(  # entities without a code (notifications, alerts) are named by id
            session,
            select(Event.entity_id).where(Event.entity_type == entity_type, Event.entity_id == int(code)).limit(1)
        )
        return by_id
    return by_code
