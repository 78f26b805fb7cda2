"""The database side of archiving: which rows go, moving them, manifests, purge and restore.

Archived rows leave ``orchestration_events`` for ``orchestration_events_archive``
(same columns, ``archived_at`` set) with one ``INSERT … SELECT`` and one ``DELETE``
per chunk of ids, server-side; purge deletes them from the archive table once
their file's retention is over; restore re-inserts them there from the file, same
ids and hashes. Rollup counts move with the rows (``archived`` false → true → gone); a row
the fold has not counted yet (above the watermark, ``rollup_fold``) only gains its
``archived=true`` count, since there is no ``archived=false`` one to take.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Table, and_, case, delete, func, insert, literal, select, text
from sqlalchemy.orm import Session

from app.domain.clock import iso
from app.domain.errors import Conflict
from app.domain.hashing import canonical_json, scheme_of
from app.store import archive_partitions, rollup_fold, rollup_shift, snapshots
from app.store.event_store import envelope
from app.store.rollup_shift import add_to_rollups, hour_bucket
from app.store.tables import EVENTS_ARCHIVE, ArchiveManifest, Event, Snapshot
from app.store.types import UTCDateTime

EVENTS = cast(Table, Event.__table__)
# Bound parameters per IN list: well below SQLite's limit; PostgreSQL takes a whole
# batch of ids in one statement (its limit is 65,535 parameters).
IN_CHUNK = 500
PG_IN_CHUNK = 20_000
T = TypeVar("T")


def _chunks(items: Sequence[T], session: Session | None = None) -> Iterator[Sequence[T]]:
    size = PG_IN_CHUNK if session is not None and session.get_bind().dialect.name == "postgresql" else IN_CHUNK
    for start in range(0, len(items), size):
        yield items[start:start + size]


def hot_counts(session: Session, cutoff: datetime) -> dict[tuple[str, bool], int]:
    """``{(priority, stamped before cutoff): n}`` over hot events, for the dry run."""
    old = case((Event.emitted_at < cutoff, True), else_=False)
    stmt = select(Event.priority, old, func.count()).group_by(Event.priority, old)
    return {(priority, bool(is_old)): n for priority, is_old, n in session.execute(stmt)}


def eligible_batch(session: Session, cutoff: datetime, keep: Iterable[str], after_id: int, limit: int) -> list[Any]:
    """The next hot events past the cutoff and not of a kept priority, in id order (plain rows)."""
    stmt = select(*EVENTS.columns).where(
        EVENTS.c.id > after_id, EVENTS.c.emitted_at < cutoff, EVENTS.c.priority.not_in(sorted(keep)),
    )
    return list(session.execute(stmt.order_by(EVENTS.c.id).limit(limit)))


# The archive line (``archive_line``) rendered by PostgreSQL itself: no row, JSON value or
# string crosses into Python but the finished line. Columns the envelope does not name
# (any a later migration adds) ride along under their own names, so a restore stays exact;
# they are read from the table's definition once, not from every row. ``json_build_object``
# writes text as it goes, where ``jsonb`` would build, sort and re-print every value (3x slower).
_ENVELOPE_COLUMNS = ("id", "event_id", "type", "entity_type", "entity_id", "entity_code", "sequence", "actor",
                     "emitted_at", "correlation_id", "correlation_chain", "causation_id", "causation_depth",
                     "session_key", "priority", "changes", "data", "hash", "prev_hash", "archived_at")
_EXTRA_COLUMNS = "".join(f", '{c.name}', {c.name}" for c in EVENTS.columns if c.name not in _ENVELOPE_COLUMNS)
PG_LINE = (
    "json_build_object('id', id, 'event_id', event_id, 'type', type, 'entity', json_build_object("
    "'type', entity_type, 'id', entity_id, 'code', entity_code), 'sequence', sequence, 'actor', actor, "
    "'timestamp', to_char(emitted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'), "
    "'correlation_id', correlation_id, 'correlation_chain', correlation_chain, 'causation_id', causation_id, "
    "'session_key', session_key, 'priority', priority, 'changes', changes, 'data', data, 'hash', hash, "
    "'prev_hash', prev_hash, 'archived_at', CAST('{archived_at}' AS text), 'causation_depth', causation_depth"
    + _EXTRA_COLUMNS + ")::text"
)


@dataclass(frozen=True)
class Batch:
    """The next eligible events as archive lines and their JSON text; ``moved`` when the statement
    that read them already moved them to the archive table (uncommitted, in the caller's transaction)."""

    lines: list[dict[str, Any]]
    texts: list[str]
    moved: bool


def take_batch(session: Session, cutoff: datetime, keep: Iterable[str], after_id: int, limit: int,
               archived_at: datetime) -> Batch:
    """The next eligible events, in id order.

    On PostgreSQL one statement picks them, deletes them from the hot table, inserts
    them archived, moves their rollup counts and returns each line rendered by the
    database (``PG_LINE``): the rows are found once, and nothing is committed, so if
    writing the file fails the transaction rolls back and they are hot again. The
    lines carry only what manifests, paths and stream heads need. On SQLite the rows
    are read here and moved by ``mark_archived``.
    """
    if session.get_bind().dialect.name != "postgresql":
        lines = [archive_line(row, archived_at) for row in eligible_batch(session, cutoff, keep, after_id, limit)]
        return Batch(lines, [canonical_json(line) for line in lines], moved=False)
    stamp = iso(archived_at)  # our own ISO text: safe to inline
    params = {"after": after_id, "cutoff": cutoff, "keep": sorted(keep), "limit": limit, "archived_at": archived_at,
              "upto": rollup_fold.hold(session)}
    lines, texts = [], []
    rows = sorted(session.execute(text(_pg_take().replace("{line}", PG_LINE.format(archived_at=stamp))), params),
                  key=lambda row: row.id)
    for row in rows:
        lines.append({"id": row.id, "event_id": row.event_id, "entity": {"type": row.entity_type, "id": row.entity_id},
                      "sequence": row.sequence, "hash": row.hash, "timestamp": iso(row.emitted_at),
                      "archived_at": stamp})
        texts.append(row.line)
    return Batch(lines, texts, moved=True)


# The months holding hot events before the cutoff, one probe of the ``(emitted_at, id)`` index each.
PG_MONTHS = f"""
WITH RECURSIVE m(month) AS (
    SELECT date_trunc('month', min(emitted_at), 'UTC') FROM {EVENTS.name} WHERE emitted_at < :cutoff
    UNION ALL
    SELECT (SELECT date_trunc('month', min(emitted_at), 'UTC') FROM {EVENTS.name}
            WHERE emitted_at >= (m.month AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC'
              AND emitted_at < :cutoff)
    FROM m WHERE m.month IS NOT NULL)
SELECT month FROM m WHERE month IS NOT NULL"""


def ensure_partitions(session: Session, cutoff: datetime) -> None:
    """Every month holding hot events before ``cutoff`` has its archive partition (once per run)."""
    if session.get_bind().dialect.name == "postgresql":
        archive_partitions.ensure(session, session.scalars(text(PG_MONTHS), {"cutoff": cutoff}).all())


def rows_by_ids(session: Session, ids: Sequence[int], *, archived: bool = False) -> dict[int, Any]:
    """Rows of the hot table (or of the archive) with these ids."""
    table = EVENTS_ARCHIVE if archived else EVENTS
    found: dict[int, Any] = {}
    for chunk in _chunks(ids):
        found.update((row.id, row) for row in session.execute(select(*table.columns).where(table.c.id.in_(chunk))))
    return found


def archive_line(row: Any, archived_at: datetime) -> dict[str, Any]:
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
        newest_at=max(datetime.fromisoformat(line["timestamp"]) for line in lines),
    )
    session.add(manifest)
    session.flush()
    return manifest


