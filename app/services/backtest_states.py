"""Folded states for a backtest scan: kept in bounded LRU caches and folded forward event by event.

A stream enters the cache the first time a rule needs it, loaded as of the
scan's position from the log (snapshot + fold); from then on each scanned event
of that stream is applied in memory. Evicted streams are simply loaded again
when needed, so memory stays bounded whatever the window's size.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, Generic, TypeVar

from app.domain.fold import apply_event
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

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> Any:
        return self.items.get(key, MISSING)  # type: ignore[arg-type]

    def put(self, key: K, value: V) -> None:
        self.items[key] = value
        self.items.move_to_end(key)
        while len(self.items) > self.size:
            self.items.popitem(last=False)


class CachedStates:
    """``rule_facts.States`` for a scan in id order; ``advance`` must see every scanned event."""

    def __init__(self, session: DbSession, max_streams: int = MAX_STREAMS, max_sprints: int = MAX_SPRINTS) -> None:
        self.session = session
        self.streams: Lru[tuple[str, int], dict[str, Any] | None] = Lru(max_streams)
        self.members: Lru[str, set[int]] = Lru(max_sprints)
        self.ids: Lru[tuple[str, str], int | None] = Lru(max_streams)
        self.departed: dict[str, set[int]] | None = None
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
        if state is not MISSING or sequence == 1:
            self.streams.put(key, apply_event(None if state is MISSING else state,  # type: ignore[arg-type]
                                              {"type": type_, "sequence": sequence, "changes": changes}))
        moved = changes.get("sprint_code") if moves else None
        if moved:
            self._move(entity_id, moved.get("before"), moved.get("after"))

    def _move(self, task_id: int, before: str | None, after: str | None) -> None:
        for code, add in ((before, False), (after, True)):
            members = self.members.items.get(code) if code is not None else None
            if members is not None:
                (members.add if add else members.discard)(task_id)

    def state(self, entity_type: str, entity_id: int, upto_id: int) -> dict[str, Any] | None:
        found = self.streams.get((entity_type, entity_id))
        if found is MISSING:
            self.loads += 1
            found = as_of.state_at(self.session, entity_type, entity_id, upto_id)
            self.streams.put((entity_type, entity_id), found)
        return found  # type: ignore[no-any-return]

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
            found = as_of.sprint_tasks_now(self.session, sprint_id) | self.departed.get(sprint_code, set())
            self.members.put(sprint_code, found)
            # the members' states in a few queries now, rather than one by one as the planner asks
            missing = [task_id for task_id in found if ("task", task_id) not in self.streams.items]
            for task_id, state in as_of.states_at(self.session, "task", missing, upto_id).items():
                self.streams.put(("task", task_id), state)
        return sorted(found)
