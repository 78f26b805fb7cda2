"""``PlainDump`` answers exactly what marshmallow answers, for any value, whatever its type.

Envelopes as the store makes them take the picking path; values of the wrong
type (a number where a string is declared, a bool for an integer, a tuple for
a list, a missing key) must give marshmallow's own answer, so the fast path
can never change a response.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema

from app.api.replay_schemas import HistoryItem
from app.api.schemas import EventOut

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=8),
                    st.floats(allow_nan=False, allow_infinity=False))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=5), inner, max_size=3), max_leaves=8)
strings = st.one_of(st.text(max_size=12), st.none())
integers = st.one_of(st.integers(-2**40, 2**40), st.none())

entities = st.fixed_dictionaries({"type": strings, "id": integers, "code": strings})
envelopes = st.fixed_dictionaries({
    "id": st.integers(1, 2**40), "event_id": st.uuids().map(str), "type": st.text(min_size=1, max_size=20),
    "entity": entities, "sequence": integers, "actor": st.text(max_size=12), "timestamp": st.text(max_size=30),
    "correlation_id": st.uuids().map(str), "correlation_chain": st.lists(st.uuids().map(str), max_size=3),
    "causation_id": strings, "session_key": strings, "priority": st.sampled_from(["P0", "P1", "P2", "P3"]),
    "changes": st.dictionaries(st.text(max_size=6), json_values, max_size=3),
    "data": st.dictionaries(st.text(max_size=6), json_values, max_size=3),
    "hash": st.text(max_size=64), "prev_hash": strings, "hash_scheme": st.sampled_from([1, 2]),
    "archived_at": strings,
})


@st.composite
def tampered(draw: Any) -> dict[str, Any]:
    """An envelope with some values of another type, some keys gone and some keys extra."""
    envelope = dict(draw(envelopes))
    for key in draw(st.lists(st.sampled_from(sorted(envelope)), max_size=3)):
        envelope[key] = draw(json_values | st.tuples(st.text(max_size=3)))
    for key in draw(st.lists(st.sampled_from(sorted(envelope)), max_size=2)):
        envelope.pop(key, None)
    envelope["internal"] = draw(json_values)
    return envelope


def marshmallow_dump(schema: Schema, value: Any, many: bool = False) -> Any:
    return Schema.dump(schema, value, many=many)


def outcome(dump: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """The dump, or the kind of error it raised: a value marshmallow cannot dump must fail alike."""
    try:
        return "dumped", dump(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - compared, not handled
        return "raised", type(exc)


def test_the_event_schemas_take_the_picking_path() -> None:
    assert EventOut().plain_pick() is not None
    assert HistoryItem().plain_pick() is not None


@settings(max_examples=150, deadline=None)
@given(envelopes)
def test_an_envelope_dumps_as_marshmallow_dumps_it(envelope: dict[str, Any]) -> None:
    schema = EventOut()
    assert schema.dump(envelope) == marshmallow_dump(schema, envelope)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(envelopes, tampered()), max_size=4), json_values)
def test_values_of_any_type_dump_as_marshmallow_dumps_them(items: list[dict[str, Any]], state: Any) -> None:
    many = EventOut(many=True)
    assert outcome(many.dump, items) == outcome(marshmallow_dump, many, items, many=True)
    steps = [{"event": item, "state": state if isinstance(state, dict) else None} for item in items]
    history = HistoryItem(many=True)
    assert outcome(history.dump, steps) == outcome(marshmallow_dump, history, steps, many=True)
