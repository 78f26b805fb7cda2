"""A stream whose middle was purged: created as P0 (kept forever), then demoted, its P2
events archived and purged. Validation, replay, history and reconstruction must all
bridge the hole with the purge's record and the archive-time snapshot."""

from __future__ import annotations

from typing import Any

from freezegun import freeze_time

from tests.integration.test_archive import NOW, days_ago, run_archive, run_purge
from tests.support import Api


def purge_the_middle_of_a_stream(api: Api, runtime: Any) -> dict[str, Any]:
    with freeze_time(days_ago(500)):
        task = api.create_task("T-MID", priority="P0")
    with freeze_time(days_ago(499)):
        api.update_task("T-MID", priority="P2")
    with freeze_time(days_ago(498)):
        api.update_task("T-MID", title="renamed")
    with freeze_time(days_ago(10)):
        api.update_task("T-MID", progress=10)
    with freeze_time(NOW):
        run_archive(runtime)
        assert run_purge(runtime).events == 2
    left = api.events(path="/events/entity/task/T-MID", include_archived="true")
    assert [e["sequence"] for e in left] == [1, 4]
    return task


def test_a_purged_middle_keeps_the_chain_valid_and_replay_matching_the_live_row(api: Api, runtime: Any) -> None:
    task = purge_the_middle_of_a_stream(api, runtime)
    report = api.get(f"/events/correlation/{task['correlation_id']}/validate").get_json()
    assert report["valid"] is True, report["problems"]
    replay = api.post("/events/replay", json={"correlation_id": task["correlation_id"]}).get_json()
    assert replay["matches_live"] is True
    assert replay["final_states"][0]["state"]["title"] == "renamed"


def test_history_bridges_a_purged_middle_and_refuses_instants_inside_it(api: Api, runtime: Any) -> None:
    purge_the_middle_of_a_stream(api, runtime)
    live = api.get("/tasks/T-MID").get_json()
    items = api.get("/tasks/T-MID/history").get_json()["items"]
    assert [(i["event"]["sequence"], i["state"]["priority"], i["state"]["title"]) for i in items] == [
        (1, "P0", "Task T-MID"), (4, "P2", "renamed")]
    assert items[-1]["state"]["progress"] == live["progress"] == 10
    inside = api.get("/tasks/T-MID/history", query_string={"at": days_ago(498.5).isoformat()})
    assert inside.status_code == 404 and "purged" in inside.get_json()["detail"]
    # sequence 2's moment was purged with it: no instant before the hole's end can be answered
    assert api.get("/tasks/T-MID/history", query_string={"at": days_ago(499.5).isoformat()}).status_code == 404
    resumed = api.get("/tasks/T-MID/history", query_string={"at": days_ago(400).isoformat()}).get_json()
    assert (resumed["version"], resumed["priority"], resumed["title"]) == (3, "P2", "renamed")
    after = api.get("/tasks/T-MID/history", query_string={"at": days_ago(5).isoformat()}).get_json()
    assert (after["version"], after["title"], after["progress"]) == (4, "renamed", 10)
