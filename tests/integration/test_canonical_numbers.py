"""What is written is what is read, and hashes survive storage (RFC 8785 + I-JSON).

JSONB rewrites numbers (``1e+20`` → ``100000000000000000000``, ``-0.0`` → ``0``):
before RFC 8785 a stored event could stop matching its own hash. Here, for any
JSON value the API accepts, the write's answer equals every later read and the
chain validates; values the rule refuses are 422; and events hashed the old way
(scheme 1) still verify beside new ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from app.domain.hashing import CURRENT, JCS, LEGACY, event_hash
from app.domain.jsonvalues import SAFE_INTEGER
from app.services import archive
from app.store import archive_files
from app.store.event_store import envelope
from app.store.tables import Event, Task
from tests.support import Api

TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
NUMBERS = st.integers(-SAFE_INTEGER, SAFE_INTEGER) | st.floats(
    -float(SAFE_INTEGER), float(SAFE_INTEGER), allow_nan=False, allow_infinity=False)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | NUMBERS | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def rendered(value: Any) -> str:
    """Bytes as a client compares them after parsing: ``1`` and ``1.0`` differ, key order does not."""
    return json.dumps(value, sort_keys=True)


@pytest.mark.postgres
def test_any_accepted_value_reads_back_as_written_and_its_stream_validates(pg_app: tuple[Flask, Api]) -> None:
    _, api = pg_app
    task = api.create_task("T-PROP")
    assert api.post("/sessions", json={"agent_id": "agent:p", "session_key": "prop"}).status_code == 201

    @given(value=JSON_VALUES)
    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def written_equals_read(value: Any) -> None:
        posted = api.post("/events", json={"type": "custom.prop", "session_key": "prop", "data": {"v": value}})
        assert posted.status_code == 201, posted.get_json()
        answer = posted.get_json()
        read = api.get(f"/events/{answer['id']}").get_json()
        assert rendered(read["data"]) == rendered(answer["data"])
        assert event_hash(read) == read["hash"] and read["hash_scheme"] == CURRENT

        patched = api.patch("/tasks/T-PROP", json={"metadata": {"v": value, "n": answer["id"]}})
        assert patched.status_code == 200, patched.get_json()
        later = api.get("/tasks/T-PROP").get_json()
        assert rendered(later["metadata"]) == rendered(patched.get_json()["metadata"])
        event = api.get("/events/entity/task/T-PROP", query_string={"limit": 1000}).get_json()["items"][-1]
        assert rendered(event["changes"]["metadata"]["after"]) == rendered(later["metadata"])

    written_equals_read()
    for correlation in (task["correlation_id"], api.get("/sessions/prop").get_json()["correlation_id"]):
        report = api.get(f"/events/correlation/{correlation}/validate").get_json()
        assert report["valid"], report["problems"][:3]


@pytest.mark.postgres
def test_numbers_jsonb_would_rewrite_are_normalised_or_refused(pg_app: tuple[Flask, Api]) -> None:
    _, api = pg_app
    created = api.post("/sprints", data='{"sprint_code": "S-N", "title": "t", "metadata": '
                       '{"zero": -0.0, "whole": 1.0, "thousand": 1e3, "small": 1e-7, "max": 9007199254740991}}',
                       content_type="application/json")
    assert created.status_code == 201
    expected = {"zero": 0, "whole": 1, "thousand": 1000, "small": 1e-7, "max": SAFE_INTEGER}
    assert rendered(created.get_json()["metadata"]) == rendered(expected)
    assert rendered(api.get("/sprints/S-N").get_json()["metadata"]) == rendered(expected)
    for refused in ("1e20", "100000000000000000000", "9007199254740992", "-1e300", "1e309"):
        response = api.post("/events", data='{"type": "custom.n", "entity_type": "sprint", "entity_code": "S-N", '
                            f'"data": {{"x": {refused}}}}}', content_type="application/json")
        assert response.status_code == 422 and "data.x" in response.get_json()["errors"], refused
    rule = {"name": "numbers", "trigger": {"type": "custom.*", "conditions": [{"path": "data.x", "op": "eq",
                                                                                 "value": -0.0}]},
            "action": {"name": "set_field", "params": {"field": "progress", "value": 5.0}}}
    body = api.post("/rules", json=rule).get_json()
    assert body["trigger"]["conditions"][0]["value"] == 0 and rendered(body["action"]["params"]["value"]) == "5"
    report = api.get(f"/events/correlation/{created.get_json()['correlation_id']}/validate").get_json()
    assert report["valid"]


def test_a_free_json_field_is_limited_to_64_kib(api: Api) -> None:
    big = {"blob": "x" * (64 * 1024)}
    assert api.post("/tasks", json={"task_code": "T-BIG", "title": "t", "metadata": big}).status_code == 422
    assert api.post("/tasks", json={"task_code": "T-BIG", "title": "t", "metadata": {"blob": "x" * 60000}}).status_code == 201
    refused = api.post("/events", json={"type": "custom.big", "entity_type": "task", "entity_code": "T-BIG", "data": big})
    assert refused.status_code == 422 and "data" in refused.get_json()["errors"]


def _rehash_as_legacy(runtime: Any, entity_type: str, entity_id: int) -> None:
    """Turn a stream into what rows written before RFC 8785 look like: scheme 1 hashes, chained."""
    with runtime.uow() as uow:
        rows = list(uow.session.scalars(select(Event).where(Event.entity_type == entity_type,
                                                            Event.entity_id == entity_id).order_by(Event.sequence)))
        prev = None
        for row in rows:
            legacy = {**envelope(row), "prev_hash": prev, "hash_scheme": LEGACY}
            row.prev_hash, row.hash_scheme = prev, LEGACY
            row.hash = prev = event_hash(legacy)
        uow.session.execute(update(Task).where(Task.id == entity_id).values(last_hash=prev))
        uow.commit()


def test_events_hashed_the_old_way_still_verify_beside_new_ones(app: Flask, api: Api, runtime: Any) -> None:
    task = api.create_task("T-OLD", metadata={"ratio": 1e-7})  # "1e-07" in scheme 1, "1e-7" in RFC 8785
    api.update_task("T-OLD", title="renamed")
    _rehash_as_legacy(runtime, "task", task["id"])
    old = api.events(path="/events/entity/task/T-OLD")
    assert {e["hash_scheme"] for e in old} == {LEGACY}
    assert all(event_hash(e) == e["hash"] for e in old) and event_hash(old[0], JCS) != old[0]["hash"]

    api.update_task("T-OLD", progress=40, metadata={"ratio": 0.25})  # new events chain onto legacy ones
    mixed = api.events(path="/events/entity/task/T-OLD")
    assert [e["hash_scheme"] for e in mixed] == [LEGACY, LEGACY, JCS, JCS]
    assert mixed[2]["prev_hash"] == old[-1]["hash"]
    assert api.get(f"/events/correlation/{task['correlation_id']}/validate").get_json()["valid"]
    cli = app.test_cli_runner()
    assert cli.invoke(args=["orchestration", "verify-chain", "--correlation", task["correlation_id"]]).exit_code == 0
    replayed = api.post("/events/replay", json={"correlation_id": task["correlation_id"], "dry_run": True}).get_json()
    assert replayed["validation"]["valid"] and replayed["matches_live"]

    lines = _archive_everything(runtime)  # the job re-reads its file and checks every hash before committing
    assert [line["hash_scheme"] for line in lines] == [LEGACY, LEGACY, JCS, JCS]
    unmarked = [{k: v for k, v in line.items() if k != "hash_scheme"} for line in lines[:2]]
    assert all(event_hash(line) == line["hash"] for line in unmarked)  # files from before schemes: legacy
    assert api.get(f"/events/correlation/{task['correlation_id']}/validate").get_json()["valid"]


def _archive_everything(runtime: Any) -> list[dict[str, Any]]:
    cold = archive.cold_storage(runtime.settings, runtime.engine)
    archive.archive_events(archive.ArchiveJob(older_than="0d"), cold, runtime.uow(), runtime.read_uow(),
                           runtime.clock, None)
    files = sorted(Path(runtime.settings.archive_dir).rglob("*.jsonl.gz"))
    return [line for path in files for line in archive_files.read(path)[0]]


def test_tampering_is_still_caught_whatever_the_scheme(api: Api, runtime: Any) -> None:
    task = api.create_task("T-TAMPER", metadata={"ratio": 1e-7})
    _rehash_as_legacy(runtime, "task", task["id"])
    api.update_task("T-TAMPER", title="new")
    with runtime.uow() as uow:
        uow.session.execute(update(Event).where(Event.entity_id == task["id"], Event.sequence == 2)
                            .values(data={"injected": 1}))
        uow.session.execute(update(Event).where(Event.entity_id == task["id"], Event.sequence == 1)
                            .values(hash_scheme=JCS))  # claiming the other scheme does not help
        uow.commit()
    report = api.get(f"/events/correlation/{task['correlation_id']}/validate").get_json()
    assert not report["valid"]
    assert sorted(p["sequence"] for p in report["problems"] if p["kind"] == "hash_mismatch") == [1, 2]


@pytest.fixture
def pg_app(pg_url: str, tmp_path: Path) -> Any:
    from app import create_app
    from app.services import tokens
    from tests.conftest import make_settings
    from tests.support import wipe

    flask_app = create_app(make_settings(pg_url, tmp_path))
    runtime = flask_app.extensions["orchestration"]
    wipe(runtime.engine)
    issued = {role: tokens.create_token(f"user:{role}", role, runtime.uow(), runtime.clock) for role in tokens.ROLES}
    yield flask_app, Api(flask_app.test_client(), issued)
    runtime.engine.dispose()