def mark_archived(session: Session, lines: list[dict[str, Any]], *,
                  taken: bool = False) -> dict[str, dict[str, Any]]:
    """Move the file's rows to the archive table and their rollup counts to ``archived``
    (unless ``take_batch`` already did, ``taken``); returns the file's stream heads
    (snapshots are the caller's, once per run)."""
    if taken:
        return stream_heads(lines)
    archived_at = datetime.fromisoformat(lines[0]["archived_at"])
    archive_partitions.ensure(session, (datetime.fromisoformat(line["timestamp"]) for line in lines))
    columns = [c.name for c in EVENTS.columns]
    stamped = [literal(archived_at, UTCDateTime()).label(name) if name == "archived_at" else EVENTS.c[name]
               for name in columns]
    ids = [line["id"] for line in lines]
    moved, upto = 0, rollup_fold.hold(session)
    postgres = session.get_bind().dialect.name == "postgresql"
    for chunk in _chunks(ids, session):
        if postgres:
            params = {"ids": list(chunk), "archived_at": archived_at, "upto": upto}
            moved += session.execute(text(_pg_move()), params).scalar_one()
            continue
        rows = select(*stamped).where(EVENTS.c.id.in_(chunk))
        session.execute(insert(EVENTS_ARCHIVE).from_select(columns, rows))
        rollup_shift.shift(session, EVENTS, and_(EVENTS.c.id.in_(chunk), EVENTS.c.id <= upto), False, -1)
        rollup_shift.shift(session, EVENTS, EVENTS.c.id.in_(chunk), True, 1)
        moved += cast(Any, session.execute(delete(EVENTS).where(EVENTS.c.id.in_(chunk)))).rowcount
    if moved != len(ids):
        raise Conflict(f"{len(ids) - moved} of {len(ids)} events were already archived or are gone")
    return stream_heads(lines)


