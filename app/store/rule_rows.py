"""``uow.rules``: rule rows and their runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.store.tables import Rule, RuleRun


class NameTaken(Exception):
    """Another rule has this name (the UNIQUE constraint said so)."""


class RuleRepository:
    def __init__(self, db: Session) -> None:
        self._db = db

    @property
    def database(self) -> str:
        """Which database these rows live in (code rules are seeded once per database and process)."""
        return self._db.get_bind().engine.url.render_as_string()

    def names(self) -> set[str]:
        return set(self._db.scalars(select(Rule.name)))

    def insert_missing(self, values: list[dict[str, Any]]) -> None:
        """Insert-if-missing by unique name: concurrent seeders never fail on each other."""
        insert = pg_insert if self._db.get_bind().dialect.name == "postgresql" else sqlite_insert
        self._db.execute(insert(Rule).values(values).on_conflict_do_nothing(index_elements=["name"]))

    def flush(self) -> None:
        self._db.flush()

    def get(self, rule_id: int, *, lock: bool = False) -> Rule | None:
        return self._db.get(Rule, rule_id, with_for_update=lock)

    def enabled(self) -> list[Rule]:
        return list(self._db.scalars(select(Rule).where(Rule.enabled.is_(True)).order_by(Rule.id)))

    def named(self, name: str) -> bool:
        return self._db.scalars(select(Rule.id).where(Rule.name == name)).first() is not None

    def page(self, filters: dict[str, Any], after_id: int, limit: int) -> list[Rule]:
        stmt = select(Rule).where(Rule.id > after_id)
        for name in ("enabled", "builtin"):
            if name in filters:
                stmt = stmt.where(getattr(Rule, name).is_(filters[name]))
        return list(self._db.scalars(stmt.order_by(Rule.id).limit(limit)))

    def add(self, fields: dict[str, Any], now: datetime) -> Rule:
        row = Rule(**fields, builtin=False, created_at=now, updated_at=now)
        self._db.add(row)
        try:
            self._db.flush()
        except IntegrityError:
            raise NameTaken from None
        return row

    def delete(self, row: Rule) -> None:
        self._db.delete(row)

    def run(self, rule_id: int, event_id: int) -> RuleRun | None:
        return self._db.scalars(select(RuleRun).where(RuleRun.rule_id == rule_id,
                                                      RuleRun.event_id == event_id)).first()

    def runs_of_event(self, event_id: int) -> list[RuleRun]:
        """Every run recorded for the event, whatever its status."""
        return list(self._db.scalars(select(RuleRun).where(RuleRun.event_id == event_id)))

    def runs_of_events(self, event_ids: list[int]) -> dict[int, dict[int, RuleRun]]:
        """``{event id: {rule id: run}}`` for every run recorded for these events: a batch's one read."""
        found: dict[int, dict[int, RuleRun]] = {}
        if event_ids:
            for run in self._db.scalars(select(RuleRun).where(RuleRun.event_id.in_(event_ids))):
                found.setdefault(run.event_id, {})[run.rule_id] = run
        return found

    def get_run(self, run_id: int, *, lock: bool = False) -> RuleRun | None:
        return self._db.get(RuleRun, run_id, with_for_update=lock)

    def add_run(self, rule_id: int, event_id: int, now: datetime) -> RuleRun:
        run = RuleRun(rule_id=rule_id, event_id=event_id, attempts=0, created_at=now)
        self._db.add(run)
        return run

    def runs_page(self, filters: dict[str, Any], event_id: int | None, after_id: int,
                  limit: int) -> list[tuple[RuleRun, str]]:
        """Runs with their rule's name, oldest first."""
        stmt = select(RuleRun, Rule.name).join(Rule, Rule.id == RuleRun.rule_id).where(RuleRun.id > after_id)
        for name in ("rule_id", "status"):
            if name in filters:
                stmt = stmt.where(getattr(RuleRun, name) == filters[name])
        if event_id is not None:
            stmt = stmt.where(RuleRun.event_id == event_id)
        return [(run, name) for run, name in self._db.execute(stmt.order_by(RuleRun.id).limit(limit))]

    def rule_name(self, rule_id: int) -> str:
        row = self._db.get(Rule, rule_id)
        return row.name if row is not None else ""
