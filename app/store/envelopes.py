"""The public shape of a stored event (CONTRACT §3).

Its own module, below everything that reads events (archive reads, snapshots,
the event store), so none of them has to import another just for the shape.
"""

from __future__ import annotations

from typing import Any

from app.domain.clock import iso
from app.store.tables import Event


def envelope(event: Event) -> dict[str, Any]:
    """The public shape of an event (CONTRACT §3)."""
    return {
        "id": event.id,
        "event_id": event.event_id,
        "type": event.type,
        "entity": {"type": event.entity_type, "id": event.entity_id, "code": event.entity_code},
        "sequence": event.sequence,
        "actor": event.actor,
        "timestamp": iso(event.emitted_at),
        "correlation_id": event.correlation_id,
        "correlation_chain": list(event.correlation_chain or []),
        "causation_id": event.causation_id,
        "session_key": event.session_key,
        "priority": event.priority,
        "changes": event.changes or {},
        "data": event.data or {},
        "hash": event.hash,
        "prev_hash": event.prev_hash,
        "hash_scheme": event.hash_scheme,
        "archived_at": iso(event.archived_at),
    }
