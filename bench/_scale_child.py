"""One measured operation in its own process, so its peak RSS is its own: ``python -m bench._scale_child OP URL DIR``.

Prints one JSON line: ``{"seconds", "events", "rss_mb", ...}``.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from app import create_app
from app.config import Settings
from app.domain.clock import iso
from app.domain.hashing import event_hash
from app.services import archive, archive_purge, integrity
from bench._scale_data import NOW

ALL_STREAM_EVENTS = (
    "SELECT id, event_id, type, entity_type, entity_id, entity_code, sequence, actor, emitted_at, correlation_id, "
    "correlation_chain, causation_id, session_key, priority, changes, data, hash, prev_hash FROM {table} "
    "WHERE sequence IS NOT NULL")


def _runtime(url: str, folder: str) -> Any:
    settings = Settings(database_url=url, archive_dir=folder, broker_dir=f"{folder}/broker", dispatch_after_commit=False)
    return create_app(settings).extensions["orchestration"]


def _archive(rt: Any, older_than: str) -> dict[str, Any]:
    cold = archive.cold_storage(rt.settings, rt.engine)
    report = archive.archive_events(archive.ArchiveJob(older_than=older_than), cold, rt.uow(), rt.read_uow(),
                                    lambda: NOW)
    return {"events": report.events, "files": len(report.files), "streams": report.streams}


def _purge(rt: Any, older_than: str) -> dict[str, Any]:
    cold = archive.cold_storage(rt.settings, rt.engine)
    report = archive_purge.purge_archived(older_than, False, cold, rt.uow(), rt.read_uow(), lambda: NOW)
    return {"events": report.events, "files": len(report.files), "held": len(report.held),
            "partitions_dropped": len(report.partitions)}


def _verify(rt: Any, _arg: str) -> dict[str, Any]:
    report = integrity.validate_all(rt.read_uow())
    return {"events": report["events"], "valid": report["valid"]}


def _plain_verifier(rt: Any, _arg: str) -> dict[str, Any]:
    """The baseline: one server-side cursor over both tables in stream order, rehash, check links."""
    sql = " UNION ALL ".join(ALL_STREAM_EVENTS.format(table=t)
                             for t in ("orchestration_events", "orchestration_events_archive"))
    checked = broken = 0
    last: tuple[Any, ...] = (None, None, None)
    with rt.engine.connect().execution_options(stream_results=True, yield_per=5000) as connection:
        for row in connection.execute(text(sql + " ORDER BY entity_type, entity_id, sequence")):
            envelope = {
                "event_id": row.event_id, "type": row.type, "sequence": row.sequence, "actor": row.actor,
                "entity": {"type": row.entity_type, "id": row.entity_id, "code": row.entity_code},
                "timestamp": iso(row.emitted_at), "correlation_id": row.correlation_id,
                "correlation_chain": row.correlation_chain, "causation_id": row.causation_id,
                "session_key": row.session_key, "priority": row.priority, "changes": row.changes, "data": row.data,
                "prev_hash": row.prev_hash,
            }
            same = last[:2] == (row.entity_type, row.entity_id)
            broken += (event_hash(envelope) != row.hash) + (same and last[2] != row.prev_hash)
            last, checked = (row.entity_type, row.entity_id, row.hash), checked + 1
    return {"events": checked, "broken": broken}


OPERATIONS: dict[str, Callable[[Any, str], dict[str, Any]]] = {
    "archive": _archive, "purge": _purge, "verify": _verify, "plain_verifier": _plain_verifier,
}


def main() -> None:
    operation, url, folder, arg = sys.argv[1], sys.argv[2], sys.argv[3], (sys.argv[4:] or [""])[0]
    rt = _runtime(url, folder)
    started = time.perf_counter()
    result = OPERATIONS[operation](rt, arg)
    result["seconds"] = time.perf_counter() - started
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main()
