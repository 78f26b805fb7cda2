"""Chain validation over the API and the CLI: untouched chains are valid, damage is named."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from flask import Flask

from app.store import snapshots
from app.store.tables import ArchiveManifest
from tests.integration.replay_helpers import execute
from tests.support import Api


def task_with_history(api: Api, code: str = "T-I") -> dict[str, Any]:
    """A task with five events: created, status, progress, title, assignee."""
    api.create_task(code)
    api.update_task(code, status="in_progress")
    api.update_task(code, progress=50)
    api.update_task(code, title="Renamed")
    return api.update_task(code, assignee="agent:coder")


def validate(api: Api, correlation_id: str) -> dict[str, Any]:
    response = api.get(f"/events/correlation/{correlation_id}/validate", role="reader")
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def found(report: dict[str, Any]) -> list[tuple[str, int | None]]:
    return [(p["kind"], p["sequence"]) for p in report["problems"]]


def event_id_at(runtime: Any, entity_id: int, sequence: int) -> str:
    return str(execute(runtime, "SELECT event_id FROM orchestration_events WHERE entity_type = 'task' "
                                "AND entity_id = :e AND sequence = :s", e=entity_id, s=sequence).scalar_one())


def test_an_untouched_chain_is_valid_and_counts_its_events_and_streams(api: Api) -> None:
    task = task_with_history(api)
    assert validate(api, task["correlation_id"]) == {
        "correlation_id": task["correlation_id"], "valid": True, "events": 5, "streams": 1, "problems": []}


def test_a_workflow_chain_checks_each_stream_it_touches_from_its_first_event(api: Api) -> None:
    api.create_task("T-W")
    api.create_sprint("S-W")
    chain = str(uuid.uuid4())
    api.patch("/tasks/T-W", json={"status": "blocked"}, headers={"X-Correlation-ID": chain})
    api.patch("/sprints/S-W", json={"title": "x"}, headers={"X-Correlation-ID": chain})
    api.patch("/tasks/T-W", json={"progress": 5})  # after the workflow: not part of it
    report = validate(api, chain)
    assert (report["valid"], report["streams"], report["events"]) == (True, 2, 3 + 2)


def test_an_unknown_correlation_is_404(api: Api) -> None:
    assert api.get(f"/events/correlation/{uuid.uuid4()}/validate").status_code == 404
    assert api.get("/events/correlation/not-a-uuid/validate").status_code == 404


def test_archived_events_still_count_and_keep_the_chain_valid(api: Api, runtime: Any) -> None:
    task = task_with_history(api)
    execute(runtime, "UPDATE orchestration_events SET archived_at = emitted_at WHERE sequence <= 3")
    assert validate(api, task["correlation_id"])["events"] == 5
    assert validate(api, task["correlation_id"])["valid"] is True


def test_opening_events_deleted_behind_a_snapshot_are_missing_unless_a_purge_recorded_them(
        app: Flask, api: Api, runtime: Any) -> None:
    """A snapshot does not vouch for a missing prefix: only a purged archive manifest does."""
    task = task_with_history(api)
    task_with_history(api, "T-KEPT")
    with runtime.uow() as uow:
        head = snapshots.take(uow.session, "task", task["id"], 3, runtime.clock())
        assert head is not None
        uow.session.add(ArchiveManifest(
            path="2026/01/01/1-3.jsonl.gz", event_count=3, first_id=1, last_id=3, sha256="0" * 64,
            stream_heads={f"task:{task['id']}": {"sequence": 3, "hash": head.last_hash, "event_id": head.last_event_id}},
            created_at=runtime.clock(), purged_at=None))
        uow.commit()
    execute(runtime, "DELETE FROM orchestration_outbox")
    execute(runtime, "DELETE FROM orchestration_events WHERE entity_id = :e AND sequence <= 3", e=task["id"])
    assert found(validate(api, task["correlation_id"])) == [("missing_created", 1)]

    execute(runtime, "UPDATE orchestration_archive_manifests SET purged_at = created_at")
    assert validate(api, task["correlation_id"])["valid"] is True
    everything = app.test_cli_runner().invoke(args=["orchestration", "verify-chain", "--all"])
    assert everything.exit_code == 0 and "7 events in 2 streams: valid" in everything.output

    execute(runtime, "UPDATE orchestration_archive_manifests SET stream_heads = :h",
            h=json.dumps({f"task:{task['id']}": {"sequence": 3, "hash": "f" * 64, "event_id": "x"}}))
    assert found(validate(api, task["correlation_id"])) == [("hash_mismatch", 4)]


def test_a_rejected_change_outside_the_stream_is_checked_by_its_own_hash(api: Api, runtime: Any) -> None:
    task = task_with_history(api)
    assert api.patch("/tasks/T-I", json={"progress": 500}).status_code == 422
    assert validate(api, task["correlation_id"])["valid"] is True
    execute(runtime, "UPDATE orchestration_events SET actor = 'user:mallory' WHERE sequence IS NULL")
    report = validate(api, task["correlation_id"])
    assert found(report) == [("hash_mismatch", None)]


def test_the_last_event_removed_is_a_gap_the_entity_row_reveals(api: Api, runtime: Any) -> None:
    task = task_with_history(api)
    execute(runtime, "DELETE FROM orchestration_outbox")
    execute(runtime, "DELETE FROM orchestration_events WHERE entity_type = 'task' AND sequence = 5")
    assert found(validate(api, task["correlation_id"])) == [("gap", 5)]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
class TestTamperingOnPostgres:
    """Edits straight in the database, as someone with SQL access would make them."""

    def test_an_edited_column_is_a_hash_mismatch_at_that_event(self, api: Api, runtime: Any) -> None:
        task, other = task_with_history(api), task_with_history(api, "T-OTHER")
        execute(runtime, """UPDATE orchestration_events SET data = '{"forged": true}'::jsonb
                            WHERE entity_id = :e AND entity_type = 'task' AND sequence = 3""", e=task["id"])
        report = validate(api, task["correlation_id"])
        assert report["valid"] is False
        assert found(report) == [("hash_mismatch", 3)]
        assert report["problems"][0]["entity"] == {"type": "task", "id": task["id"], "code": "T-I"}
        assert report["problems"][0]["event_id"] == event_id_at(runtime, task["id"], 3)
        assert validate(api, other["correlation_id"])["valid"] is True

    def test_a_deleted_event_is_a_gap_at_its_sequence(self, api: Api, runtime: Any) -> None:
        task, other = task_with_history(api), task_with_history(api, "T-OTHER")
        execute(runtime, "DELETE FROM orchestration_events WHERE entity_id = :e AND entity_type = 'task' "
                         "AND sequence = 2", e=task["id"])
        assert found(validate(api, task["correlation_id"])) == [("gap", 2)]
        assert validate(api, other["correlation_id"])["valid"] is True

    def test_two_swapped_sequences_are_out_of_order_and_fail_their_hashes(self, api: Api, runtime: Any) -> None:
        task, other = task_with_history(api), task_with_history(api, "T-OTHER")
        ids = {s: event_id_at(runtime, task["id"], s) for s in (2, 3)}
        for sequence, target in ((2, -2), (3, 2), (-2, 3)):  # through a free value: UNIQUE(entity, sequence)
            execute(runtime, "UPDATE orchestration_events SET sequence = :t WHERE entity_id = :e "
                             "AND entity_type = 'task' AND sequence = :s", t=target, e=task["id"], s=sequence)
        problems = validate(api, task["correlation_id"])["problems"]
        assert {(p["kind"], p["sequence"], p["event_id"]) for p in problems if p["kind"] == "out_of_order"} == {
            ("out_of_order", 2, ids[3]), ("out_of_order", 3, ids[2])}
        assert {p["sequence"] for p in problems if p["kind"] == "hash_mismatch"} >= {2, 3}
        assert {p["kind"] for p in problems} == {"out_of_order", "hash_mismatch"}
        assert validate(api, other["correlation_id"])["valid"] is True


def test_verify_chain_exits_zero_on_a_valid_chain_and_one_naming_the_first_broken_event(
        app: Flask, api: Api, runtime: Any) -> None:
    task = task_with_history(api)
    cli = app.test_cli_runner()
    ok = cli.invoke(args=["orchestration", "verify-chain", "--correlation", task["correlation_id"]])
    assert ok.exit_code == 0 and "5 events in 1 streams: valid" in ok.output

    execute(runtime, "UPDATE orchestration_events SET actor = 'user:mallory' WHERE sequence = 4")
    broken = cli.invoke(args=["orchestration", "verify-chain", "--correlation", task["correlation_id"]])

    assert broken.exit_code == 1
    assert "first broken event: task T-I" in broken.output
    assert event_id_at(runtime, task["id"], 4) in broken.output and "hash_mismatch" in broken.output


def test_verify_chain_all_checks_every_stream(app: Flask, api: Api, runtime: Any) -> None:
    task_with_history(api)
    api.create_sprint("S-ALL")
    api.post("/sessions", json={"agent_id": "agent:a", "session_key": "sess-all"})
    cli = app.test_cli_runner()
    ok = cli.invoke(args=["orchestration", "verify-chain", "--all"])
    assert ok.exit_code == 0, ok.output
    assert "7 events in 3 streams: valid" in ok.output

    execute(runtime, "UPDATE sprints SET version = 3")
    broken = cli.invoke(args=["orchestration", "verify-chain", "--all"])
    assert broken.exit_code == 1 and "gap" in broken.output and "sprint S-ALL" in broken.output


def test_verify_chain_needs_exactly_one_scope(app: Flask) -> None:
    cli = app.test_cli_runner()
    assert cli.invoke(args=["orchestration", "verify-chain"]).exit_code == 2
    assert cli.invoke(args=["orchestration", "verify-chain", "--all", "--correlation", "x"]).exit_code == 2
    unknown = cli.invoke(args=["orchestration", "verify-chain", "--correlation", str(uuid.uuid4())])
    assert unknown.exit_code == 1 and "no event belongs" in unknown.output
