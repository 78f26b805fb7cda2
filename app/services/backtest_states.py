"""Folded states for a backtest scan: kept in bounded caches and folded forward event by event.

A stream enters the cache the first time a rule needs it, loaded as of the
scan's position from the log (snapshot + fold); from then on each scanned event
of that stream is applied in memory. Evicted streams are simply loaded again
when needed, so memory stays bounded whatever the window's size.

For actions that read a sprint and its tasks (``complete_sprint``), each sprint
a match asked about also keeps a roster: its live tasks' code and status, the
exact list ``rule_facts`` would build by reading every task, kept up to date as
the scan folds task events. A match then costs a lookup, not a read of every
task of its sprint.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from app.domain.fold import apply_event
from app.domain.rule_actions import Facts
from app.services import rule_facts
from app.store import as_of
from app.store.backtest_reads import DbSession

K = TypeVar("K")
V = TypeVar("V")
MAX_STREAMS = 50_000
MAX_SPRINTS = 5_000
MISSING = object()


class Lru(Generic[K, V]):
    """A dict that forgets its least recently written entries beyond ``size``.

    Reads do not reorder (the planner reads every task of a sprint per match, so
    that would be most of the bookkeeping); a held stream is rewritten by each of
    its events anyway, and one forgotten too early is only loaded again.
    """

    def __init__(self, size: int, forget: Callable[[K, V], None] | None = None) -> None:
        self.size = size
        self.items: OrderedDict[K, V] = OrderedDict()
        self.forget = forget

    def get(self, key: K) -> Any:
        return self.items.get(key, MISSING)

    def put(self, key: K, value: V) -> None:
        self.items[key] = value
        self.items.move_to_end(key)
        while len(self.items) > self.size:
            old_key, old_value = self.items.popitem(last=False)
            if self.forget is not None:
                self.forget(old_key, old_value)


def _public(state: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """As ``rule_facts`` shows a state to the planner: a deleted entity is gone."""
    if state is None or state.get("deleted"):
        return None
    return {name: value for name, value in state.items() if name != "deleted"}


def _entry(state: Mapping[str, Any] | None, code: str) -> dict[str, Any] | None:
    """A task's line in its sprint's roster, as ``rule_facts`` lists it; None: not a live task of it."""
    if state is None or state.get("deleted") or state.get("sprint_code") != code:
        return None
    return {"task_code": state["task_code"], "status": state["status"]}


@dataclass
class Roster:
    """A sprint's live tasks (id → line) and the tuple the planner reads, rebuilt only after a change."""

    tasks: dict[int, dict[str, Any]] = field(default_factory=dict)
    listed: tuple[dict[str, Any], ...] | None = None

    def lines(self) -> tuple[dict[str, Any], ...]:
        if self.listed is None:
            self.listed = tuple(self.tasks[task_id] for task_id in sorted(self.tasks))
        return self.listed

    def update(self, task_id: int, line: dict[str, Any] | None) -> None:
        if line is None:
            if self.tasks.pop(task_id, None) is not None:
                self.listed = None
        elif self.tasks.get(task_id) != line:
            self.tasks[task_id], self.listed = line, None


