"""Rules defined in code (the built-ins and ``register_rule``) and their rows in the database.

Code rules are seeded idempotently (insert-if-missing by unique name), so
they have integer ids, appear under ``/rules`` and can be disabled there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from app.domain.clock import Clock
from app.domain.errors import Invalid
from app.domain.rule_actions import ACTIONS, BUILTIN_RULES, ActionDef, Planner, parse_action
from app.domain.rules import ActionSpec, RuleDef, parse_trigger
from app.store.tables import Rule
from app.store.uow import Repositories

log = logging.getLogger(__name__)

_actions: dict[str, ActionDef] = dict(ACTIONS)
_code_rules: dict[str, dict[str, Any]] = {rule["name"]: rule for rule in BUILTIN_RULES}


def register_action(name: str, plan: Planner, *, needs: frozenset[str] = frozenset(),
                    check: Callable[[Mapping[str, Any]], list[str]] | None = None) -> None:
    """A named action for rules of this process; ``needs`` names the state read under lock."""
    _actions[name] = ActionDef(name, plan, lambda params: needs, check or (lambda params: []))


def register_rule(trigger: dict[str, Any], action: dict[str, Any] | Planner, *, name: str,
                  description: str = "", needs: frozenset[str] = frozenset()) -> None:
    """Define a rule in code; a callable action becomes the action ``code:<name>``.

    Validated here, so a broken definition fails at import, not at run time.
    """
    if callable(action):
        register_action(f"code:{name}", action, needs=needs)
        action = {"name": f"code:{name}", "params": {}}
    parse_trigger(trigger)
    parse_action(action, _actions)
    _code_rules[name] = {"name": name, "description": description, "trigger": trigger, "action": action}


def actions() -> Mapping[str, ActionDef]:
    return MappingProxyType(_actions)


def user_actions() -> Mapping[str, ActionDef]:
    """Actions a rule stored through the API may name (not the code-only ones)."""
    return {name: a for name, a in _actions.items() if not name.startswith("code:")}


# Database URL -> the code rules already found committed there: no query per call after that.
_present: dict[str, frozenset[str]] = {}


def ensure_rules(repos: Repositories, clock: Clock) -> bool:
    """Insert the code rules that have no row yet; True when something was inserted.

    Once every code rule was found in the database, later calls in this
    process ask nothing (until another code rule is registered).
    """
    where, wanted = repos.rules.database, frozenset(_code_rules)
    if _present.get(where) == wanted:
        return False
    existing = repos.rules.names()
    missing = [rule for name, rule in _code_rules.items() if name not in existing]
    if not missing:
        _present[where] = wanted
        return False
    now = clock()
    repos.rules.insert_missing([{**rule, "enabled": True, "builtin": True, "created_at": now, "updated_at": now}
                                for rule in missing])
    return True


def to_def(row: Rule) -> RuleDef | None:
    """The engine's view of a row; a row this version cannot read is left out, loudly."""
    try:
        trigger = parse_trigger(row.trigger)
    except Invalid as exc:
        log.warning("rule %s (%s) has an unreadable trigger: %s", row.id, row.name, exc.errors)
        return None
    action = row.action or {}
    return RuleDef(row.id, row.name, trigger, ActionSpec(str(action.get("name")), dict(action.get("params") or {})),
                   row.enabled)


def enabled_rule(repos: Repositories, rule_id: int) -> RuleDef | None:
    """One rule, if it exists and is enabled."""
    row = repos.rules.get(rule_id)
    return to_def(row) if row is not None and row.enabled else None


def enabled_rules(repos: Repositories, clock: Clock) -> list[RuleDef]:
    """Every enabled rule, seeding code rules first (rows are few: one query)."""
    if ensure_rules(repos, clock):
        repos.rules.flush()
    return [d for d in (to_def(r) for r in repos.rules.enabled()) if d is not None]