PG_PURGE = """
WITH gone AS (DELETE FROM orchestration_events_archive
              WHERE id = ANY(:ids) AND emitted_at BETWEEN :oldest AND :newest
              RETURNING emitted_at, type, actor, entity_type),
counted AS (SELECT date_trunc('hour', emitted_at, 'UTC') AS hour, type, actor, entity_type, count(*) AS n
            FROM gone GROUP BY 1, 2, 3, 4),
shifted AS (INSERT INTO orchestration_event_rollups (bucket_start, type, actor, entity_type, archived, count)
            SELECT hour, type, actor, entity_type, true, -n FROM counted
            ON CONFLICT (bucket_start, type, actor, entity_type, archived)
            DO UPDATE SET count = orchestration_event_rollups.count + excluded.count)
SELECT count(*) FROM gone"""


# ``archived=false`` counts exist only for rows the fold counted (``:upto``, the held watermark).
_ROLLUPS_MOVED = """
counted AS (SELECT date_trunc('hour', emitted_at, 'UTC') AS hour, type, actor, entity_type, count(*) AS n,
                   count(*) FILTER (WHERE id <= :upto) AS folded
            FROM archived GROUP BY 1, 2, 3, 4),
shifted AS (INSERT INTO orchestration_event_rollups (bucket_start, type, actor, entity_type, archived, count)
            SELECT hour, type, actor, entity_type, false, -folded FROM counted WHERE folded > 0
            UNION ALL
            SELECT hour, type, actor, entity_type, true, n FROM counted
            ON CONFLICT (bucket_start, type, actor, entity_type, archived)
            DO UPDATE SET count = orchestration_event_rollups.count + excluded.count)"""


def _pg_archived() -> str:
    """The CTE that inserts the ``moved`` rows into the archive table, stamped."""
    columns = [c.name for c in EVENTS.columns]
    stamped = ", ".join("CAST(:archived_at AS timestamptz)" if c == "archived_at" else c for c in columns)
    return (f"archived AS (INSERT INTO {EVENTS_ARCHIVE.name} ({', '.join(columns)}) SELECT {stamped} FROM moved "
            "RETURNING id, emitted_at, type, actor, entity_type),")


def _pg_move() -> str:
    """One statement: delete the hot rows, insert them archived, move their rollup counts."""
    return f"""
WITH moved AS (DELETE FROM {EVENTS.name} WHERE id = ANY(:ids) RETURNING *),
{_pg_archived()}{_ROLLUPS_MOVED}
SELECT count(*) FROM moved"""


def _pg_take() -> str:
    """``_pg_move`` for the next eligible batch, returning its lines (``{line}``: ``PG_LINE``).

    The batch's ids go in as an array, so the delete probes the primary key (a join may
    hash the whole table); lines come back unordered (sorting them would spill to disk)."""
    return f"""
WITH batch AS (SELECT id FROM {EVENTS.name} WHERE id > :after AND emitted_at < :cutoff
               AND NOT (priority = ANY(CAST(:keep AS text[]))) ORDER BY id LIMIT :limit),
moved AS (DELETE FROM {EVENTS.name} WHERE id = ANY(ARRAY(SELECT id FROM batch)) RETURNING *),
{_pg_archived()}{_ROLLUPS_MOVED}
SELECT id, event_id, entity_type, entity_id, sequence, hash, emitted_at, {{line}} AS line FROM moved"""


