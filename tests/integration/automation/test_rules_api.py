"""``/rules``: built-in and user rules, loops stopped at the depth limit, dry-run, runs and undo."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support import Api

BUILTINS = ["sprint_auto_complete", "notify_blocked_task", "alert_p0_task", "session_on_sprint_activated"]


def rules_by_name(api: Api) -> dict[str, dict[str, Any]]:
    response = api.get("/rules", role="reader")
    assert response.status_code == 200, response.get_json()
    return {r["name"]: r for r in response.get_json()["items"]}


def counts(api: Api) -> tuple[int, int]:
    """(events, runs): what a write would change."""
    return len(api.events()), len(api.get("/rules/runs", query_string={"limit": 1000}).get_json()["items"])


def test_the_four_built_in_rules_are_listed_with_integer_ids_enabled_and_disableable(api: Api) -> None:
    rules = rules_by_name(api)
    assert list(rules)[:4] == BUILTINS  # seeded first; rules a test worker defines in code may follow
    assert all(isinstance(rules[n]["id"], int) and rules[n]["enabled"] and rules[n]["builtin"] for n in BUILTINS)

    rule_id = rules["notify_blocked_task"]["id"]
    response = api.patch(f"/rules/{rule_id}", json={"enabled": False})
    assert response.status_code == 200 and response.get_json()["enabled"] is False
    assert api.get(f"/rules/{rule_id}").get_json()["enabled"] is False
    assert api.patch(f"/rules/{rule_id}", json={"trigger": {"type": "custom.x"}}).status_code == 409
    assert api.delete(f"/rules/{rule_id}").status_code == 409
    assert api.patch(f"/rules/{rule_id}", json={"enabled": True}, role="writer").status_code == 403


def test_a_user_rule_is_created_validated_updated_and_deleted(api: Api) -> None:
    rule = {"name": "flag_review", "trigger": {"type": "orchestration.task.status_changed",
                                               "conditions": [{"path": "status", "op": "changed_to",
                                                               "value": "in_progress"}]},
            "action": {"name": "set_field", "params": {"field": "metadata", "value": {"review": True}}}}
    created = api.post("/rules", json=rule)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert created.headers["Location"].endswith(f"/rules/{body['id']}")
    assert (body["builtin"], body["enabled"], body["trigger"]["conditions"][0]["op"]) == (False, True, "changed_to")

    assert api.post("/rules", json=rule).status_code == 409
    assert api.post("/rules", json=rule, role="writer").status_code == 403
    bad_op = api.post("/rules", json={**rule, "name": "bad", "trigger": {"type": "x.*", "conditions": [
        {"path": "status", "op": "like", "value": 1}]}})
    assert bad_op.status_code == 422 and "trigger" in bad_op.get_json()["errors"]
    bad_action = api.post("/rules", json={**rule, "name": "bad", "action": {"name": "set_status", "params": {}}})
    assert bad_action.status_code == 422 and "action" in bad_action.get_json()["errors"]
    assert api.post("/rules", json={**rule, "name": "bad", "actor": "me"}).status_code == 422

    renamed = api.patch(f"/rules/{body['id']}", json={"description": "flags tasks", "enabled": False})
    assert renamed.status_code == 200 and renamed.get_json()["description"] == "flags tasks"
    assert api.delete(f"/rules/{body['id']}").status_code == 204
    assert api.get(f"/rules/{body['id']}").status_code == 404
    assert api.post("/rules/999/dry-run", json={"event_id": 1}).status_code == 404


def test_two_user_rules_that_trigger_each_other_stop_at_the_depth_limit_with_a_loop_run(
        api: Api, settle: Callable[..., None]) -> None:
    for name, heard, said in (("ping", "custom.ping", "custom.pong"), ("pong", "custom.pong", "custom.ping")):
        response = api.post("/rules", json={"name": name, "trigger": {"type": heard},
                                            "action": {"name": "emit_event", "params": {"type": said}}})
        assert response.status_code == 201, response.get_json()
    api.create_task("T-LOOP")
    first = api.post("/events", json={"type": "custom.ping", "entity_type": "task", "entity_code": "T-LOOP"})
    settle()

    chatter = api.events(entity_code="T-LOOP", type="custom.*")
    assert [e["type"] for e in chatter] == ["custom.ping", "custom.pong"] * 3
    assert [e["causation_id"] for e in chatter[1:]] == [e["event_id"] for e in chatter[:-1]]
    workflow = api.events(path=f"/events/correlation/{first.get_json()['correlation_id']}", type="custom.*")
    assert workflow == chatter
    [loop] = api.get("/rules/runs", query_string={"status": "loop"}).get_json()["items"]
    assert loop["rule_name"] == "pong" and loop["event_id"] == chatter[-1]["id"]
    assert loop["effects"] == [] and "limit" in loop["error"]


def complete_sprint_rule(api: Api) -> int:
    return int(rules_by_name(api)["sprint_auto_complete"]["id"])


def test_dry_run_shows_the_plan_and_writes_nothing(api: Api, settle: Callable[..., None]) -> None:
    rule_id = complete_sprint_rule(api)
    assert api.patch(f"/rules/{rule_id}", json={"enabled": False}).status_code == 200
    api.create_sprint("S-DRY")
    api.create_task("T-D1", "S-DRY", status="completed")
    api.create_task("T-D2", "S-DRY")
    api.update_task("T-D2", status="completed")
    settle()
    assert api.get("/sprints/S-DRY").get_json()["status"] == "planned"
    trigger = api.events(entity_code="T-D2", type="orchestration.task.status_changed")[-1]
    before = counts(api)

    for ref in (trigger["id"], trigger["event_id"]):
        response = api.post(f"/rules/{rule_id}/dry-run", json={"event_id": ref})
        assert response.status_code == 200, response.get_json()
        plan = response.get_json()
        assert plan["fires"] is True and plan["outcome"] == "would_apply"
        assert plan["planned"] == [{"effect": "update", "entity": {"type": "sprint", "code": "S-DRY"},
                                    "changes": {"status": {"before": "planned", "after": "completed"}}}]
    other = api.post(f"/rules/{rule_id}/dry-run", json={"event_id": api.events(entity_code="S-DRY")[0]["id"]})
    assert other.get_json()["fires"] is False and other.get_json()["outcome"] == "no_match"
    assert api.post(f"/rules/{rule_id}/dry-run", json={"event_id": "nope"}).status_code == 422
    assert counts(api) == before
    assert api.get("/sprints/S-DRY").get_json()["status"] == "planned"


def completed_by_rule(api: Api, settle: Callable[..., None], sprint: str) -> dict[str, Any]:
    """A sprint completed by the built-in rule; returns its succeeded run."""
    api.create_sprint(sprint, status="active")
    api.create_task(f"{sprint}-T", sprint)
    api.update_task(f"{sprint}-T", status="completed")
    settle()
    assert api.get(f"/sprints/{sprint}").get_json()["status"] == "completed"
    runs = api.get("/rules/runs", query_string={"status": "succeeded"}).get_json()["items"]
    return next(r for r in runs if r["rule_name"] == "sprint_auto_complete"
                and r["effects"][0]["entity"]["code"] == sprint)


def test_undo_restores_the_previous_values_with_new_events(api: Api, settle: Callable[..., None]) -> None:
    run = completed_by_rule(api, settle, "S-UNDO")

    response = api.post(f"/rules/runs/{run['id']}/undo")

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["run"]["status"] == "undone"
    [compensation] = body["events"]
    assert compensation["changes"] == {"status": {"before": "completed", "after": "active"}}
    assert compensation["actor"] == "user:admin"
    assert compensation["causation_id"] == run["effects"][0]["event_id"]
    assert api.get("/sprints/S-UNDO").get_json()["status"] == "active"
    assert api.post(f"/rules/runs/{run['id']}/undo").status_code == 409
    assert api.post(f"/rules/runs/{run['id']}/undo", role="writer").status_code == 403
    assert api.post("/rules/runs/999999/undo").status_code == 404


def test_undo_after_a_later_change_is_refused_and_writes_nothing(api: Api, settle: Callable[..., None]) -> None:
    run = completed_by_rule(api, settle, "S-LATER")
    assert api.patch("/sprints/S-LATER", json={"title": "renamed since"}).status_code == 200
    settle()
    before = counts(api)

    response = api.post(f"/rules/runs/{run['id']}/undo")

    assert response.status_code == 409
    assert response.get_json()["errors"]["entity"]
    assert counts(api) == before
    assert api.get("/sprints/S-LATER").get_json()["status"] == "completed"
    [same] = [r for r in api.get("/rules/runs", query_string={"rule_id": run["rule_id"]}).get_json()["items"]
              if r["id"] == run["id"]]
    assert same["status"] == "succeeded"
