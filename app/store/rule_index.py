"""The enabled rules' triggers, cached per process and checked against a cheap version on every append.

The version is a text digest of ``(id, enabled, updated_at)`` of every rule,
computed by the database (``version_sql``). On PostgreSQL the append's tail
statement returns it, so a stale cache costs no extra round trip in the
common case: the caller compares, refreshes and fixes up (``event_tail``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.domain.errors import Invalid
from app.domain.rules import Trigger, parse_trigger
from app.store.tables import Rule

VERSION_SQL = {
    "postgresql": "(SELECT coalesce(string_agg(id::text || ':' || enabled::text || ':' || updated_at::text, ','"
                  " ORDER BY id), '') FROM automation_rules)",
    "sqlite": "(SELECT coalesce(group_concat(id || ':' || enabled || ':' || updated_at, ','), '')"
              " FROM (SELECT id, enabled, updated_at FROM automation_rules ORDER BY id))",
}


@dataclass(frozen=True)
class RuleIndex:
    """``seeded`` is False until the built-in rules have rows (a worker seeds them at start): until
    then nobody can say which rules exist, so every event is kept for evaluation, as before."""

    version: str
    triggers: tuple[Trigger, ...]
    seeded: bool


_cache: dict[str, RuleIndex] = {}


def version_sql(session: Session) -> str:
    return VERSION_SQL[session.get_bind().dialect.name]


def _key(session: Session) -> str:
    return session.get_bind().engine.url.render_as_string()


def current(session: Session) -> RuleIndex:
    """The cached index (loaded on first use in this process)."""
    found = _cache.get(_key(session))
    return found if found is not None else refresh(session)


def refresh(session: Session) -> RuleIndex:
    """Read the rules again (two small queries) and cache them."""
    version = str(session.execute(text(f"SELECT {version_sql(session)}")).scalar_one())
    triggers, seeded = [], False
    for raw, enabled, builtin in session.execute(select(Rule.trigger, Rule.enabled, Rule.builtin).order_by(Rule.id)):
        seeded = seeded or bool(builtin)
        try:
            if enabled:
                triggers.append(parse_trigger(raw))
        except Invalid:
            continue  # a trigger this version cannot read never matches (rule_registry logs it)
    index = _cache[_key(session)] = RuleIndex(version, tuple(triggers), seeded)
    return index
