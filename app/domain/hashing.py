"""Canonical JSON and the per-entity hash chain (DESIGN §3 "Hash chain")."""

from __future__ import annotations

import hashlib
import json
from typing import Any

# Everything in the envelope except ``id``, ``hash`` and ``archived_at``: the
# global id is assigned by the database after hashing, and archiving must not
# change an event's identity.
HASHED_FIELDS = (
    "event_id",
    "type",
    "entity",
    "sequence",
    "actor",
    "timestamp",
    "correlation_id",
    "correlation_chain",
    "causation_id",
    "session_key",
    "priority",
    "changes",
    "data",
    "prev_hash",
)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(envelope: dict[str, Any]) -> str:
    """SHA-256 over ``prev_hash`` followed by the canonical hashed fields."""
    content = {name: envelope.get(name) for name in HASHED_FIELDS}
    digest = hashlib.sha256()
    digest.update((envelope.get("prev_hash") or "").encode())
    digest.update(canonical_json(content).encode())
    return digest.hexdigest()