def snapshot_heads(session: Session, heads: dict[str, int], now: datetime) -> None:
    """One snapshot per stream at ``heads[stream]`` (idempotent): the anchor a purge resumes from.

    On PostgreSQL a chunk of streams costs two queries (each stream's newest snapshot
    at or before its head, then the events after it from both tables), not three per
    stream; the folds are the domain's, as in ``snapshots.take``.
    """
    if session.get_bind().dialect.name != "postgresql":
        for key, sequence in sorted(heads.items()):
            kind, number = key.split(":")
            snapshots.take(session, kind, int(number), sequence, now)
        return
    wanted: list[tuple[str, int, int]] = sorted(
        (key.split(":")[0], int(key.split(":")[1]), sequence) for key, sequence in heads.items())
    if not wanted:
        return
    bases = {(row.entity_type, row.entity_id): row for row in session.execute(text(PG_SNAPSHOT_BASES), {
        "types": [w[0] for w in wanted], "ids": [w[1] for w in wanted], "seqs": [w[2] for w in wanted]})}
    todo: list[tuple[str, int, int, int]] = [(t, i, bases[(t, i)].sequence or 0, upto) for t, i, upto in wanted if bases[(t, i)].sequence != upto]
    if not todo:
        return
    events: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in session.execute(text(_pg_stream_stretches()), {
            "types": [w[0] for w in todo], "ids": [w[1] for w in todo], "lo": [w[2] for w in todo],
            "hi": [w[3] for w in todo]}):
        events.setdefault((row.entity_type, row.entity_id), []).append(envelope(cast(Any, row)))
    for entity_type, entity_id, _lo, _upto in todo:
        stretch, base = events.get((entity_type, entity_id)), bases[(entity_type, entity_id)]
        if not stretch:
            continue
        state = snapshots.fold_to_end(session, entity_type, entity_id, stretch,
                                      dict(base.state) if base.state is not None else None, base.sequence or 0)
        if state is None:
            continue
        last = stretch[-1]
        session.add(Snapshot(entity_type=entity_type, entity_id=entity_id, sequence=last["sequence"], state=state,
                             last_hash=last["hash"], last_event_id=last["event_id"],
                             as_of=datetime.fromisoformat(last["timestamp"]), created_at=now))
    session.flush()


PG_SNAPSHOT_BASES = """
SELECT h.entity_type, h.entity_id, s.sequence, s.state
FROM unnest(CAST(:types AS text[]), CAST(:ids AS int[]), CAST(:seqs AS int[])) AS h(entity_type, entity_id, upto)
LEFT JOIN LATERAL (SELECT sequence, state FROM orchestration_snapshots s
                   WHERE s.entity_type = h.entity_type AND s.entity_id = h.entity_id AND s.sequence <= h.upto
                   ORDER BY s.sequence DESC LIMIT 1) s ON true"""


def _pg_stream_stretches() -> str:
    """Each stream's events ``(lo, hi]`` by sequence, hot and archived, in stream order."""
    columns = ", ".join(c.name for c in EVENTS.columns)
    one = ("SELECT {columns} FROM {table} e WHERE e.entity_type = h.entity_type AND e.entity_id = h.entity_id "
           "AND e.sequence > h.lo AND e.sequence <= h.hi")
    both = " UNION ALL ".join(one.format(columns=columns, table=t) for t in (EVENTS.name, EVENTS_ARCHIVE.name))
    return (f"SELECT x.* FROM unnest(CAST(:types AS text[]), CAST(:ids AS int[]), CAST(:lo AS int[]), "
            f"CAST(:hi AS int[])) AS h(entity_type, entity_id, lo, hi) CROSS JOIN LATERAL ({both}) x "
            "ORDER BY x.entity_type, x.entity_id, x.sequence, x.id")


def _move_rollups(session: Session, lines: Iterable[dict[str, Any]], signs: dict[bool, int]) -> None:
    counts = Counter(
        (hour_bucket(datetime.fromisoformat(line["timestamp"])), line["type"], line["actor"], line["entity"]["type"])
        for line in lines
    )
    add_to_rollups(session, {key + (archived,): sign * n for key, n in counts.items()
                             for archived, sign in signs.items()})


