"""Managing rules and their runs: the use cases behind ``/rules`` (CONTRACT §2)."""

from __future__ import annotations

import dataclasses
from typing import Any

from app.domain.changes import ChangeContext
from app.domain.clock import Clock, iso
from app.domain.errors import Conflict, Invalid, NotFound
from app.domain.event_filter import EventFilter
from app.domain.paging import trim_page
from app.domain.rule_actions import parse_action
from app.domain.rules import RuleDef, parse_trigger, reacts_to_itself
from app.domain.runs import RunStatus
from app.services import backtest as backtesting
from app.services import rule_effects, rule_facts, rule_registry, rule_secrets, webhooks
from app.services.webhooks import NO_WEBHOOKS, Policy
from app.store.errors import DuplicateRow
from app.store.event_store import envelope
from app.store.rule_rows import NameTaken
from app.store.tables import Event, Rule, RuleRun
from app.store.uow import Repositories, UnitOfWork

RUN_STATUSES = tuple(RunStatus)
BUILTIN_MUTABLE = frozenset({"enabled"})
Page = tuple[list[dict[str, Any]], int | None]


def rule_body(row: Rule) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "description": row.description, "trigger": row.trigger,
            "action": rule_secrets.redacted(row.action), "enabled": row.enabled, "builtin": row.builtin,
            "created_at": iso(row.created_at), "updated_at": iso(row.updated_at)}


def run_body(run: RuleRun, rule_name: str, delivery: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": run.id, "rule_id": run.rule_id, "rule_name": rule_name, "event_id": run.event_id,
            "status": run.status, "attempts": run.attempts, "effects": list(run.effects or []),
            "error": run.error, "reason": run.reason, "delivery": delivery,
            "created_at": iso(run.created_at), "finished_at": iso(run.finished_at)}


def _seeded(uow: UnitOfWork, clock: Clock) -> UnitOfWork:
    """Built-in rules exist by the time anyone looks (insert-if-missing, committed at once)."""
    if rule_registry.ensure_rules(uow, clock):
        uow.commit()
    return uow


def _find(repos: Repositories, rule_id: int, *, lock: bool = False) -> Rule:
    row = repos.rules.get(rule_id, lock=lock)
    if row is None:
        raise NotFound(f"no rule with id {rule_id}")
    return row


def _validated(data: dict[str, Any], policy: Policy) -> dict[str, Any]:
    """Triggers and actions are checked by the domain; stored in their normalised form."""
    checked = dict(data)
    if "trigger" in data:
        checked["trigger"] = parse_trigger(data["trigger"]).as_dict()
    if "action" in data:
        checked["action"] = parse_action(data["action"], rule_registry.user_actions()).as_dict()
        rule_secrets.check_destination(checked["action"], policy.allowed_hosts)
    return checked


def list_rules(filters: dict[str, Any], after_id: int, limit: int, uow: UnitOfWork, clock: Clock) -> Page:
    """Rules in id order (built-ins first, as they are seeded first)."""
    with uow:
        rows, last = trim_page(_seeded(uow, clock).rules.page(filters, after_id, limit + 1), limit, lambda r: r.id)
        return [rule_body(r) for r in rows], last


def get_rule(rule_id: int, uow: UnitOfWork, clock: Clock) -> dict[str, Any]:
    with uow:
        return rule_body(_find(_seeded(uow, clock), rule_id))


def create_rule(data: dict[str, Any], uow: UnitOfWork, clock: Clock, policy: Policy = NO_WEBHOOKS) -> dict[str, Any]:
    checked = _validated(data, policy)
    with uow:
        if _seeded(uow, clock).rules.named(checked["name"]):
            raise Conflict(f"a rule named {checked['name']!r} exists", {"name": ["already exists"]})
        try:
            row = uow.rules.add(checked, clock())
        except NameTaken:
            raise Conflict(f"a rule named {checked['name']!r} exists", {"name": ["already exists"]}) from None
        uow.commit()
        return rule_body(row)


def update_rule(rule_id: int, patch: dict[str, Any], uow: UnitOfWork, clock: Clock,
                policy: Policy = NO_WEBHOOKS) -> dict[str, Any]:
    """Enable, disable, or (for user rules) redefine; a built-in rule can only be switched.

    A webhook's secret is write-only: a patch without one keeps the stored one,
    a patch with a new one rotates it (the old one signs too for the rotation window).
    """
    with uow:
        row = _find(_seeded(uow, clock), rule_id, lock=True)
        patch = rule_secrets.with_kept_secret(patch, row.action)
        checked = _validated(patch, policy)
        if row.builtin and set(checked) - BUILTIN_MUTABLE:
            raise Conflict("a built-in rule can only be enabled or disabled",
                           {name: ["read-only on a built-in rule"] for name in sorted(set(checked) - BUILTIN_MUTABLE)})
        if "action" in checked:
            checked["action"] = rule_secrets.rotated(checked["action"], row.action, clock(), policy.rotation_window)
        for name, value in checked.items():
            setattr(row, name, value)
        row.updated_at = clock()
        try:
            uow.commit()
        except DuplicateRow:
            raise Conflict(f"a rule named {checked.get('name')!r} exists", {"name": ["already exists"]}) from None
        return rule_body(row)


def delete_rule(rule_id: int, uow: UnitOfWork, clock: Clock) -> None:
    """A user rule goes with its runs; a built-in one is disabled instead (409)."""
    with uow:
        row = _find(_seeded(uow, clock), rule_id, lock=True)
        if row.builtin:
            raise Conflict("a built-in rule cannot be deleted; disable it", {"id": ["built-in rule"]})
        uow.rules.delete(row)
        uow.commit()


