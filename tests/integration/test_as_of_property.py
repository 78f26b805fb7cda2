"""Property: for a given log, the rule runs and their outcomes do not depend on when or in which
order workers judge its events (the evaluation entry point driven directly, on a real database)."""

from __future__ import annotations

import random
import re
from typing import Any

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.services import automation, tokens
from app.store.tables import Event, OutboxEntry, Rule, RuleRun, Sprint
from tests.support import Api, wipe

TASKS = {"T0": "S1", "T1": "S1", "T2": "S2", "T3": "S2"}
change = st.one_of(
    st.tuples(st.sampled_from(sorted(TASKS)), st.just("status"), st.sampled_from(["completed", "in_progress"])),
    st.tuples(st.sampled_from(sorted(TASKS)), st.just("status"), st.sampled_from(["completed", "blocked"])),
    st.tuples(st.sampled_from(sorted(TASKS)), st.just("sprint_code"), st.sampled_from(["S1", "S2"])),
    st.tuples(st.sampled_from(sorted(TASKS)), st.just("priority"), st.sampled_from(["P0", "P2"])),
)


def build(api: Api, runtime: Any, changes: list[tuple[str, str, str]]) -> list[int]:
    """A fresh database holding this log of user changes; the ids of its events, in log order."""
    wipe(runtime.engine)
    api.tokens.update({role: tokens.create_token(f"user:{role}", role, runtime.uow(), runtime.clock)
                       for role in tokens.ROLES})
    for sprint in ("S1", "S2"):
        api.create_sprint(sprint, status="active")
    for task, sprint in TASKS.items():
        api.create_task(task, sprint)
    for task, name, value in changes:
        api.patch(f"/tasks/{task}", json={name: value})
    with runtime.engine.connect() as connection:
        return list(connection.scalars(select(OutboxEntry.event_id).order_by(OutboxEntry.event_id)))


def judge(runtime: Any, order: list[int]) -> None:
    """Evaluate the user events in ``order``, then whatever automation caused, until nothing is left."""
    for event_id in order:
        automation.evaluate_event(event_id, runtime.uow(), runtime.clock, depth_limit=5, final=True)
    while True:
        with runtime.engine.connect() as connection:
            left = list(connection.scalars(select(OutboxEntry.event_id).order_by(OutboxEntry.event_id)))
        if not left:
            return
        for event_id in left:
            automation.evaluate_event(event_id, runtime.uow(), runtime.clock, depth_limit=5, final=True)


def outcome(runtime: Any, log: list[int]) -> tuple[Any, ...]:
    """Runs, automation's events and sprint statuses, named by place in the user log (ids differ per build)."""
    place = {event_id: n for n, event_id in enumerate(log)}
    with Session(runtime.engine) as session:
        uuid_place = {uuid: place.get(i, -1) for i, uuid in session.execute(select(Event.id, Event.event_id))}
        caused = sorted((e.type, e.entity_type, e.entity_code if e.entity_type in TASKS.values() or e.entity_code in TASKS
                         else "", uuid_place.get(e.causation_id, -2))
                        for e in session.scalars(select(Event).where(Event.actor.like("automation:%"))))
        runs = sorted(
            (name, place[run.event_id], run.status,
             re.sub(r"event (\d+)", lambda m: f"event #{place.get(int(m.group(1)))}", run.reason or ""))
            for run, name in session.execute(select(RuleRun, Rule.name).join(Rule, Rule.id == RuleRun.rule_id))
            if run.event_id in place)
        sprints = sorted(tuple(row) for row in session.execute(select(Sprint.sprint_code, Sprint.status)))
    return tuple(runs), tuple(caused), tuple(sprints)


REOPENED_AND_COMPLETED_AGAIN = [("T0", "status", "completed"), ("T1", "status", "completed"),
                                ("T0", "status", "in_progress"), ("T0", "status", "completed")]


@example(changes=REOPENED_AND_COMPLETED_AGAIN, shuffle=random.Random(1), lag=8)
@settings(max_examples=5, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate], suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(changes=st.lists(change, min_size=1, max_size=8), shuffle=st.randoms(use_true_random=False),
       lag=st.integers(min_value=0, max_value=12))
def test_the_runs_of_a_log_are_the_same_whatever_order_and_delay_workers_judge_it_in(
        api: Api, runtime: Any, changes: list[tuple[str, str, str]], shuffle: random.Random, lag: int) -> None:
    in_order = build(api, runtime, changes)
    judge(runtime, in_order)
    expected = outcome(runtime, in_order)

    log = build(api, runtime, changes)
    late, early = log[:lag], log[lag:]  # the first ``lag`` events wait behind everything else
    shuffle.shuffle(early)
    shuffle.shuffle(late)
    judge(runtime, early + late)

    assert outcome(runtime, log) == expected