class CachedStates:
    """``rule_facts.States`` for a scan in id order; ``advance`` must see every scanned event."""

    def __init__(self, session: DbSession, max_streams: int | None = None, max_sprints: int | None = None) -> None:
        self.session = session
        max_streams, max_sprints = max_streams or MAX_STREAMS, max_sprints or MAX_SPRINTS
        self.streams: Lru[tuple[str, int], dict[str, Any] | None] = Lru(max_streams, self._forget)
        self.members: Lru[str, set[int]] = Lru(max_sprints)
        self.rosters: Lru[str, Roster] = Lru(max_sprints)
        self.ids: Lru[tuple[str, str], int | None] = Lru(max_streams)
        self.departed: dict[str, set[int]] | None = None
        self.now_in: dict[str, set[int]] = {}  # tasks of a sprint now, read with its id, until its roster is built
        self.loads = 0

    def advance(self, entity_type: str, entity_id: int, sequence: int | None, type_: str,
                raw_changes: str | None) -> None:
        """Fold one scanned event (its ``changes`` still JSON text) into whatever is cached about its
        stream and its sprint; events nobody holds are not even decoded."""
        if sequence is None:
            return
        key = (entity_type, entity_id)
        state = self.streams.items.get(key, MISSING)
        moves = entity_type == "task" and raw_changes is not None and '"sprint_code"' in raw_changes
        if state is MISSING and sequence != 1 and not moves:
            return
        if raw_changes == "{}" and sequence != 1 and not type_.endswith(".deleted"):
            return  # changes nothing (``apply_event`` would copy the state as it is)
        changes = json.loads(raw_changes) if raw_changes else {}
        moved = changes.get("sprint_code") if moves else None
        if state is not MISSING or sequence == 1:
            old: dict[str, Any] | None = None if state is MISSING else state  # type: ignore[assignment]
            new = apply_event(old, {"type": type_, "sequence": sequence, "changes": changes})
            self.streams.put(key, new)
            if entity_type == "task" and self.rosters.items:
                self._recount(entity_id, old, new)
        elif moved:  # a task nobody holds joins a sprint: its roster is rebuilt when next asked for
            self.rosters.items.pop(moved.get("after"), None)
        if moved:
            self._move(entity_id, moved.get("before"), moved.get("after"))

    def _recount(self, task_id: int, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        for code in {(old or {}).get("sprint_code"), (new or {}).get("sprint_code")}:
            roster = self.rosters.items.get(code) if code is not None else None
            if roster is not None:
                roster.update(task_id, _entry(new, str(code)))

    def _forget(self, key: tuple[str, int], state: dict[str, Any] | None) -> None:
        """A roster stays exact only while every task in it is held: forgetting one drops its roster."""
        if key[0] == "task" and state is not None:
            self.rosters.items.pop(state.get("sprint_code"), None)  # type: ignore[arg-type]

    def _move(self, task_id: int, before: str | None, after: str | None) -> None:
        for code, add in ((before, False), (after, True)):
            members = self.members.items.get(code) if code is not None else None
            if members is not None:
                (members.add if add else members.discard)(task_id)

    def state(self, entity_type: str, entity_id: int, upto_id: int) -> dict[str, Any] | None:
        found = self.streams.items.get((entity_type, entity_id), MISSING)
        if found is MISSING:
            self.loads += 1
            found = as_of.state_at(self.session, entity_type, entity_id, upto_id)
            self.streams.put((entity_type, entity_id), found)
        return found  # type: ignore[return-value]

    def entity_id(self, entity_type: str, code: str) -> int | None:
        found = self.ids.get((entity_type, code))
        if found is MISSING:
            found = as_of.entity_id(self.session, entity_type, code)
            self.ids.put((entity_type, code), found)
        return found  # type: ignore[no-any-return]

    def sprint_task_candidates(self, sprint_id: int, sprint_code: str, upto_id: int) -> list[int]:
        found = self.members.get(sprint_code)
        if found is MISSING:
            self.loads += 1
            if self.departed is None:  # tasks that left a sprint after the first place asked: a superset
                self.departed = as_of.departures(self.session, upto_id)  # for every later place, read once
            now_in = self.now_in.pop(sprint_code, None)
            if now_in is None:
                now_in = as_of.sprint_tasks_now(self.session, sprint_id)
            found = now_in | self.departed.get(sprint_code, set())
            self.members.put(sprint_code, found)
            # the members' states in a few queries now, rather than one by one as the planner asks
            missing = [task_id for task_id in found if ("task", task_id) not in self.streams.items]
            for task_id, state in as_of.states_at(self.session, "task", missing, upto_id).items():
                self.streams.put(("task", task_id), state)
        return sorted(found)

    def facts(self, event: Mapping[str, Any], needs: frozenset[str]) -> Facts:
        """``rule_facts.facts_as_of(self, event, needs).facts``, with a sprint's tasks from its roster."""
        entity, upto = event["entity"], int(event["id"])
        if "sprint" not in needs or entity["type"] not in ("sprint", "task"):
            return rule_facts.facts_as_of(self, event, needs).facts
        own = self.state(entity["type"], entity["id"], upto)
        mine = _public(own) if "entity" in needs else None
        code = entity["code"] if entity["type"] == "sprint" else (own or {}).get("sprint_code")
        sprint_id = self._sprint_id(str(code)) if code is not None else None
        if sprint_id is None:
            return Facts(entity["type"], entity=mine)
        return Facts(entity["type"], entity=mine, sprint=_public(self.state("sprint", sprint_id, upto)),
                     sprint_tasks=self._roster(sprint_id, str(code), upto).lines())

    def _sprint_id(self, code: str) -> int | None:
        """``entity_id`` for a sprint, reading its tasks of now with it (its roster needs them next)."""
        found = self.ids.get(("sprint", code))
        if found is MISSING:
            found, self.now_in[code] = as_of.sprint_with_tasks(self.session, code)
            self.ids.put(("sprint", code), found)
        return found  # type: ignore[no-any-return]

    def _roster(self, sprint_id: int, code: str, upto_id: int) -> Roster:
        roster = self.rosters.get(code)
        if roster is MISSING:
            roster = Roster()
            for task_id in self.sprint_task_candidates(sprint_id, code, upto_id):
                roster.update(task_id, _entry(self.state("task", task_id, upto_id), code))
            self.rosters.put(code, roster)
        return roster  # type: ignore[no-any-return]
