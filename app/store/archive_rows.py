"""The database side of archiving: which rows go, marking them, manifests, purge and restore.

Archived rows stay in ``orchestration_events`` with ``archived_at`` set (hot
reads filter ``archived_at IS NULL``); purge deletes them once their file's
retention is over; restore re-inserts them from the file, same ids and hashes.
Rollup counts move with the rows (``archived`` false → true → gone).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.orm import Session

from app.domain.clock import iso
from app.domain.errors import Conflict
from app.domain.hashing import scheme_of
from app.store import snapshots
from app.store.event_store import add_to_rollups, envelope, hour_bucket
from app.store.tables import ArchiveManifest, Event

# Bound parameters per IN list: well below SQLite's and PostgreSQL's limits.
IN_CHUNK = 500
T = TypeVar("T")


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), IN_CHUNK):
        yield items[start:start + IN_CHUNK]


def hot_counts(session: Session, cutoff: datetime) -> dict[tuple[str, bool], int]:
    """``{(priority, stamped before cutoff): n}`` over hot events, for the dry run."""
    old = case((Event.emitted_at < cutoff, True), else_=False)
    stmt = select(Event.priority, old, func.count()).where(Event.archived_at.is_(None)).group_by(Event.priority, old)
    return {(priority, bool(is_old)): n for priority, is_old, n in session.execute(stmt)}


def eligible_batch(session: Session, cutoff: datetime, keep: Iterable[str], after_id: int, limit: int) -> list[Event]:
    """The next hot events past the cutoff and not of a kept priority, in id order."""
    stmt = select(Event).where(
        Event.archived_at.is_(None), Event.id > after_id, Event.emitted_at < cutoff,
        Event.priority.not_in(sorted(keep)),
    )
    return list(session.scalars(stmt.order_by(Event.id).limit(limit)))


def rows_by_ids(session: Session, ids: Sequence[int]) -> dict[int, Event]:
    found: dict[int, Event] = {}
    for chunk in _chunks(ids):
        found.update((row.id, row) for row in session.scalars(select(Event).where(Event.id.in_(chunk))))
    return found


def archive_line(row: Event, archived_at: datetime) -> dict[str, Any]:
    """One line of an archive file: the envelope as it reads once archived, plus the one stored
    column the envelope does not show, so a restore is exact."""
    return envelope(row) | {"archived_at": iso(archived_at), "causation_depth": row.causation_depth}


def purged_heads(session: Session, entity_type: str, entity_id: int) -> dict[int, str]:
    """``{sequence: hash}``: the stream heads purged archive files recorded for this stream.

    Only a purge may leave events of a stream missing; the manifest it leaves
    behind is what vouches for them (a snapshot alone would let anyone delete
    events unnoticed). The next event present must link to the recorded hash.
    """
    key = f"{entity_type}:{entity_id}"
    rows = session.scalars(select(ArchiveManifest.stream_heads).where(
        ArchiveManifest.purged_at.is_not(None), ArchiveManifest.stream_heads[key].is_not(None)))
    return {heads[key]["sequence"]: heads[key]["hash"] for heads in rows if key in heads}


def stream_heads(lines: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{"task:7": {sequence, hash, event_id}}``: each stream's last archived event in the file."""
    heads: dict[str, dict[str, Any]] = {}
    for line in lines:
        if line["sequence"] is None:
            continue
        key = f"{line['entity']['type']}:{line['entity']['id']}"
        if key not in heads or heads[key]["sequence"] < line["sequence"]:
            heads[key] = {"sequence": line["sequence"], "hash": line["hash"], "event_id": line["event_id"]}
    return heads


def manifests_for(session: Session, paths: Sequence[str]) -> dict[str, ArchiveManifest]:
    found: dict[str, ArchiveManifest] = {}
    for chunk in _chunks(paths):
        stmt = select(ArchiveManifest).where(ArchiveManifest.path.in_(chunk))
        found.update((m.path, m) for m in session.scalars(stmt))
    return found


def manifest_by_sha256(session: Session, digest: str) -> ArchiveManifest | None:
    return session.scalars(select(ArchiveManifest).where(ArchiveManifest.sha256 == digest).limit(1)).first()


def record_archive(session: Session, path: str, lines: list[dict[str, Any]], digest: str,
                   now: datetime) -> ArchiveManifest:
    """The manifest row: what the file holds and where each stream's chain stood."""
    manifest = ArchiveManifest(
        path=path, event_count=len(lines), first_id=lines[0]["id"], last_id=lines[-1]["id"], sha256=digest,
        stream_heads=stream_heads(lines), created_at=now,
    )
    session.add(manifest)
    session.flush()
    return manifest


