"""The composable scopes as callers see them: correlation, session, entity chain, type, actor, range.

Every test runs on a known log of 13 events written at chosen instants
(freezegun drives the service clock), two of them caused by automation: they
join the trigger's correlation chain the way the automation worker makes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from freezegun import freeze_time
from sqlalchemy import select, text, update

from app.domain.events import PlannedEvent
from app.services import rollup_fold
from app.store.event_store import EventMeta, StreamRef, append
from app.store.rollup_shift import add_to_rollups, hour_bucket
from app.store.tables import EVENTS_ARCHIVE, Base, Event, Signal
from tests.support import Api, move_marked_to_archive

WORKFLOW = "6f1c7f7e-0000-4000-8000-000000000001"
DAY1 = "2026-03-02"
DAY2 = "2026-03-03"


def moment(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=UTC)


@contextmanager
def at(when: str) -> Iterator[None]:
    with freeze_time(moment(when)):
        yield


@dataclass
class Dataset:
    """The log as written: ``label -> event id`` in write order, and the entities' stream ids."""

    labels: dict[int, str] = field(default_factory=dict)
    streams: dict[str, str] = field(default_factory=dict)
    signal_ids: dict[str, int] = field(default_factory=dict)

    def names(self, events: list[dict[str, Any]]) -> list[str]:
        return [self.labels[e["id"]] for e in events]

    def by_label(self, api: Api) -> dict[str, dict[str, Any]]:
        return {self.labels[e["id"]]: e for e in api.events()}


def _ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def automation_event(runtime: Any, kind: str, event_type: str, trigger: dict[str, Any], rule: str) -> tuple[int, int]:
    """What a rule's action writes: a new signal whose one event joins the trigger's chain."""
    uow = runtime.uow()
    with uow:
        now = runtime.clock()
        row = Signal(kind=kind, data={"trigger": trigger["event_id"]}, correlation_id=str(uuid.uuid4()),
                     version=0, created_at=now, updated_at=now)
        uow.session.add(row)
        uow.session.flush()
        stream = StreamRef(kind, row.id, None, row.correlation_id, trigger["priority"], row)
        meta = EventMeta(actor=f"automation:{rule}", causation_id=trigger["event_id"], causation_depth=1,
                         correlation_chain=(trigger["correlation_id"], *trigger["correlation_chain"]))
        planned = PlannedEvent(event_type, {"kind": {"before": None, "after": kind}}, {"trigger": trigger["event_id"]})
        [event] = append(uow.session, stream, [planned], meta, now)
        uow.commit()
        return event.id, row.id


def _last(api: Api, **filters: Any) -> dict[str, Any]:
    return api.events(**filters)[-1]


