"""Chain integrity: what is wrong with one entity's stream, if anything.

Pure: the caller reads the stream's envelopes (archived ones included) and,
when events were purged, the stream head their archive manifest recorded; this
module only judges them. Each problem names its kind, the entity, the
sequence it was found at and, where one exists, the event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.domain.events import event_type
from app.domain.hashing import event_hash
from app.domain.stream_types import ENTITY_TYPES

GAP = "gap"
DUPLICATE = "duplicate"
OUT_OF_ORDER = "out_of_order"
HASH_MISMATCH = "hash_mismatch"
MISSING_CREATED = "missing_created"
KINDS = (GAP, DUPLICATE, OUT_OF_ORDER, HASH_MISMATCH, MISSING_CREATED)

# The event type each kind of stream must open with; other streams only need sequence 1.
OPENING_TYPES = {name: event_type(name, t.opening) for name, t in ENTITY_TYPES.items()}


@dataclass(frozen=True)
class Problem:
    kind: str
    entity: dict[str, Any]
    sequence: int | None
    detail: str
    event_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "entity": self.entity, "sequence": self.sequence,
                "detail": self.detail, "event_id": self.event_id}


@dataclass(frozen=True)
class Head:
    """What the entity row says its stream ends with (``version``, ``last_hash``)."""

    sequence: int
    hash: str | None


Anchors = Mapping[int, str]


def check_stream(entity: dict[str, Any], events: Sequence[dict[str, Any]], *,
                 anchors: Anchors | None = None, head: Head | None = None) -> list[Problem]:
    """Every problem of one stream, ordered by sequence.

    ``anchors`` maps a sequence to the hash a purge recorded for it: events
    missing right up to an anchored sequence were purged, not lost, and the
    next event present must link to that hash. ``head`` (given when the whole
    stream is checked) also catches events missing after the last one present.
    """
    ordered = sorted(events, key=lambda e: (e["sequence"], e["id"]))
    anchors = anchors or {}
    problems = _opening(entity, ordered, anchors, head)
    problems += _links(entity, ordered, anchors)
    problems += _order(entity, ordered)
    if head is not None and ordered:
        problems += _head(entity, ordered[-1], head)
    return sorted(_unique(problems), key=lambda p: (p.sequence or 0, KINDS.index(p.kind)))


def check_loose(events: Iterable[dict[str, Any]]) -> list[Problem]:
    """Events outside any stream (``validation_failed``): only their own hash can be checked."""
    return [
        Problem(HASH_MISMATCH, event["entity"], None, "the stored hash does not match the event's content",
                event["event_id"])
        for event in events
        if event_hash(event) != event["hash"] or event.get("prev_hash") is not None
    ]


def _opening(entity: dict[str, Any], ordered: list[dict[str, Any]], anchors: Anchors,
             head: Head | None) -> list[Problem]:
    if not ordered:
        if head is not None and head.sequence > 0:
            return [Problem(MISSING_CREATED, entity, 1, f"no event found; the entity is at version {head.sequence}")]
        return []
    first = ordered[0]
    if first["sequence"] == 1:
        expected = OPENING_TYPES.get(entity["type"])
        if expected is not None and first["type"] != expected:
            return [Problem(MISSING_CREATED, entity, 1, f"sequence 1 is {first['type']}, not {expected}",
                            first["event_id"])]
        return []
    if first["sequence"] - 1 not in anchors:
        return [Problem(MISSING_CREATED, entity, 1,
                        f"the stream starts at sequence {first['sequence']} and no purge recorded "
                        f"sequence {first['sequence'] - 1}", first["event_id"])]
    return []


def _links(entity: dict[str, Any], ordered: list[dict[str, Any]], anchors: Anchors) -> list[Problem]:
    """Walk the stream in sequence order: duplicates, gaps, hashes and prev_hash links."""
    problems: list[Problem] = []
    expected, prev_hash, linked = 1, None, True
    for event in ordered:
        sequence, event_id = event["sequence"], event["event_id"]
        if sequence < expected:
            problems.append(Problem(DUPLICATE, entity, sequence, f"sequence {sequence} appears more than once",
                                    event_id))
            continue
        if sequence > expected and sequence - 1 in anchors:
            prev_hash, linked = anchors[sequence - 1], True  # purged up to here: link to the recorded head
        elif sequence > expected and expected == 1:
            linked = False  # reported as missing_created by _opening
        elif sequence > expected:
            missing = str(expected) if sequence == expected + 1 else f"{expected}..{sequence - 1}"
            problems.append(Problem(GAP, entity, expected, f"sequence {missing} is missing"))
            linked = False
        problems += _hash_problems(entity, event, prev_hash if linked else event.get("prev_hash"))
        expected, prev_hash, linked = sequence + 1, event["hash"], True
    return problems


def _hash_problems(entity: dict[str, Any], event: dict[str, Any], prev_hash: str | None) -> list[Problem]:
    reasons = []
    if event_hash(event) != event["hash"]:
        reasons.append("the stored hash does not match the event's content")
    if event.get("prev_hash") != prev_hash:
        reasons.append("prev_hash does not match the hash of the previous event")
    if not reasons:
        return []
    return [Problem(HASH_MISMATCH, entity, event["sequence"], "; ".join(reasons), event["event_id"])]


def _order(entity: dict[str, Any], ordered: list[dict[str, Any]]) -> list[Problem]:
    """Sequence order must agree with the order events were stored in, and time never goes back.

    A timestamp step next to an event already misplaced is a consequence, not a second problem.
    """
    problems = []
    by_id = sorted(ordered, key=lambda e: e["id"])
    ranked = sorted(e["sequence"] for e in by_id)
    for event, sequence in zip(by_id, ranked, strict=True):
        if event["sequence"] != sequence:
            problems.append(Problem(OUT_OF_ORDER, entity, event["sequence"],
                                    f"event {event['id']} holds sequence {event['sequence']} but was stored "
                                    f"where sequence {sequence} belongs", event["event_id"]))
    misplaced = {p.event_id for p in problems}
    for before, after in zip(ordered, ordered[1:], strict=False):
        if misplaced & {before["event_id"], after["event_id"]}:
            continue
        if _moment(after) < _moment(before):
            problems.append(Problem(OUT_OF_ORDER, entity, after["sequence"],
                                    f"timestamp {after['timestamp']} is earlier than sequence "
                                    f"{before['sequence']}'s {before['timestamp']}", after["event_id"]))
    return problems


def _head(entity: dict[str, Any], last: dict[str, Any], head: Head) -> list[Problem]:
    if head.sequence > last["sequence"]:
        missing = last["sequence"] + 1
        span = str(missing) if head.sequence == missing else f"{missing}..{head.sequence}"
        return [Problem(GAP, entity, missing, f"sequence {span} is missing; the entity is at version {head.sequence}")]
    if head.sequence == last["sequence"] and head.hash != last["hash"]:
        return [Problem(HASH_MISMATCH, entity, last["sequence"],
                        "the entity's last_hash differs from its last event's hash", last["event_id"])]
    return []


def _moment(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["timestamp"])


def _unique(problems: list[Problem]) -> list[Problem]:
    """One problem per kind and place: a swap is out of order once, whatever found it."""
    seen: dict[tuple[str, int | None, str | None], Problem] = {}
    for problem in problems:
        seen.setdefault((problem.kind, problem.sequence, problem.event_id), problem)
    return list(seen.values())
