"""Backtesting a rule over a seeded history: exactly the events a hand-made fold names, nothing written."""

from __future__ import annotations

import base64
import random
from typing import Any

import pytest
from flask import Flask
from freezegun import freeze_time
from sqlalchemy import MetaData, func, select

from app.domain.entities import SPRINT_STATUSES, TASK_STATUSES
from app.domain.rules import evaluate_rules
from app.services import backtest, backtest_states, rule_facts, rule_registry
from app.services.queries import EventFilter
from tests.integration.test_archive import NOW, days_ago, run_archive
from tests.integration.test_archive_table import count
from tests.support import Api

DRAFT = {"name": "draft_complete", "trigger": {"type": "orchestration.task.*", "conditions": [
    {"path": "status", "op": "changed_to", "value": "completed"}]},
         "action": {"name": "complete_sprint", "params": {}}}
SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()


def seed(api: Api) -> None:
    """Two sprints; tasks completed, reopened, moved between sprints, cancelled and deleted."""
    api.create_sprint("S1", status="active")
    api.create_sprint("S2", status="active")
    for code, sprint in (("A", "S1"), ("B", "S1"), ("C", "S2"), ("D", "S2"), ("E", "S1")):
        api.create_task(code, sprint)
    steps = [("A", {"status": "completed"}), ("B", {"status": "completed"}), ("E", {"status": "cancelled"}),
             ("A", {"status": "in_progress"}), ("C", {"status": "completed"}), ("A", {"sprint_code": "S2"}),
             ("D", {"status": "completed"}), ("A", {"status": "completed"}), ("B", {"title": "renamed"}),
             ("C", {"status": "blocked"}), ("C", {"status": "completed"})]
    for code, patch in steps:
        api.update_task(code, **patch)
    assert api.delete("/tasks/D").status_code == 204


def hand_fold(events: list[dict[str, Any]]) -> list[int]:
    """Task completions after which every other live, non-cancelled task of the sprint is completed."""
    tasks: dict[str, dict[str, Any]] = {}
    sprints: dict[str, str] = {}
    expected = []
    for event in events:
        entity, changes = event["entity"], event["changes"]
        table = tasks if entity["type"] == "task" else sprints if entity["type"] == "sprint" else None
        if table is None or event["sequence"] is None:
            continue
        if entity["type"] == "sprint":
            sprints[entity["code"]] = changes.get("status", {}).get("after", sprints.get(entity["code"]))
            continue
        state = tasks.setdefault(entity["code"], {})
        state.update({name: change["after"] for name, change in changes.items()})
        state["deleted"] = event["type"].endswith(".deleted")
        status = changes.get("status")
        if status and status["after"] == "completed" and status["before"] != "completed":
            sprint = state["sprint_code"]
            mates = [t for t in tasks.values() if t["sprint_code"] == sprint and not t["deleted"]
                     and t["status"] != "cancelled"]
            if all(t["status"] == "completed" for t in mates) and sprints[sprint] not in ("completed", "cancelled"):
                expected.append(event["id"])
    return expected


def row_counts(app: Flask) -> dict[str, int]:
    engine = app.extensions["orchestration"].engine
    tables = MetaData()
    tables.reflect(engine)
    with engine.connect() as connection:
        return {name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                for name, table in tables.tables.items()}


def pages(api: Api, body: dict[str, Any]) -> list[dict[str, Any]]:
    answers = []
    while True:
        response = api.post("/rules/backtest", json=body)
        assert response.status_code == 200, response.get_json()
        answers.append(response.get_json())
        if not answers[-1]["next"]:
            return answers
        body = {**body, "after": answers[-1]["next"]}


