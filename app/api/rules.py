"""Automation rules: manage them, try them on an event, list and undo their runs."""

from __future__ import annotations

from typing import Any

from flask import Response, url_for
from flask_smorest import Blueprint

from app.api import rule_schemas as rs
from app.api import schemas as s
from app.api.auth import auth
from app.api.context import change_context, read_uow, runtime, uow
from app.api.events import event_filter
from app.domain.paging import INT_ID_MAX, decode_cursor, encode_cursor, page_body
from app.services import rules_admin, webhooks

# ``/runs`` cannot collide with ``/<int:rule_id>``: the int converter never matches "runs".
blp = Blueprint("rules", __name__, url_prefix="/api/orchestration/rules",
                description="Automation rules (built-in and user-defined) and their runs.")


def _policy() -> webhooks.Policy:
    return webhooks.Policy.from_settings(runtime().settings)


@blp.route("", methods=["GET"], endpoint="list_rules")
@auth.login_required(role="reader")
@blp.arguments(rs.RuleQuery, location="query")
@blp.response(200, s.page_of(rs.RuleOut))
def list_rules(args: dict[str, Any]) -> dict[str, Any]:
    """Rules in id order; the four built-in rules come first."""
    chosen: dict[str, Any] = {k: args[k] for k in ("enabled", "builtin") if k in args}
    return page_body(*rules_admin.list_rules(chosen, decode_cursor(args["after"], INT_ID_MAX), args["limit"], uow(), runtime().clock))


@blp.route("", methods=["POST"], endpoint="create_rule")
@auth.login_required(role="admin")
@blp.arguments(rs.RuleCreate)
@blp.response(201, rs.RuleOut)
def create_rule(data: dict[str, Any]) -> Any:
    """Create a user rule: a trigger (type pattern + conditions) and an action."""
    body = rules_admin.create_rule(data, uow(), runtime().clock, _policy())
    return body, 201, {"Location": url_for("rules.get_rule", rule_id=body["id"])}


@blp.route("/<int:rule_id>", methods=["GET"], endpoint="get_rule")
@auth.login_required(role="reader")
@blp.response(200, rs.RuleOut)
def get_rule(rule_id: int) -> dict[str, Any]:
    return rules_admin.get_rule(rule_id, uow(), runtime().clock)


@blp.route("/<int:rule_id>", methods=["PATCH"], endpoint="update_rule")
@auth.login_required(role="admin")
@blp.arguments(rs.RulePatch)
@blp.response(200, rs.RuleOut)
def update_rule(patch: dict[str, Any], rule_id: int) -> dict[str, Any]:
    """Enable or disable any rule; a user rule may also be redefined."""
    return rules_admin.update_rule(rule_id, patch, uow(), runtime().clock, _policy())


@blp.route("/<int:rule_id>", methods=["DELETE"], endpoint="delete_rule")
@auth.login_required(role="admin")
@blp.response(204)
def delete_rule(rule_id: int) -> Response:
    """Delete a user rule and its runs; built-in rules are disabled instead (409)."""
    rules_admin.delete_rule(rule_id, uow(), runtime().clock)
    return Response(status=204)


@blp.route("/<int:rule_id>/dry-run", methods=["POST"], endpoint="dry_run")
@auth.login_required(role="admin")
@blp.arguments(rs.DryRunBody)
@blp.response(200, rs.DryRunOut)
def dry_run(body: dict[str, Any], rule_id: int) -> dict[str, Any]:
    """Would the rule fire on this event (``id`` or ``event_id``), and what would it do? Writes nothing."""
    return rules_admin.dry_run(rule_id, body["event_id"], read_uow(), runtime().settings.causation_depth_limit)


@blp.route("/runs", methods=["GET"], endpoint="list_runs")
@auth.login_required(role="reader")
@blp.arguments(rs.RunQuery, location="query")
@blp.response(200, s.page_of(rs.RunOut))
def list_runs(args: dict[str, Any]) -> dict[str, Any]:
    """Rule runs, oldest first: status, attempts, the events produced, the error."""
    chosen: dict[str, Any] = {k: args[k] for k in ("rule_id", "event_id", "status") if k in args}
    return page_body(*rules_admin.list_runs(chosen, decode_cursor(args["after"], INT_ID_MAX), args["limit"], read_uow()))


@blp.route("/runs/<int:run_id>/undo", methods=["POST"], endpoint="undo_run")
@auth.login_required(role="admin")
@blp.arguments(rs.UndoBody, required=False)
@blp.response(200, rs.UndoOut)
def undo_run(body: dict[str, Any], run_id: int) -> dict[str, Any]:
    """Revert a succeeded run by compensating events; 409 when an entity changed since.

    The compensating events start no automation rules unless the body says
    ``{"trigger_rules": true}`` (the body is optional)."""
    return rules_admin.undo_run(run_id, change_context(), uow(), runtime().clock,
                                trigger_rules=bool((body or {}).get("trigger_rules", False)))


@blp.route("/runs/<int:run_id>/redeliver", methods=["POST"], endpoint="redeliver_run")
@auth.login_required(role="admin")
@blp.response(202, rs.RunOut)
@blp.alt_response(404, description="no such run")
@blp.alt_response(409, description="not a webhook run, or its delivery is still under way")
def redeliver_run(run_id: int) -> dict[str, Any]:
    """Send a webhook run's delivery again (same ``webhook-id``), with a fresh retry window."""
    return rules_admin.redeliver_run(run_id, uow(), runtime().clock)


@blp.route("/backtest", methods=["POST"], endpoint="backtest")
@auth.login_required(role="admin")
@blp.arguments(rs.BacktestBody)
@blp.response(200, rs.BacktestOut)
def backtest_rule(body: dict[str, Any]) -> dict[str, Any]:
    """Judge a rule as of each event of ``[from, to)`` (filters as ``/events``); writes nothing.

    A page stops after ``limit`` matches or a bounded scan; ``next`` continues right after it.
    """
    rt = runtime()
    result = rules_admin.backtest(body.get("rule_id"), body.get("rule"), event_filter(body),
                                  decode_cursor(body["after"]), body["limit"], read_uow(),
                                  rt.settings.causation_depth_limit)
    next_id = result.pop("next_id")
    return {**result, "next": encode_cursor(next_id) if next_id else None}
