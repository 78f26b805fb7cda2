"""Every layer agrees with the stream-type registry: one declaration per type, read everywhere."""

from __future__ import annotations

from datetime import UTC, datetime

from app.domain import entities, events, rule_actions
from app.domain.stream_types import ENTITY_TYPES, SIGNAL, STREAM_TYPES, TRACKED, stream_type
from app.services import tracking
from app.store.stream_registry import STORED, stored
from tests.unit.fakes import FakeUnitOfWork


def test_every_declared_type_has_its_store_half_and_nothing_else_does() -> None:
    assert set(STORED) == set(STREAM_TYPES)
    assert all(STORED[t].declared is t for t in STREAM_TYPES)


def test_each_table_has_the_code_column_and_the_stream_columns() -> None:
    for declared, kind in STORED.items():
        columns = set(kind.model.__table__.columns.keys())
        assert {"id", "correlation_id", "version", "last_hash"} <= columns, declared.name
        if declared.code_field is not None:
            assert declared.code_field in columns, declared.name


def test_each_projection_has_exactly_the_declared_fields() -> None:
    uow = FakeUnitOfWork()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with uow:
        for declared in STREAM_TYPES:
            name = declared.name if declared is not SIGNAL else "notification"
            code = None if declared.code_field is None else "C-1"
            fields = {"kind": name, "data": {}} if declared is SIGNAL else {"status": declared.statuses[0]}
            row = uow.streams[name].add(code, fields, now)
            assert tuple(stored(name).state(row)) == declared.fields, declared.name


def test_the_vocabularies_the_domain_checks_are_the_declared_ones() -> None:
    assert stream_type("sprint").statuses == entities.SPRINT_STATUSES
    assert stream_type("task").statuses == entities.TASK_STATUSES
    assert stream_type("session").statuses == entities.SESSION_STATUSES
    assert {name: t.settable for name, t in ENTITY_TYPES.items() if t.settable} == rule_actions.SETTABLE
    assert set(rule_actions.APPENDABLE_ENTITIES) == set(ENTITY_TYPES)


def test_granular_events_and_tracking_cover_the_declared_types() -> None:
    assert set(events.GRANULAR_FIELDS) == set(ENTITY_TYPES)
    assert set(tracking.KINDS) == set(TRACKED)
    for name in TRACKED:
        assert set(events.GRANULAR_FIELDS[name]) <= set(ENTITY_TYPES[name].fields)


def test_an_undeclared_name_is_a_signal_kind() -> None:
    assert stream_type("alert") is SIGNAL and stream_type("custom.deploy") is SIGNAL
    assert stream_type("task") is ENTITY_TYPES["task"]