def test_a_draft_rule_finds_exactly_the_events_a_hand_made_fold_names_and_writes_nothing(
        app: Flask, api: Api) -> None:
    seed(api)
    events = api.events()
    middle = events[len(events) // 2]
    before = row_counts(app)

    [whole] = pages(api, {"rule": DRAFT, "limit": 1000})
    windowed = pages(api, {"rule": DRAFT, "from": middle["timestamp"], "limit": 1})

    expected = hand_fold(events)
    assert len(expected) >= 2
    assert [i["event"]["id"] for i in whole["items"] if i["outcome"] == "would_apply"] == expected
    assert whole["summary"]["events_scanned"] == len(events)
    assert whole["summary"]["effects_by_type"] == {"update": len(expected)}
    first = next(i for i in whole["items"] if i["outcome"] == "would_apply")
    assert first["effects"][0]["changes"] == {"status": {"before": "active", "after": "completed"}}
    [type_test, status_test] = first["conditions"]
    assert type_test["holds"] and status_test["holds"]
    assert status_test["actual"] == [first["event"]["changes"]["status"]["before"], "completed"]
    late = [e["id"] for e in events if e["timestamp"] >= middle["timestamp"]]
    assert [i["event"]["id"] for page in windowed for i in page["items"] if i["outcome"] == "would_apply"] == [
        i for i in expected if i in late]
    assert sum(page["summary"]["events_scanned"] for page in windowed) >= len(late)
    assert row_counts(app) == before


def test_a_stored_rule_is_compared_with_what_it_actually_did_and_filters_narrow_the_events(
        app: Flask, api: Api, runtime: Any) -> None:
    seed(api)
    rule_id = next(r["id"] for r in api.get("/rules").get_json()["items"] if r["name"] == "sprint_auto_complete")

    [page] = pages(api, {"rule_id": rule_id, "limit": 1000, "entity_code": "C"})

    assert {i["event"]["entity"]["code"] for i in page["items"]} == {"C"}
    assert page["summary"]["actual"]["runs"] == 0  # no worker ran: every would-apply event is a difference
    assert page["summary"]["actual"]["would_apply_but_did_not"] == [
        i["event"]["id"] for i in page["items"] if i["outcome"] == "would_apply"]
    hook = {**DRAFT, "name": "draft_hook", "action": {"name": "webhook", "params": {
        "url": "http://127.0.0.1:9/hook", "secret": SECRET}}}
    response = api.post("/rules/backtest", json={"rule": hook, "type": "orchestration.task.deleted"})
    assert response.status_code == 200 and SECRET not in response.get_data(as_text=True)
    assert api.post("/rules/backtest", json={"rule_id": rule_id}, role="writer").status_code == 403
    assert api.post("/rules/backtest", json={"limit": 5}).status_code == 422

    result = app.test_cli_runner().invoke(args=["orchestration", "backtest-rule", "--rule", str(rule_id),
                                                "--from", "1d"])
    assert result.exit_code == 0, result.output
    assert f"{len(api.events())} events scanned" in result.output


def judged_items(page: dict[str, Any]) -> list[tuple[int, str, list[dict[str, Any]]]]:
    return [(i["event"]["id"], i["outcome"], i["effects"]) for i in page["items"]]


def test_a_window_reaching_into_archived_history_finds_what_it_found_before_archiving(
        app: Flask, api: Api, runtime: Any) -> None:
    with freeze_time(days_ago(120)):
        seed(api)
        api.update_task("C", status="blocked")  # S2 is not complete while C is blocked (an archived fact)
        api.update_task("B", priority="P0")  # B's later events are kept hot: its stream spans both tables
    with freeze_time(days_ago(100)):
        api.update_task("B", status="in_progress")
        api.update_task("B", status="completed")
    with freeze_time(days_ago(1)):
        api.create_task("F", "S2")
        api.update_task("F", status="completed")
    events = api.events()
    f_completed = events[-1]["id"]
    windows = [{"rule": DRAFT, "limit": 1000},
               {"rule": DRAFT, "limit": 1000, "from": days_ago(110).isoformat()},
               {"rule": DRAFT, "limit": 1000, "from": days_ago(2).isoformat()}]
    with freeze_time(NOW):
        before = [[judged_items(page) for page in pages(api, window)] for window in windows]
        report = run_archive(runtime)
        after = [[judged_items(page) for page in pages(api, window)] for window in windows]

    assert 0 < report.events < len(events)
    assert count(runtime, "SELECT count(*) FROM orchestration_events") == len(events) - report.events
    [[whole], _, [recent]] = before
    assert [i for i, outcome, _ in whole if outcome == "would_apply"] == hand_fold(events)
    assert [(i, outcome) for i, outcome, _ in recent] == [(f_completed, "nothing_to_do")]
    assert after == before


RULES = [DRAFT,
         {"name": "draft_block_sprint", "trigger": {"type": "orchestration.task.*", "conditions": [
             {"path": "status", "op": "changed_to", "value": "blocked"}]},
          "action": {"name": "set_status", "params": {"status": "active", "target": "sprint"}}},
         {"name": "draft_finish_task", "trigger": {"type": "orchestration.task.*", "conditions": []},
          "action": {"name": "set_status", "params": {"status": "completed"}}},
         {"name": "draft_note", "trigger": {"type": "orchestration.*", "conditions": [
             {"path": "entity.code", "op": "eq", "value": "T1"}, {"path": "changes", "op": "exists"}]},
          "action": {"name": "emit_event", "params": {"type": "custom.note"}}}]


def random_history(api: Api, seed: int) -> None:
    """Three sprints, eight tasks, then random status changes, moves, deletions and sprint changes."""
    rng = random.Random(seed)
    sprints, tasks = ["R1", "R2", "R3"], [f"T{n}" for n in range(8)]
    for code in sprints:
        api.create_sprint(code, status="active")
    for code in tasks:
        api.create_task(code, rng.choice(sprints))
    for _ in range(70):
        roll, code = rng.random(), rng.choice(tasks)
        if roll < 0.65:
            api.patch(f"/tasks/{code}", json={"status": rng.choice((*TASK_STATUSES, *["completed"] * 4))})
        elif roll < 0.85:
            api.patch(f"/tasks/{code}", json={"sprint_code": rng.choice(sprints)})
        elif roll < 0.9:
            api.delete(f"/tasks/{code}")
        else:
            api.patch(f"/sprints/{rng.choice(sprints)}", json={"status": rng.choice(SPRINT_STATUSES)})


def worker_plans(runtime: Any, body: dict[str, Any], events: list[dict[str, Any]]) -> dict[int, list[Any]]:
    """What the live worker's as-of planning (states read from the log per event) says for each match."""
    rule = backtest.draft_rule(body)
    action = rule_registry.actions()[rule.action.name]
    with runtime.read_uow() as uow:
        states = rule_facts.DatabaseStates(uow.session)
        return {event["id"]: [effect.describe() for effect in
                              rule_facts.plan_as_of(states, action, rule.action.params, event)[0]]
                for event in events if evaluate_rules(event, [rule])}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_scan_plans_exactly_what_the_worker_would_plan_as_of_each_event_however_it_is_paged(
        app: Flask, api: Api, runtime: Any, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    random_history(api, seed)
    events = api.events()
    middle = events[len(events) // 2]["timestamp"]
    for body in RULES:
        expected = worker_plans(runtime, body, events)
        assert expected
        whole = {i["event"]["id"]: i["effects"] for page in pages(api, {"rule": body, "limit": 1000})
                 for i in page["items"]}
        assert whole == expected
        late = {i["event"]["id"]: i["effects"] for page in pages(api, {"rule": body, "limit": 1, "from": middle})
                for i in page["items"]}
        assert late == {i: e for i, e in expected.items() if events_by_id(events)[i]["timestamp"] >= middle}
    for streams, sprints in ((3, 1000), (2, 1)):  # states forgotten all the time, rosters kept or forgotten too
        monkeypatch.setattr(backtest_states, "MAX_STREAMS", streams)
        monkeypatch.setattr(backtest_states, "MAX_SPRINTS", sprints)
        for body in RULES:
            assert {i["event"]["id"]: i["effects"] for page in pages(api, {"rule": body, "limit": 1000})
                    for i in page["items"]} == worker_plans(runtime, body, events)


def events_by_id(events: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {event["id"]: event for event in events}


def test_at_the_causation_depth_limit_a_match_is_a_loop_with_nothing_planned(api: Api, runtime: Any) -> None:
    seed(api)
    rule = backtest.draft_rule(DRAFT)

    looped = backtest.backtest(rule, EventFilter(), 0, 1000, runtime.read_uow(), depth_limit=0)
    judged = backtest.backtest(rule, EventFilter(), 0, 1000, runtime.read_uow(), depth_limit=5)

    assert [i["event"]["id"] for i in looped["items"]] == [i["event"]["id"] for i in judged["items"]]
    assert {(i["outcome"], len(i["effects"])) for i in looped["items"]} == {("loop", 0)}
    assert looped["summary"]["effects_by_type"] == {} and judged["summary"]["effects_by_type"]