def build_dataset(api: Api, runtime: Any) -> Dataset:
    """13 events over two days; labels name them in write (= id) order."""
    data = Dataset()
    wf = {"X-Correlation-ID": WORKFLOW}
    with at(f"{DAY1}T09:15:00"):
        data.streams["S-1"] = _ok(api.post("/sprints", role="writer", json={"sprint_code": "S-1", "title": "One"}),
                                  201)["correlation_id"]
    with at(f"{DAY1}T09:20:00"):
        data.streams["T-1"] = api.create_task("T-1", "S-1")["correlation_id"]
    with at(f"{DAY1}T09:40:00"):
        body = {"task_code": "T-2", "title": "Two", "sprint_code": "S-1"}
        data.streams["T-2"] = _ok(api.post("/tasks", json=body, headers=wf), 201)["correlation_id"]
    with at(f"{DAY1}T10:05:00"):
        body = {"agent_id": "agent:planner", "session_key": "sess-A", "task_code": "T-1"}
        data.streams["sess-A"] = _ok(api.post("/sessions", role="writer", json=body, headers=wf), 201)["correlation_id"]
    with at(f"{DAY1}T10:30:00"):
        _ok(api.patch("/tasks/T-1", role="writer", json={"status": "blocked"},
                      headers={**wf, "X-Session-Key": "sess-A"}))
        blocked = _last(api, type="orchestration.task.blocked")
    with at(f"{DAY1}T10:30:01"):
        _, data.signal_ids["notification"] = automation_event(
            runtime, "notification", "orchestration.notification.created", blocked, "notify_blocked")
    with at(f"{DAY1}T11:00:00"):
        _ok(api.post("/events", role="writer", json={"type": "custom.deploy", "session_key": "sess-A"}), 201)
    with at(f"{DAY2}T08:00:00"):
        api.update_task("T-2", priority="P0")
        raised = _last(api, type="orchestration.task.priority_changed")
    with at(f"{DAY2}T08:00:01"):
        _, data.signal_ids["alert"] = automation_event(
            runtime, "alert", "orchestration.alert.raised", raised, "alert_p0")
    with at(f"{DAY2}T08:30:00"):
        api.create_task("T-3")
    with at(f"{DAY2}T08:45:00"):
        body = {"agent_id": "agent:planner", "session_key": "sess-B", "sprint_code": "S-1"}
        _ok(api.post("/sessions", role="writer", json=body), 201)
    with at(f"{DAY2}T09:10:00"):
        _ok(api.post("/sessions/sess-A/end", role="writer"))
    names = ["S1.created", "T1.created", "T2.created", "A.started", "T1.status_changed", "T1.blocked",
             "notification", "A.deploy", "T2.priority_changed", "alert", "T3.created", "B.started", "A.ended"]
    events = api.events()
    assert len(events) == len(names)
    data.labels = {e["id"]: name for e, name in zip(events, names, strict=True)}
    return data


@pytest.fixture
def dataset(api: Api, runtime: Any) -> Dataset:
    return build_dataset(api, runtime)


def test_a_correlation_gathers_its_stream_and_every_event_whose_chain_holds_it(api: Api, dataset: Dataset) -> None:
    workflow = api.events(path=f"/events/correlation/{WORKFLOW}")
    task_one = api.events(path=f"/events/correlation/{dataset.streams['T-1']}")
    task_two = api.events(path=f"/events/correlation/{dataset.streams['T-2']}")

    assert dataset.names(workflow) == ["T2.created", "A.started", "T1.status_changed", "T1.blocked", "notification"]
    assert dataset.names(task_one) == ["T1.created", "T1.status_changed", "T1.blocked", "notification"]
    assert dataset.names(task_two) == ["T2.created", "T2.priority_changed", "alert"]
    notification = workflow[-1]
    assert notification["actor"] == "automation:notify_blocked"
    assert notification["causation_id"] == task_one[2]["event_id"]
    assert notification["correlation_chain"] == [dataset.streams["T-1"], WORKFLOW]
    assert api.events(path=f"/events/correlation/{uuid.uuid4()}") == []


def test_a_session_scope_holds_the_sessions_own_events_and_those_recorded_in_it(api: Api, dataset: Dataset) -> None:
    assert dataset.names(api.events(path="/events/session/sess-A")) == [
        "A.started", "T1.status_changed", "T1.blocked", "A.deploy", "A.ended"]
    assert dataset.names(api.events(path="/events/session/sess-B")) == ["B.started"]
    assert api.events(path="/events/session/nobody") == []


def test_an_entity_scope_is_its_own_stream_unless_related_is_asked(api: Api, dataset: Dataset) -> None:
    own = api.events(path="/events/entity/task/T-1")
    related = api.events(path="/events/entity/task/T-1", related="true")

    assert dataset.names(own) == ["T1.created", "T1.status_changed", "T1.blocked"]
    assert dataset.names(related) == [
        "S1.created", "T1.created", "A.started", "T1.status_changed", "T1.blocked", "A.deploy", "A.ended"]


