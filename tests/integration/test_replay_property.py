"""Property: the log reproduces every state the API ever answered, and the live rows.

Random sequences of creates and updates of sprints and tasks run through the
API under a frozen clock advanced by random deltas; afterwards, the state
reconstructed at each change's timestamp equals what the API answered right
after that change, and folding each entity's events equals its live row.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from freezegun import freeze_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain.entities import PRIORITIES, SPRINT_STATUSES, TASK_STATUSES
from app.domain.fold import fold
from tests.integration.replay_helpers import STATE_FIELDS, fields_of, snapshot_every
from tests.support import Api

T0 = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
PLURAL = {"sprint": "sprints", "task": "tasks"}
examples = itertools.count()

text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)
json_value = st.recursive(st.none() | st.booleans() | st.integers(-1000, 1000) | text,
                          lambda inner: st.lists(inner, max_size=3), max_leaves=4)
metadata = st.dictionaries(st.text("abcxyz", min_size=1, max_size=3), json_value, max_size=3)
deltas = st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=2))

SPRINT_PATCH = st.fixed_dictionaries({}, optional={
    "title": text, "status": st.sampled_from(SPRINT_STATUSES), "priority": st.sampled_from(PRIORITIES),
    "metadata": metadata})
TASK_PATCH = st.fixed_dictionaries({}, optional={
    "title": text, "description": st.text(max_size=20).filter(lambda s: "\x00" not in s),
    "status": st.sampled_from(TASK_STATUSES), "priority": st.sampled_from(PRIORITIES),
    "progress": st.integers(0, 100), "assignee": st.none() | text, "metadata": metadata})
STEP = st.tuples(st.sampled_from(("create_sprint", "create_task", "update_sprint", "update_task",
                                  "update_task")), deltas, st.integers(0, 50))


class Scenario:
    """Drives the API and remembers (entity, code, instant, answer) after every accepted change."""

    def __init__(self, api: Api, data: st.DataObject) -> None:
        self.api, self.data = api, data
        self.prefix = f"P{next(examples)}X{datetime.now().microsecond}"
        self.codes: dict[str, list[str]] = {"sprint": [], "task": []}
        self.seen: list[tuple[str, str, datetime, dict[str, Any]]] = []

    def step(self, action: str, pick: int, now: datetime) -> None:
        verb, entity = action.split("_")
        if verb == "update" and not self.codes[entity]:
            verb = "create"
        if verb == "create":
            response = self._create(entity)
        else:
            code = self.codes[entity][pick % len(self.codes[entity])]
            patch = self.data.draw(SPRINT_PATCH if entity == "sprint" else TASK_PATCH)
            patch |= self._sprint_choice() if entity == "task" and pick % 3 == 0 else {}
            response = self.api.patch(f"/{PLURAL[entity]}/{code}", json=patch)
        assert response.status_code in (200, 201, 409), response.get_json()
        if response.status_code != 409:
            answer = response.get_json()
            self.seen.append((entity, answer[f"{entity}_code"], now, answer))

    def _create(self, entity: str) -> Any:
        code = f"{self.prefix}-{entity[0].upper()}{len(self.codes[entity])}"
        self.codes[entity].append(code)
        body = {f"{entity}_code": code, "title": self.data.draw(text)}
        if entity == "task":
            body |= self.data.draw(TASK_PATCH) | self._sprint_choice()
            body.pop("status", None) if body.get("status") == "cancelled" else None
        return self.api.post(f"/{PLURAL[entity]}", json=body)

    def _sprint_choice(self) -> dict[str, Any]:
        return {"sprint_code": self.data.draw(st.sampled_from([None, *self.codes["sprint"]]))}


def check_history(api: Api, scenario: Scenario) -> None:
    for entity, code, now, answer in scenario.seen:
        response = api.get(f"/{PLURAL[entity]}/{code}/history", role="reader", query_string={"at": now.isoformat()})
        assert response.status_code == 200, response.get_json()
        state = response.get_json()
        assert fields_of(entity, state) == fields_of(entity, answer)
        assert state["version"] == answer["version"]


def check_live_rows(api: Api, scenario: Scenario) -> None:
    for entity, codes in scenario.codes.items():
        for code in codes:
            live = api.get(f"/{PLURAL[entity]}/{code}", role="reader").get_json()
            events = api.events(entity_type=entity, entity_code=code)
            folded = fold(events) or {}
            assert folded.pop("deleted") is False
            assert set(folded) == set(STATE_FIELDS[entity])
            assert folded == fields_of(entity, live)
            assert [e["sequence"] for e in events if e["sequence"] is not None][-1] == live["version"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=10), data=st.data())
def test_the_log_reproduces_every_answer_and_every_live_row(api: Api, runtime: Any, steps: list[Any],
                                                            data: st.DataObject) -> None:
    snapshot_every(runtime, 3)
    scenario = Scenario(api, data)
    with freeze_time(T0, tick=False) as frozen:
        now = T0
        for action, delta, pick in steps:
            frozen.tick(delta)
            now += delta
            scenario.step(action, pick, now)
    check_history(api, scenario)
    check_live_rows(api, scenario)