def find_event(repos: Repositories, ref: int | str) -> Event:
    """An event by its ``id`` (integer) or its ``event_id`` (UUID), hot or archived."""
    row = repos.events.find(ref)
    if row is None:
        raise NotFound(f"no event {ref}")
    return row


def list_runs(filters: dict[str, Any], after_id: int, limit: int, uow: UnitOfWork) -> Page:
    """Runs oldest first; ``event_id`` may be the event's id or its UUID."""
    with uow:
        event_id = None
        if "event_id" in filters:
            try:
                event_id = find_event(uow, filters["event_id"]).id
            except NotFound:
                return [], None
        rows, last = trim_page(uow.rules.runs_page(filters, event_id, after_id, limit + 1), limit, lambda r: r[0].id)
        deliveries = webhooks.attempts_of(uow.webhooks, [run.id for run, _ in rows])
        return [run_body(run, name, deliveries.get(run.id)) for run, name in rows], last


def _outcome(rule_def: RuleDef, seen: dict[str, Any], depth: int, depth_limit: int) -> str | None:
    """Why the rule would not act (as the worker decides it), or None when it goes on to plan."""
    if not rule_def.trigger.matches(seen):
        return "no_match"
    if reacts_to_itself(rule_def, seen):
        return "own_event"
    return RunStatus.LOOP if depth >= depth_limit else None


def _plan(repos: Repositories, rule_def: RuleDef, seen: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The effects the worker would plan: from the state as of the event's place in the log."""
    action = rule_registry.actions().get(rule_def.action.name)
    if action is None:
        return "unknown_action", []
    planned, _ = rule_facts.plan_as_of(rule_facts.DatabaseStates(repos.db), action, rule_def.action.params, seen)
    described = [effect.describe() for effect in planned]
    return ("would_apply" if described else "nothing_to_do"), described


def dry_run(rule_id: int, event_ref: int | str, uow: UnitOfWork, depth_limit: int) -> dict[str, Any]:
    """Would the rule fire on this event, and what would it change, judged as of the event? Writes nothing."""
    with uow:
        rule_def = rule_registry.to_def(_find(uow, rule_id))
        event = find_event(uow, event_ref)
        if rule_def is None:
            raise Invalid("the rule's trigger cannot be read", {"trigger": ["unreadable"]})
        seen = envelope(event)
        refused = _outcome(rule_def, seen, event.causation_depth, depth_limit)
        outcome, planned = (refused, []) if refused else _plan(uow, rule_def, seen)
        previous = uow.rules.run(rule_id, event.id)
        return {"rule": {"id": rule_def.id, "name": rule_def.name, "enabled": rule_def.enabled},
                "event": {"id": event.id, "event_id": event.event_id, "type": event.type},
                "fires": outcome == "would_apply", "outcome": outcome,
                "conditions": rule_def.trigger.explain(seen), "planned": planned,
                "previous_run": {"id": previous.id, "status": previous.status} if previous else None}


def undo_run(run_id: int, ctx: ChangeContext, uow: UnitOfWork, clock: Clock, *,
             trigger_rules: bool = False) -> dict[str, Any]:
    """Revert a succeeded run with compensating events; 409 when an entity changed since.

    Compensations start no rules unless asked (``trigger_rules``): undoing
    ``sprint_auto_complete`` re-activates the sprint, which must not start a
    second automation session as if someone had activated it.
    """
    ctx = dataclasses.replace(ctx, trigger_rules=trigger_rules)
    with uow:
        run = uow.rules.get_run(run_id, lock=True)
        if run is None:
            raise NotFound(f"no rule run with id {run_id}")
        if run.status != RunStatus.SUCCEEDED:
            raise Conflict(f"only a succeeded run can be undone; this one is {run.status}",
                           {"status": [run.status]})
        if webhooks.attempts_of(uow.webhooks, [run.id]):
            raise Conflict("a delivered webhook cannot be taken back", {"status": ["webhook run"]})
        trigger = uow.events.get(run.event_id)
        if trigger is not None:
            chain = (*ctx.correlation_chain, trigger.correlation_id, *(trigger.correlation_chain or []))
            ctx = dataclasses.replace(ctx, correlation_chain=chain)
        produced = rule_effects.undo(uow, list(run.effects or []), ctx, clock)
        run.status = RunStatus.UNDONE
        uow.commit()
        return {"run": run_body(run, uow.rules.rule_name(run.rule_id)), "events": [envelope(r) for r in produced]}


def redeliver_run(run_id: int, uow: UnitOfWork, clock: Clock) -> dict[str, Any]:
    """Send a webhook run's delivery again, with a fresh retry window; 409 while it is still being delivered."""
    with uow:
        run = uow.rules.get_run(run_id, lock=True)
        if run is None:
            raise NotFound(f"no rule run with id {run_id}")
        delivery_id = webhooks.restart(uow.webhooks, run, clock)
        uow.pending_deliveries.append(delivery_id)
        uow.commit()
        return run_body(run, uow.rules.rule_name(run.rule_id), webhooks.attempts_of(uow.webhooks, [run.id]).get(run.id))


def backtest(rule_id: int | None, draft: dict[str, Any] | None, flt: EventFilter, after: int, limit: int,
             uow: UnitOfWork, depth_limit: int) -> dict[str, Any]:
    """A stored rule by id, or a draft body checked like ``POST /rules``, judged over a window."""
    if draft is not None:
        return backtesting.backtest(backtesting.draft_rule(draft), flt, after, limit, uow, depth_limit)
    with uow:
        rule = backtesting.stored_rule(uow.db, int(rule_id or 0))
    return backtesting.backtest(rule, flt, after, limit, uow, depth_limit)