def test_a_sprints_chain_adds_its_tasks_and_the_sessions_attached_to_it_or_them(api: Api, dataset: Dataset) -> None:
    related = api.events(path="/events/entity/sprint/S-1", related="true")

    assert dataset.names(related) == [
        "S1.created", "T1.created", "T2.created", "A.started", "T1.status_changed", "T1.blocked",
        "A.deploy", "T2.priority_changed", "B.started", "A.ended"]
    assert dataset.names(api.events(path="/events/entity/sprint/S-1")) == ["S1.created"]
    assert dataset.names(api.events(path="/events/entity/session/sess-A")) == ["A.started", "A.deploy", "A.ended"]


def test_code_less_entities_raised_by_automation_are_named_by_id(api: Api, dataset: Dataset) -> None:
    notification = dataset.signal_ids["notification"]
    assert dataset.names(api.events(path=f"/events/entity/notification/{notification}")) == ["notification"]
    assert api.get("/events/entity/task/NOPE").status_code == 404
    assert api.get("/events/entity/widget/1").status_code == 404


def test_scopes_combine_with_every_filter_of_the_log(api: Api, dataset: Dataset) -> None:
    in_session = api.events(path="/events/session/sess-A", type="orchestration.task.*")
    chain_by_writer = api.events(path="/events/entity/sprint/S-1", related="true", actor="user:writer",
                                 **{"from": f"{DAY1}T10:00:00Z", "to": f"{DAY2}T09:00:00Z"})
    workflow_tasks = api.events(path=f"/events/correlation/{WORKFLOW}", entity_type="task")

    assert dataset.names(in_session) == ["T1.status_changed", "T1.blocked"]
    assert dataset.names(chain_by_writer) == ["A.started", "T1.status_changed", "T1.blocked", "A.deploy",
                                              "B.started"]
    assert dataset.names(workflow_tasks) == ["T2.created", "T1.status_changed", "T1.blocked"]


def test_type_actor_and_range_filters_combine_on_the_whole_log(api: Api, dataset: Dataset) -> None:
    tasks = api.events(type="orchestration.task.*")
    created = api.events(type="orchestration.task.created")
    admin_tasks_day2 = api.events(type="orchestration.task.*", actor="user:admin", **{"from": DAY2})
    half_open = api.events(**{"from": f"{DAY1}T10:30:00Z", "to": f"{DAY1}T11:00:00Z"})

    assert dataset.names(tasks) == ["T1.created", "T2.created", "T1.status_changed", "T1.blocked",
                                    "T2.priority_changed", "T3.created"]
    assert dataset.names(created) == ["T1.created", "T2.created", "T3.created"]
    assert dataset.names(admin_tasks_day2) == ["T2.priority_changed", "T3.created"]
    assert dataset.names(half_open) == ["T1.status_changed", "T1.blocked", "notification"]


def test_relative_ages_count_back_from_the_service_clock(api: Api, dataset: Dataset) -> None:
    with at(f"{DAY2}T09:30:00"):
        last_two_hours = api.events(**{"from": "2h"})
        day_before = api.events(**{"from": "1d", "to": "2h"})
    assert dataset.names(last_two_hours) == ["T2.priority_changed", "alert", "T3.created", "B.started", "A.ended"]
    assert dataset.names(day_before) == ["T2.created", "A.started", "T1.status_changed", "T1.blocked",
                                         "notification", "A.deploy"]


def test_a_type_prefix_is_literal_and_case_sensitive(api: Api, dataset: Dataset) -> None:
    for kind in ("custom.a_b.x", "custom.axb.y"):
        _ok(api.post("/events", json={"type": kind, "session_key": "sess-B"}), 201)
    # the type grammar is lowercase: an uppercase type is never stored, so never matched
    assert api.post("/events", json={"type": "custom.A_B.z", "session_key": "sess-B"}).status_code == 422

    assert [e["type"] for e in api.events(type="custom.a_b.*")] == ["custom.a_b.x"]
    assert api.events(type="custom.A_B.*") == []
    assert [e["type"] for e in api.events(type="custom.*")] == ["custom.deploy", "custom.a_b.x", "custom.axb.y"]
    assert api.get("/events/stats", query_string={"type": "custom.a_b.*"}).get_json()["by_type"] == {
        "custom.a_b.x": 1}


