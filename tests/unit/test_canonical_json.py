"""The number rule, the hash schemes, the type grammar and the page budget, without I/O."""

from __future__ import annotations

import json

import pytest

from app.domain import jsonvalues
from app.domain.events import OWNED_EXTERNAL_TYPES, TYPE_FILTER_PATTERN, is_event_type, is_external_type
from app.domain.hashing import JCS, LEGACY, canonical_bytes, event_hash, jcs
from app.domain.paging import take_within_budget


@pytest.mark.parametrize(("given", "stored"), [
    (-0.0, 0), (1.0, 1), (2e3, 2000), (1e-7, 1e-7), (0.1, 0.1), (9007199254740991, 9007199254740991),
    (-9007199254740991.0, -9007199254740991), (True, True), ({"a": [1.5, -0.0]}, {"a": [1.5, 0]}),
])
def test_numbers_are_normalised_to_what_rfc_8785_renders(given: object, stored: object) -> None:
    normalised = jsonvalues.normalise(given)
    assert json.dumps(normalised) == json.dumps(stored)
    assert jcs(normalised) == jcs(given)  # normalising never changes what is hashed


@pytest.mark.parametrize("refused", [1e20, 2**53, -(2**53), 9007199254740992.0, float("inf"), float("nan"), 1e300])
def test_numbers_outside_i_json_are_refused(refused: float) -> None:
    assert jsonvalues.number_problem(refused) is not None
    with pytest.raises(ValueError):
        jsonvalues.normalise({"x": [refused]})


def test_integer_literals_too_long_are_never_converted() -> None:
    parsed = json.loads('{"v": ' + "9" * 5000 + ', "w": -12}', parse_int=jsonvalues.parse_int)
    assert isinstance(parsed["v"], jsonvalues.TooLongInteger) and parsed["w"] == -12
    assert jsonvalues.number_problem(parsed["v"]) == jsonvalues.OUT_OF_RANGE


def test_depth_is_measured_without_recursion() -> None:
    deep: object = 1
    for _ in range(5000):
        deep = [deep]
    assert jsonvalues.depth(deep) == 5000
    assert jsonvalues.depth({"a": {"b": []}, "c": 1}) == 3 and jsonvalues.depth("x") == 0


def test_the_schemes_render_differently_and_each_event_is_checked_in_its_own() -> None:
    content = {"b": 1e-7, "a": "é"}
    assert canonical_bytes(content, LEGACY) == '{"a":"é","b":1e-07}'.encode()
    assert canonical_bytes(content, JCS) == '{"a":"é","b":1e-7}'.encode()
    event = {"event_id": "e", "data": content, "prev_hash": None}
    legacy = {**event, "hash_scheme": LEGACY}
    assert event_hash(legacy) == event_hash(event)  # no scheme recorded: written before schemes existed
    assert event_hash({**event, "hash_scheme": JCS}) != event_hash(legacy)
    with pytest.raises(ValueError):
        canonical_bytes(content, 9)


def test_integers_beyond_the_safe_range_from_older_rows_still_hash_exactly() -> None:
    assert jcs({"z": 10**20, "a": [2**60, 1.5]}) == b'{"a":[1152921504606846976,1.5],"z":100000000000000000000}'
    assert jcs({"n": 10**20}) != jcs({"n": 10**20 + 1})


@pytest.mark.parametrize(("name", "valid"), [
    ("custom.deployed", True), ("orchestration.task.status_changed", True), ("custom.a1_b.c2", True),
    ("custom", False), ("custom.*", False), ("custom. x", False), ("custom.x\n", False), ("Custom.x", False),
    ("custom.x-y", False), ("custom..x", False), (".custom.x", False), ("custom.x.", False),
])
def test_event_types_are_dot_separated_lowercase_segments(name: str, valid: bool) -> None:
    assert is_event_type(name) is valid


def test_lifecycle_types_are_not_external_and_filters_take_a_prefix() -> None:
    assert all(not is_external_type(t) for t in OWNED_EXTERNAL_TYPES)
    assert is_external_type("orchestration.session.note") and is_external_type("orchestration.context.assembled")
    assert not is_external_type("orchestration.task.created")
    for pattern in ("orchestration.*", "orchestration.task.*", "custom.deploy"):
        assert TYPE_FILTER_PATTERN.fullmatch(pattern)
    for pattern in ("*", "custom", "custom.*.x", "custom.**", "custom.*\n"):
        assert not TYPE_FILTER_PATTERN.fullmatch(pattern)


def test_a_page_ends_at_the_byte_budget_but_always_moves_on() -> None:
    assert take_within_budget(iter([5, 5, 5]), 10, lambda n: n, budget=10) == ([5, 5], True)
    assert take_within_budget(iter([50, 5]), 10, lambda n: n, budget=10) == ([50], True)
    assert take_within_budget(iter([1, 1, 1]), 2, lambda n: n, budget=10) == ([1, 1], True)
    assert take_within_budget(iter([1, 1]), 2, lambda n: n, budget=10) == ([1, 1], False)
    consumed = iter([6, 6, 6, 6])
    take_within_budget(consumed, 10, lambda n: n, budget=10)
    assert list(consumed) == [6, 6]  # nothing past the first item left out is read
