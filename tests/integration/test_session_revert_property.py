"""Property: a session revert never touches what others changed since, and alone restores everything.

Random sessions of changes to a few tasks, optionally interleaved with another
actor's changes, through the same services the API calls, on a real database.
"""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.services import session_revert, sessions, tracking
from app.services.context import ChangeContext

VALUES = {"status": ("pending", "in_progress", "blocked", "completed"), "priority": ("P1", "P2", "P3", "P0"),
          "progress": (0, 10, 50, 100), "title": ("one", "two", "three", "zero")}
TASKS = 3
Step = tuple[bool, int, str, Any]  # (by the session?, task, field, value)

steps = st.lists(st.tuples(st.booleans(), st.integers(0, TASKS - 1), st.sampled_from(sorted(VALUES)),
                           st.integers(0, 3)).map(lambda s: (s[0], s[1], s[2], VALUES[s[2]][s[3]])),
                 min_size=1, max_size=12)


def states(runtime: Any, codes: list[str]) -> list[dict[str, Any]]:
    return [tracking.get(tracking.TASK, code, runtime.read_uow()) for code in codes]


def fields_of(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: row[k] for k in VALUES} for row in rows]


def play(runtime: Any, codes: list[str], key: str, script: list[Step]) -> None:
    agent = ChangeContext(actor="agent:random", session_key=key)
    other = ChangeContext(actor="user:bob")
    for by_session, task, field, value in script:
        tracking.update(tracking.TASK, codes[task], {field: value}, agent if by_session else other,
                        runtime.uow(), runtime.clock)


def touched_by_others_since(script: list[Step], initial: list[dict[str, Any]]) -> set[tuple[int, str]]:
    """(task, field) pairs another actor changed (to a new value) after the session first changed them."""
    current = {(task, field): value for task, row in enumerate(initial) for field, value in row.items()}
    changed_by_session, found = set(), set()
    for by_session, task, field, value in script:
        if value == current[(task, field)]:
            continue  # no change, no event
        current[(task, field)] = value
        if by_session:
            changed_by_session.add((task, field))
        elif (task, field) in changed_by_session:
            found.add((task, field))
    return found


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=steps, interleave=st.booleans())
def test_revert_spares_others_changes_and_alone_restores_the_state_before_the_session(
        runtime: Any, script: list[Step], interleave: bool) -> None:
    prefix = uuid.uuid4().hex[:8].upper()
    codes = [f"P{prefix}-{i}" for i in range(TASKS)]
    for code in codes:
        tracking.create(tracking.TASK, {"task_code": code, "title": "zero", "status": "pending", "priority": "P2",
                                        "progress": 0}, ChangeContext(actor="user:setup"), runtime.uow(), runtime.clock)
    key = f"sess-{prefix.lower()}"
    sessions.start({"agent_id": "agent:random", "session_key": key}, ChangeContext(actor="agent:random"),
                   runtime.uow(), runtime.clock)
    if not interleave:
        script = [(True, task, field, value) for _, task, field, value in script]
    before_session = fields_of(states(runtime, codes))
    play(runtime, codes, key, script)
    before_revert = fields_of(states(runtime, codes))

    options = session_revert.RevertOptions(dry_run=False)
    result = session_revert.revert(key, options, ChangeContext(actor="user:admin"), runtime.uow(), runtime.clock)
    after = fields_of(states(runtime, codes))

    for task, field in touched_by_others_since(script, before_session):
        assert after[task][field] == before_revert[task][field], (task, field)
    if not interleave:
        assert after == before_session and result["conflicts"] == []
    again = session_revert.revert(key, options, ChangeContext(actor="user:admin"), runtime.uow(), runtime.clock)
    assert again["reverted_event"] is None and fields_of(states(runtime, codes)) == after