def mark_archived(session: Session, lines: list[dict[str, Any]], now: datetime) -> int:
    """Snapshot every affected stream, flag the rows, move their rollup counts; returns streams touched."""
    heads = stream_heads(lines)
    for key, head in heads.items():
        entity_type, entity_id = key.split(":")
        snapshots.take(session, entity_type, int(entity_id), head["sequence"], now)
    archived_at = datetime.fromisoformat(lines[0]["archived_at"])
    ids = [line["id"] for line in lines]
    marked = 0
    for chunk in _chunks(ids):
        stmt = update(Event).where(Event.id.in_(chunk), Event.archived_at.is_(None)).values(archived_at=archived_at)
        marked += session.execute(stmt.execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
    if marked != len(ids):
        raise Conflict(f"{len(ids) - marked} of {len(ids)} events were already archived or are gone")
    _move_rollups(session, lines, {False: -1, True: 1})
    return len(heads)


def _move_rollups(session: Session, lines: Iterable[dict[str, Any]], signs: dict[bool, int]) -> None:
    counts = Counter(
        (hour_bucket(datetime.fromisoformat(line["timestamp"])), line["type"], line["actor"], line["entity"]["type"])
        for line in lines
    )
    add_to_rollups(session, {key + (archived,): sign * n for key, n in counts.items()
                             for archived, sign in signs.items()})


def due_for_purge(session: Session, cutoff: datetime) -> list[ArchiveManifest]:
    """Unpurged manifests whose newest archived event (over the file's id range) is past the cutoff.

    The id range can only over-count (another file's later events inside it),
    so this errs towards keeping; the file itself is checked before deleting.
    """
    newest = (
        select(ArchiveManifest.id)
        .join(Event, Event.id.between(ArchiveManifest.first_id, ArchiveManifest.last_id))
        .where(ArchiveManifest.purged_at.is_(None), Event.archived_at.is_not(None))
        .group_by(ArchiveManifest.id)
        .having(func.max(Event.emitted_at) < cutoff)
    )
    return list(session.scalars(select(ArchiveManifest).where(ArchiveManifest.id.in_(newest))
                                .order_by(ArchiveManifest.first_id)))


def delete_archived(session: Session, manifest: ArchiveManifest, lines: list[dict[str, Any]], now: datetime) -> int:
    """Delete the file's rows (archived ones only) and their rollup counts; record the purge."""
    ids = [line["id"] for line in lines]
    present = [line for line in lines if line["id"] in _archived_ids(session, ids)]
    for chunk in _chunks([line["id"] for line in present]):
        session.execute(delete(Event).where(Event.id.in_(chunk), Event.archived_at.is_not(None))
                        .execution_options(synchronize_session=False))
    _move_rollups(session, present, {True: -1})
    manifest.purged_at = now
    return len(present)


def _archived_ids(session: Session, ids: Sequence[int]) -> set[int]:
    found: set[int] = set()
    for chunk in _chunks(ids):
        found.update(session.scalars(select(Event.id).where(Event.id.in_(chunk), Event.archived_at.is_not(None))))
    return found


def restore_rows(session: Session, lines: list[dict[str, Any]]) -> tuple[int, int]:
    """Re-insert the file's rows that are missing; rows still there must be the same event.

    Returns (inserted, already present).
    """
    existing = rows_by_ids(session, [line["id"] for line in lines])
    for line in lines:
        row = existing.get(line["id"])
        if row is not None and (row.event_id, row.hash) != (line["event_id"], line["hash"]):
            raise Conflict(f"event {line['id']} in the database is not the one in the archive")
    missing = [line for line in lines if line["id"] not in existing]
    session.add_all(_row_from_line(line) for line in missing)
    session.flush()
    _move_rollups(session, missing, {True: 1})
    return len(missing), len(lines) - len(missing)


def _row_from_line(line: dict[str, Any]) -> Event:
    entity = line["entity"]
    return Event(
        id=line["id"], event_id=line["event_id"], type=line["type"], entity_type=entity["type"],
        entity_id=entity["id"], entity_code=entity["code"], sequence=line["sequence"], actor=line["actor"],
        emitted_at=datetime.fromisoformat(line["timestamp"]), correlation_id=line["correlation_id"],
        correlation_chain=line["correlation_chain"], causation_id=line["causation_id"],
        causation_depth=line.get("causation_depth", 0), session_key=line["session_key"],
        priority=line["priority"], changes=line["changes"], data=line["data"], hash=line["hash"],
        prev_hash=line["prev_hash"], archived_at=datetime.fromisoformat(line["archived_at"]),
        hash_scheme=scheme_of(line),  # lines written before hash schemes existed are legacy
    )


def purged_leftovers(session: Session, paths: Sequence[str]) -> list[str]:
    """Files still on disk whose manifest says purged: a purge stopped between commit and unlink."""
    return sorted(path for path, m in manifests_for(session, paths).items() if m.purged_at is not None)