def test_every_scope_pages_by_keyset_without_gaps_or_repeats(api: Api, dataset: Dataset) -> None:
    for path in ("/events", "/events/entity/sprint/S-1", f"/events/correlation/{WORKFLOW}", "/events/session/sess-A"):
        params = {"related": "true"} if "entity" in path else {}
        whole = _ok(api.get(path, query_string={**params, "limit": 1000}))["items"]
        paged, cursor = [], None
        while True:
            query = {**params, "limit": 2, **({"after": cursor} if cursor else {})}
            body = _ok(api.get(path, query_string=query))
            paged.extend(body["items"])
            if not (cursor := body["next"]):
                break
        assert [e["id"] for e in paged] == [e["id"] for e in whole]


def archive_day_one(runtime: Any) -> None:
    """What the archiver does to rows and rollups, done by hand for these read tests (after the fold
    it runs first: the rows' counts are in the rollups to be moved)."""
    rollup_fold.fold(runtime.uow())
    stamp = moment(f"{DAY2}T12:00:00")
    uow = runtime.uow()
    with uow:
        rows = list(uow.session.scalars(select(Event).where(Event.emitted_at < moment(DAY2))))
        moved: dict[tuple[Any, ...], int] = {}
        for row in rows:
            key = (hour_bucket(row.emitted_at), row.type, row.actor, row.entity_type)
            moved[key + (False,)] = moved.get(key + (False,), 0) - 1
            moved[key + (True,)] = moved.get(key + (True,), 0) + 1
        uow.session.execute(update(Event).where(Event.emitted_at < moment(DAY2)).values(archived_at=stamp))
        add_to_rollups(uow.session, moved)
        uow.commit()
    move_marked_to_archive(runtime)


def test_archived_events_are_left_out_unless_asked_for_everywhere(api: Api, runtime: Any, dataset: Dataset) -> None:
    archive_day_one(runtime)

    hot, everything = api.events(), api.events(include_archived="true")
    hot_stats = _ok(api.get("/events/stats"))
    all_stats = _ok(api.get("/events/stats", query_string={"include_archived": "true"}))

    assert dataset.names(hot) == ["T2.priority_changed", "alert", "T3.created", "B.started", "A.ended"]
    assert len(everything) == 13 and everything[0]["archived_at"] == f"{DAY2}T12:00:00.000000+00:00"
    assert (hot_stats["total"], hot_stats["by_day"]) == (5, {DAY2: 5})
    assert (all_stats["total"], all_stats["by_day"]) == (13, {DAY1: 8, DAY2: 5})
    assert dataset.names(api.events(path="/events/session/sess-A")) == ["A.ended"]


def test_invalid_list_input_is_a_422_naming_the_field(api: Api, dataset: Dataset) -> None:
    cases = [
        ({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"), ({"from": DAY2, "to": DAY1}, "from"), ({"type": "orchestration.*.x"}, "type"),
    ]
    for path in ("/events", f"/events/correlation/{WORKFLOW}", "/events/session/sess-A", "/events/entity/task/T-1"):
        for params, name in cases:
            response = api.get(path, query_string=params)
            assert response.status_code == 422, (path, params)
            assert response.mimetype == "application/problem+json"
            assert name in response.get_json()["errors"], (path, params, response.get_json())


def test_the_migrations_create_exactly_the_tables_the_code_declares(runtime: Any) -> None:
    with runtime.engine.connect() as connection:
        # the archive's monthly partitions are made on demand by the archiver, not declared
        on_demand = {"include_name": lambda name, kind, _parent: not (
            kind == "table" and str(name).startswith(f"{EVENTS_ARCHIVE.name}_"))}
        assert compare_metadata(MigrationContext.configure(connection, opts=on_demand), Base.metadata) == []
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version is not None
