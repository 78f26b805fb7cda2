"""A stream row's pending UPDATE, sent inside the write's tail statement instead of by a flush.

A write changes its stream row (state fields, ``version``, ``last_hash``,
``updated_at``) and then appends events. Flushing the row is a round trip of
its own and a pass through the ORM's unit of work; on PostgreSQL the same
UPDATE rides in the tail statement as one more CTE (``event_tail``), and the
row is then marked clean as a flush would have left it.

Only the plain case takes this path: a persistent row whose changes are all
column values of its one table, in a session with nothing else to flush. A
changed relationship (its foreign key is only worked out by a flush), a new or
deleted object, or any other dirty row sends the write through
``Session.flush()`` as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Table, bindparam, inspect
from sqlalchemy.orm import ColumnProperty, Session
from sqlalchemy.orm.state import InstanceState
from sqlalchemy.sql.elements import BindParameter


@dataclass(frozen=True)
class RowUpdate:
    """``UPDATE table SET columns WHERE id = ident``, values by column name."""

    table: Table
    ident: int
    values: dict[str, Any]
    state: InstanceState[Any]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.values)

    def params(self) -> dict[str, Any]:
        return {"row_id": self.ident} | {f"row_{n}": value for n, value in enumerate(self.values.values())}

    def mark_flushed(self, session: Session) -> None:
        """The row as a flush leaves it: every attribute committed, not modified."""
        self.state._commit_all(self.state.dict, session.identity_map)


def pending(session: Session, row: Any) -> RowUpdate | None:
    """The row's UPDATE when a flush would send only that; None when the session needs a real flush."""
    if row is None or session.new or session.deleted:
        return None
    state: InstanceState[Any] = inspect(row)
    if not state.persistent or len(state.mapper.tables) != 1:
        return None
    if any(other is not row for other in session.dirty):
        return None
    values: dict[str, Any] = {}
    for key in list(state.committed_state):  # the attributes set since the row was loaded (or flushed)
        prop, history = state.mapper.attrs[key], state.attrs[key].history
        if not history.has_changes():
            continue
        if not isinstance(prop, ColumnProperty) or len(prop.columns) != 1 or not history.added:
            return None  # a relationship, or an attribute set back to unloaded: the flush knows
        values[prop.columns[0].name] = history.added[0]
    if not values:
        return None
    table, identity = state.mapper.local_table, state.identity
    assert isinstance(table, Table) and identity is not None  # persistent: it has a primary key
    return RowUpdate(table, int(identity[0]), values, state)


@cache
def update_cte(table: Table, columns: tuple[str, ...]) -> str:
    """The CTE's SQL, typed by the table's columns (``binds`` gives the parameters' types)."""
    sets = ", ".join(f'"{name}" = :row_{n}' for n, name in enumerate(columns))
    return f'row_update AS (UPDATE "{table.name}" SET {sets} WHERE id = :row_id RETURNING id)'


@cache
def binds(table: Table, columns: tuple[str, ...]) -> tuple[BindParameter[Any], ...]:
    """Bind parameters carrying each column's type, so values are converted as a flush would."""
    return tuple(bindparam(f"row_{n}", type_=table.c[name].type) for n, name in enumerate(columns))
