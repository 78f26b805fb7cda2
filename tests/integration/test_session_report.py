"""The session report's pages, snapshot and errors, and the revert's access rules, on both backends."""

from __future__ import annotations

from typing import Any

from tests.support import Api

KEY = "sess-paged"


def report(api: Api, **params: Any) -> dict[str, Any]:
    response = api.get(f"/sessions/{KEY}/report", role="reader", query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def test_every_list_pages_by_keyset_at_the_snapshot_of_its_first_page(api: Api) -> None:
    assert api.post("/sessions", json={"agent_id": "agent:a", "session_key": KEY}).status_code == 201
    headers = {"X-Session-Key": KEY}
    for i in range(5):
        api.create_task(f"R-{i}")
        assert api.patch(f"/tasks/R-{i}", json={"progress": i + 1}, headers=headers).status_code == 200
        assert api.patch(f"/tasks/R-{i}", json={"progress": 101}, headers=headers).status_code == 422
    first = report(api, limit=2)
    assert first["entities"]["total"] == 5 and first["refused"]["total"] == 5

    assert api.patch("/tasks/R-0", json={"title": "later"}, headers=headers).status_code == 200
    seen: dict[str, list[Any]] = {"entities": [], "refused": []}
    for section in seen:
        page = first
        while True:
            seen[section] += [item["entity"]["code"] for item in page[section]["items"]]
            if not page[section]["next"]:
                break
            page = report(api, limit=2, after=page[section]["next"])
            assert page["as_of_event_id"] == first["as_of_event_id"]
            assert page["events"] == first["events"]  # the later write is not in this snapshot
    assert seen == {"entities": [f"R-{i}" for i in range(5)], "refused": [f"R-{i}" for i in range(5)]}
    assert report(api)["entities"]["items"][0]["changes"]["title"]["after"] == "later"


def test_unknown_sessions_cursors_and_bodies_are_refused_and_only_admins_revert(api: Api) -> None:
    assert api.get("/sessions/nope/report").status_code == 404
    assert api.post("/sessions/nope/revert", json={}).status_code == 404
    api.post("/sessions", json={"agent_id": "agent:a", "session_key": KEY})
    assert api.get(f"/sessions/{KEY}/report", query_string={"after": "bogus"}).status_code == 422
    assert api.post(f"/sessions/{KEY}/revert", role="writer", json={}).status_code == 403
    assert api.post(f"/sessions/{KEY}/revert", json={"actor": "user:x"}).status_code == 422
    dry = api.post(f"/sessions/{KEY}/revert", json={})
    assert dry.status_code == 200 and dry.get_json()["dry_run"] is True and dry.get_json()["entities"] == []


def outbox_ids(runtime: Any) -> set[int]:
    from sqlalchemy import select

    from app.store.tables import OutboxEntry

    with runtime.engine.connect() as connection:
        return set(connection.execute(select(OutboxEntry.event_id)).scalars())


def test_compensations_reach_the_rules_only_when_asked(api: Api, runtime: Any) -> None:
    api.post("/sessions", json={"agent_id": "agent:a", "session_key": KEY})
    for code in ("Q-1", "Q-2"):
        api.create_task(code)
    headers = {"X-Session-Key": KEY}
    assert api.patch("/tasks/Q-1", json={"status": "blocked"}, headers=headers).status_code == 200
    quiet = api.post(f"/sessions/{KEY}/revert", json={"dry_run": False}).get_json()
    quiet_ids = {e["id"] for item in quiet["entities"] for e in item["events"]} | {quiet["reverted_event"]["id"]}
    assert quiet_ids and not quiet_ids & outbox_ids(runtime)

    assert api.patch("/tasks/Q-2", json={"status": "blocked"}, headers=headers).status_code == 200
    loud = api.post(f"/sessions/{KEY}/revert", json={"dry_run": False, "trigger_rules": True}).get_json()
    loud_ids = {e["id"] for item in loud["entities"] for e in item["events"]}
    assert [i["entity"]["code"] for i in loud["entities"] if i["status"] == "applied"] == ["Q-2"]
    assert loud_ids and loud_ids <= outbox_ids(runtime)


def evaluate_pending(runtime: Any) -> None:
    """The rule engine in-process (what a worker does for each outbox row), until nothing is pending."""
    from app.services import automation

    while ids := sorted(outbox_ids(runtime)):
        automation.evaluate_events(ids, runtime.uow(), runtime.clock, depth_limit=5, final=True)


def test_the_blast_radius_lists_what_the_rules_did_in_pages(api: Api, runtime: Any) -> None:
    api.post("/sessions", json={"agent_id": "agent:a", "session_key": KEY})
    for i in range(3):
        api.create_task(f"Z-{i}")
    evaluate_pending(runtime)
    for i in range(3):
        assert api.patch(f"/tasks/Z-{i}", json={"status": "blocked"}, headers={"X-Session-Key": KEY}).status_code == 200
    evaluate_pending(runtime)

    first = report(api, limit=2)
    blast = first["blast_radius"]
    assert (blast["events"], blast["max_depth"], blast["by_actor_kind"]) == (3, 1, {"automation": 3})
    assert blast["rule_runs"]["by_rule"] == {"notify_blocked_task": {"succeeded": 3}}
    rest = report(api, limit=2, after=blast["next"])["blast_radius"]
    shown = blast["items"] + rest["items"]
    assert [e["type"] for e in shown] == ["orchestration.notification.created"] * 3 and rest["next"] is None
    assert [e["changes"]["data"]["after"]["task_code"] for e in shown] == ["Z-0", "Z-1", "Z-2"]
    more = report(api, limit=2, after=blast["entities"]["next"])["blast_radius"]["entities"]
    assert blast["entities"]["total"] == 3 and len(blast["entities"]["items"]) + len(more["items"]) == 3


def test_the_cli_reverts_a_session_only_with_apply(api: Api, app: Any) -> None:
    api.post("/sessions", json={"agent_id": "agent:a", "session_key": KEY})
    api.create_task("CLI-1")
    assert api.patch("/tasks/CLI-1", json={"progress": 40}, headers={"X-Session-Key": KEY}).status_code == 200
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["orchestration", "revert-session", KEY])
    assert dry.exit_code == 0 and "planned   task CLI-1: progress 40 → 0" in dry.output
    assert api.get("/tasks/CLI-1").get_json()["progress"] == 40
    applied = runner.invoke(args=["orchestration", "revert-session", KEY, "--apply"])
    assert applied.exit_code == 0 and "applied   task CLI-1" in applied.output
    assert api.get("/tasks/CLI-1").get_json()["progress"] == 0
    assert api.events("/events/entity/task/CLI-1")[-1]["actor"] == "system:cli"
    missing = runner.invoke(args=["orchestration", "session-report", "nope"])
    assert missing.exit_code != 0 and "no agent session" in missing.output
