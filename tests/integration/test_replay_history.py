"""History and state at an instant: every state with its event, pages, snapshots, deletes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from freezegun import freeze_time

from app.domain.events import PlannedEvent
from app.services import replay
from app.store import repositories as repo
from app.store import snapshots
from app.store.event_store import EventMeta, append
from tests.integration.replay_helpers import count, execute, fields_of, history, snapshot_every
from tests.support import Api, move_marked_to_archive

T0 = datetime.fromisoformat("2026-11-28T10:00:00+00:00")


def build_task(api: Api) -> list[dict[str, Any]]:
    """A task changed four times, a minute apart; returns the API's answer after each change."""
    with freeze_time(T0, tick=False) as frozen:
        answers = [api.create_sprint("S-H")]
        answers = [api.create_task("T-H", "S-H", assignee="agent:a")]
        for patch in ({"status": "in_progress"}, {"progress": 40, "title": "Renamed"},
                      {"metadata": {"k": [1]}}, {"status": "blocked", "priority": "P1"}):
            frozen.tick(timedelta(minutes=1))
            answers.append(api.update_task("T-H", **patch))
    return answers


def at(api: Api, path: str, moment: str) -> Any:
    return api.get(path, role="reader", query_string={"at": moment})


def test_history_gives_each_event_of_the_stream_with_the_state_it_produced(api: Api) -> None:
    answers = build_task(api)
    api.patch("/tasks/T-H", json={"progress": 101})  # rejected: validation_failed stands outside the stream

    items = history(api, "/tasks/T-H/history")

    assert [i["event"]["sequence"] for i in items] == list(range(1, answers[-1]["version"] + 1))
    by_version = {a["version"]: fields_of("task", a) for a in answers}
    for item in items:
        state = item.pop("state")
        assert state.pop("deleted") is False
        if item["event"]["sequence"] in by_version:
            assert state == by_version[item["event"]["sequence"]]
    assert items[0]["event"]["type"] == "orchestration.task.created"


def test_pages_of_history_carry_the_same_states_as_one_page(api: Api) -> None:
    build_task(api)
    assert history(api, "/tasks/T-H/history", limit=2) == history(api, "/tasks/T-H/history", limit=1000)


def test_at_an_events_exact_timestamp_includes_it_and_between_events_keeps_the_earlier_state(api: Api) -> None:
    answers = build_task(api)
    second = answers[1]

    exact = at(api, "/tasks/T-H/history", second["updated_at"])
    just_before = at(api, "/tasks/T-H/history", (datetime.fromisoformat(second["updated_at"])
                                                 - timedelta(microseconds=1)).isoformat())
    between = at(api, "/tasks/T-H/history", (datetime.fromisoformat(second["updated_at"])
                                             + timedelta(seconds=30)).isoformat())

    assert exact.status_code == 200
    assert fields_of("task", exact.get_json()) == fields_of("task", second)
    assert exact.get_json()["version"] == second["version"]
    assert exact.get_json()["as_of"] == second["updated_at"]
    assert between.get_json() == exact.get_json()
    assert fields_of("task", just_before.get_json()) == fields_of("task", answers[0])


def test_at_names_the_last_event_applied(api: Api) -> None:
    answers = build_task(api)
    state = at(api, "/tasks/T-H/history", answers[2]["updated_at"]).get_json()
    [event] = [i["event"] for i in history(api, "/tasks/T-H/history") if i["event"]["sequence"] == state["version"]]
    assert state["as_of_event_id"] == event["event_id"]
    assert state["as_of"] == event["timestamp"]
    assert state["deleted"] is False


def test_before_the_entity_existed_and_for_an_unknown_code_the_answer_is_404(api: Api) -> None:
    answers = build_task(api)
    created = datetime.fromisoformat(answers[0]["created_at"])
    before = at(api, "/tasks/T-H/history", (created - timedelta(microseconds=1)).isoformat())
    assert before.status_code == 404
    assert before.headers["Content-Type"] == "application/problem+json"
    assert at(api, "/tasks/NOPE/history", answers[0]["created_at"]).status_code == 404
    assert api.get("/sprints/NOPE/history", role="reader").status_code == 404


def test_at_accepts_what_from_and_to_accept(api: Api) -> None:
    answers = build_task(api)
    with freeze_time(T0 + timedelta(days=3), tick=False):
        for moment in ("2026-11-30", "1h", "2026-11-28T10:04:00Z"):
            assert at(api, "/tasks/T-H/history", moment).get_json()["version"] == answers[-1]["version"]
        assert at(api, "/tasks/T-H/history", "5d").status_code == 404
    bad = at(api, "/tasks/T-H/history", "yesterday")
    assert bad.status_code == 422 and "at" in bad.get_json()["errors"]
    assert api.get("/tasks/T-H/history", role="reader", query_string={"at": "1h", "after": "x"}).status_code == 422