def due_for_purge(session: Session, cutoff: datetime) -> list[Any]:
    """Unpurged manifests whose newest event is past the cutoff, oldest file first, as plain rows
    without their stream heads (a run of a million events would hold hundreds of MB of them).

    The file itself is checked again before anything is deleted.
    """
    m = ArchiveManifest
    return list(session.execute(select(m.id, m.path, m.sha256, m.first_id, m.last_id, m.newest_at, m.event_count)
                                .where(m.purged_at.is_(None), m.newest_at < cutoff).order_by(m.first_id)))


def last_heads(session: Session, manifest_ids: Sequence[int]) -> dict[str, int]:
    """``{stream: sequence}``: each stream's last event among these manifests' files, read one
    manifest's heads at a time."""
    heads: dict[str, int] = {}
    for chunk in _chunks(manifest_ids):
        stmt = select(ArchiveManifest.stream_heads).where(ArchiveManifest.id.in_(chunk))
        for (file_heads,) in session.execute(stmt, execution_options={"yield_per": 1}):
            for key, head in (file_heads or {}).items():
                heads[key] = max(heads.get(key, 0), head["sequence"])
    return heads


def delete_archived(session: Session, manifest: ArchiveManifest, ids: Sequence[int],
                    stamps: tuple[datetime, datetime], now: datetime) -> int:
    """Delete the file's rows from the archive and their rollup counts, set-based; record the purge.

    ``stamps`` (the file's oldest and newest timestamps) lets PostgreSQL look in
    the file's monthly partitions only.
    """
    gone = 0
    table = EVENTS_ARCHIVE.c
    postgres = session.get_bind().dialect.name == "postgresql"
    for chunk in _chunks(ids, session):
        if postgres:
            params = {"ids": list(chunk), "oldest": stamps[0], "newest": stamps[1]}
            gone += session.execute(text(PG_PURGE), params).scalar_one()
            continue
        these = and_(table.id.in_(chunk), table.emitted_at.between(*stamps))
        rollup_shift.shift(session, EVENTS_ARCHIVE, these, True, -1)
        gone += cast(Any, session.execute(delete(EVENTS_ARCHIVE).where(these))).rowcount
    manifest.purged_at = now
    return gone


def restore_rows(session: Session, lines: list[dict[str, Any]]) -> tuple[int, int]:
    """Re-insert the file's rows that are missing; rows still there must be the same event.

    Returns (inserted, already present).
    """
    ids = [line["id"] for line in lines]
    existing = rows_by_ids(session, ids, archived=True) | rows_by_ids(session, ids)
    for line in lines:
        row = existing.get(line["id"])
        if row is not None and (row.event_id, row.hash) != (line["event_id"], line["hash"]):
            raise Conflict(f"event {line['id']} in the database is not the one in the archive")
    missing = [line for line in lines if line["id"] not in existing]
    if missing:
        archive_partitions.ensure(session, (datetime.fromisoformat(line["timestamp"]) for line in missing))
        session.execute(insert(EVENTS_ARCHIVE), [_row_from_line(line) for line in missing])
    _move_rollups(session, missing, {True: 1})
    return len(missing), len(lines) - len(missing)


def _row_from_line(line: dict[str, Any]) -> dict[str, Any]:
    entity = line["entity"]
    return {
        "id": line["id"], "event_id": line["event_id"], "type": line["type"], "entity_type": entity["type"],
        "entity_id": entity["id"], "entity_code": entity["code"], "sequence": line["sequence"],
        "actor": line["actor"], "emitted_at": datetime.fromisoformat(line["timestamp"]),
        "correlation_id": line["correlation_id"], "correlation_chain": line["correlation_chain"],
        "causation_id": line["causation_id"], "causation_depth": line.get("causation_depth", 0),
        "session_key": line["session_key"], "priority": line["priority"], "changes": line["changes"],
        "data": line["data"], "hash": line["hash"], "prev_hash": line["prev_hash"],
        "archived_at": datetime.fromisoformat(line["archived_at"]),
        "hash_scheme": scheme_of(line),  # lines written before hash schemes existed are legacy
    }


def purged_leftovers(session: Session, paths: Sequence[str]) -> list[str]:
    """Files still on disk whose manifest says purged: a purge stopped between commit and unlink."""
    return sorted(path for path, m in manifests_for(session, paths).items() if m.purged_at is not None)
