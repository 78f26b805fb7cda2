"""Reads for backtesting: the log in id order, hot and archived rows as one, at the speed of the driver.

A backtest folds every event of its window and judges the few whose type can
trigger the rule, so the scan reads narrow rows: ids, type, stream and
sequence for all, ``changes`` (as JSON text, decoded by the caller only when it
needs it) for the streams it folds and the events it may judge, and a flag the
database computes for "type matches the trigger and the ``/events`` filters
hold". Rows come straight off the DBAPI cursor as tuples: no ORM objects, no
type processing (every scanned column is an int or a string). The full envelope
is read afterwards, by id, for the events a rule actually matched.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Text, and_, case, cast, false, func, or_, select, true, union_all
from sqlalchemy.orm import Session

from app.domain.event_filter import EventFilter
from app.store import event_queries
from app.store.archive_reads import EVENTS, in_archive
from app.store.tables import Rule, RuleRun

BATCH = 10_000
DbSession = Session  # what services hold of a unit of work's session, without importing SQLAlchemy
# Positions in a scanned row; the columns named in ``ScanSpec.extra`` follow ``JUDGED``.
ID, TYPE, ENTITY_TYPE, ENTITY_ID, SEQUENCE, ACTOR, DEPTH, CHANGES, JUDGED = range(9)
# Plain text columns a trigger condition may read straight from the scan (the envelope's names).
LIGHT_EXTRA = ("event_id", "entity_code", "correlation_id", "causation_id", "session_key", "priority")
# The columns of a full envelope; JSON as text, decoded by the caller.
JSON_COLUMNS = ("correlation_chain", "changes", "data")
FULL_COLUMNS = tuple(cast(c, Text).label(c.key) if c.key in JSON_COLUMNS else c
                     for c in EVENTS.columns if c.key != "hash_scheme")


@dataclass(frozen=True)
class ScanSpec:
    """What a scan reads: the trigger's type pattern, the filters, and the stream types it folds."""

    trigger_type: str
    flt: EventFilter
    folded: frozenset[str] = frozenset()
    extra: tuple[str, ...] = ()
    judged_changes: bool = True  # do the conditions read ``changes`` of the events they judge?


def _judged(spec: ScanSpec) -> ColumnElement[bool]:
    """Type matches the trigger and the ``/events`` filters hold (the same SQL the event lists use)."""
    clause = event_queries.apply_filter(select(EVENTS.c.id), spec.flt).whereclause
    typed = event_queries.type_condition(EVENTS.c.type, spec.trigger_type)
    return typed if clause is None else and_(typed, clause)


def _scan_statement(spec: ScanSpec, after: int, last: int, size: int) -> Any:
    c, judged = EVENTS.c, _judged(spec)
    wanted = or_(*([c.entity_type.in_(sorted(spec.folded))] if spec.folded else []),
                 *([judged] if spec.judged_changes else []), false())
    columns = (c.id, c.type, c.entity_type, c.entity_id, c.sequence, c.actor, c.causation_depth,
               case((wanted, cast(c.changes, Text)), else_=None).label("changes"),
               case((judged, true()), else_=false()).label("judged"), *(c[name] for name in spec.extra))
    hot = select(*columns).where(c.id > after, c.id <= last).order_by(c.id).limit(size)
    # each limited branch as a subquery (SQLite allows no ORDER BY/LIMIT inside a compound);
    # PostgreSQL reads both id ranges from their indexes and stops after ``size`` rows
    union = union_all(*(select(branch.subquery()) for branch in (hot, in_archive(hot))))
    return union.order_by(union.selected_columns.id).limit(size)


class BacktestReads:
    """Everything a backtest reads, over one read-only session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def window(self, flt: EventFilter) -> tuple[int, int]:
        """The id range holding the window's events, hot or archived (ids, not timestamps, order the scan)."""
        stmt = select(func.min(EVENTS.c.id), func.max(EVENTS.c.id))
        if flt.start is not None:
            stmt = stmt.where(EVENTS.c.emitted_at >= flt.start)
        if flt.end is not None:
            stmt = stmt.where(EVENTS.c.emitted_at < flt.end)
        ends = [self.session.execute(s).one() for s in (stmt, in_archive(stmt))]
        firsts = [int(first) for first, _ in ends if first is not None]
        lasts = [int(last) for _, last in ends if last is not None]
        return (min(firsts, default=0), max(lasts, default=0))

    def batches(self, spec: ScanSpec, after: int, last: int, size: int = BATCH) -> Iterator[list[Sequence[Any]]]:
        """Rows with ``after < id <= last`` in id order, ``size`` at a time (keyset), as plain tuples."""
        connection = self.session.connection()
        while after < last:
            result = connection.execute(_scan_statement(spec, after, last, size))
            try:
                # the driver's tuples as they are: none of these columns needs processing
                rows = typing.cast(list[Sequence[Any]], result.cursor.fetchall())
            finally:
                result.close()
            if not rows:
                return
            yield rows
            after = rows[-1][ID]

    def full_rows(self, ids: Sequence[int]) -> dict[int, Any]:
        """Whole rows (JSON as text) of these events, wherever they live."""
        if not ids:
            return {}
        hot = select(*FULL_COLUMNS).where(EVENTS.c.id.in_(sorted(ids)))
        connection = self.session.connection()
        found = {row.id: row for row in connection.execute(hot)}
        if len(found) < len(set(ids)):
            found.update((row.id, row) for row in connection.execute(in_archive(hot)))
        return found

    def rule(self, rule_id: int) -> Rule | None:
        return self.session.get(Rule, rule_id)

    def runs_by_rule(self, first: int, last: int) -> dict[str, dict[str, int]]:
        """Rule runs per rule name and status for trigger events with ``first < id <= last``."""
        stmt = (select(Rule.name, RuleRun.status, func.count()).join(Rule, Rule.id == RuleRun.rule_id)
                .where(RuleRun.event_id > first, RuleRun.event_id <= last).group_by(Rule.name, RuleRun.status))
        by_rule: dict[str, dict[str, int]] = {}
        for name, status, n in self.session.execute(stmt):
            by_rule.setdefault(name, {})[status] = n
        return by_rule

    def applied(self, rule_id: int, statuses: Sequence[str], first: int, last: int) -> set[int]:
        """Trigger events with ``first < id <= last`` on which this rule ran with one of these statuses."""
        return set(self.session.scalars(select(RuleRun.event_id).where(
            RuleRun.rule_id == rule_id, RuleRun.status.in_(statuses),
            RuleRun.event_id > first, RuleRun.event_id <= last)))