def test_a_deleted_entity_keeps_a_readable_history_and_says_it_was_deleted(api: Api) -> None:
    with freeze_time(T0, tick=False) as frozen:
        sprint = api.create_sprint("S-GONE", metadata={"a": 1})
        frozen.tick(timedelta(minutes=1))
        assert api.delete("/sprints/S-GONE").status_code == 204
    items = history(api, "/sprints/S-GONE/history")
    assert [i["state"]["deleted"] for i in items] == [False, True]
    assert fields_of("sprint", items[1]["state"]) == fields_of("sprint", sprint)
    later = at(api, "/sprints/S-GONE/history", (T0 + timedelta(hours=1)).isoformat()).get_json()
    assert later["deleted"] is True and later["title"] == sprint["title"] and later["version"] == 2
    assert fields_of("sprint", at(api, "/sprints/S-GONE/history", T0.isoformat()).get_json()) == fields_of(
        "sprint", sprint)


def test_history_and_at_agree_with_reconstruct_state(api: Api, runtime: Any) -> None:
    build_task(api)
    task_id = api.get("/tasks/T-H", role="reader").get_json()["id"]
    for item in history(api, "/tasks/T-H/history"):
        moment = datetime.fromisoformat(item["event"]["timestamp"])
        direct = replay.reconstruct_state("task", task_id, moment, runtime.read_uow())
        assert at(api, "/tasks/T-H/history", item["event"]["timestamp"]).get_json() == direct
        if direct["version"] == item["event"]["sequence"]:
            assert {k: direct[k] for k in item["state"]} == item["state"]


def test_snapshots_every_few_events_change_no_answer(api: Api, runtime: Any) -> None:
    snapshot_every(runtime, 3)
    build_task(api)
    api.update_task("T-H", progress=90)
    task_id = api.get("/tasks/T-H", role="reader").get_json()["id"]
    sequences = [int(s) for s in execute(runtime, "SELECT sequence FROM orchestration_snapshots "
                                                  "WHERE entity_type = 'task' ORDER BY sequence").scalars()]
    assert sequences == [3, 6, 9]
    moments = [i["event"]["timestamp"] for i in history(api, "/tasks/T-H/history")]
    with_snapshots = ([at(api, "/tasks/T-H/history", m).get_json() for m in moments],
                      history(api, "/tasks/T-H/history", limit=2))

    execute(runtime, "DELETE FROM orchestration_snapshots")

    assert ([at(api, "/tasks/T-H/history", m).get_json() for m in moments],
            history(api, "/tasks/T-H/history", limit=2)) == with_snapshots
    with runtime.read_uow() as uow:
        assert snapshots.latest(uow.session, "task", task_id) is None


def test_reconstruction_starts_from_a_snapshot_when_older_events_are_gone(api: Api, runtime: Any) -> None:
    answers = build_task(api)
    task_id = answers[0]["id"]
    fourth = at(api, "/tasks/T-H/history", answers[2]["updated_at"]).get_json()
    with runtime.uow() as uow:
        snapshots.take(uow.session, "task", task_id, 4, T0)
        uow.commit()
    execute(runtime, "DELETE FROM orchestration_outbox")
    execute(runtime, "DELETE FROM orchestration_events WHERE entity_type = 'task' AND sequence <= 4")

    latest = at(api, "/tasks/T-H/history", answers[-1]["updated_at"]).get_json()
    assert fields_of("task", latest) == fields_of("task", answers[-1])
    assert at(api, "/tasks/T-H/history", answers[2]["updated_at"]).get_json() == fourth
    assert fourth["version"] == 4
    items = history(api, "/tasks/T-H/history")
    assert items[0]["event"]["sequence"] == 5
    assert fields_of("task", items[-1]["state"]) == fields_of("task", answers[-1])


def test_archived_events_are_listed_on_request_and_always_count_in_the_states(api: Api, runtime: Any) -> None:
    build_task(api)
    execute(runtime, "UPDATE orchestration_events SET archived_at = emitted_at WHERE sequence IN (2, 3)")
    move_marked_to_archive(runtime)
    hot = history(api, "/tasks/T-H/history")
    everything = history(api, "/tasks/T-H/history", include_archived="true")
    assert [i["event"]["sequence"] for i in hot] == [1, 4, 5, 6, 7, 8]
    assert [i for i in everything if i["event"]["archived_at"] is None] == hot
    assert [i["event"]["sequence"] for i in everything] == list(range(1, 9))
    assert everything[3]["state"] == hot[1]["state"]


def test_appended_events_take_a_snapshot_in_their_own_transaction(api: Api, runtime: Any) -> None:
    snapshot_every(runtime, 2)
    api.create_task("T-SNAP")
    assert count(runtime, "orchestration_snapshots") == 0
    with runtime.uow() as uow:
        row = repo.find_task(uow.session, "T-SNAP", lock=True)
        planned = [PlannedEvent("custom.note", data={"n": n}) for n in range(3)]
        append(uow.session, repo.stream_of("task", row), planned, EventMeta(actor="user:test"), T0)
        uow.session.rollback()
    assert count(runtime, "orchestration_snapshots") == 0
    api.update_task("T-SNAP", title="two")
    [(sequence, state)] = execute(runtime, "SELECT sequence, state FROM orchestration_snapshots").all()
    assert sequence == 2
    assert (state if isinstance(state, dict) else __import__("json").loads(state))["title"] == "two"


def test_history_needs_a_token(api: Api) -> None:
    build_task(api)
    assert api.get("/tasks/T-H/history", role=None).status_code == 401
