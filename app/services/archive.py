"""Archiving: move old events to cold storage without ever losing or duplicating one.

Per batch (DESIGN §3 "Archive without loss"), one transaction: take the next
eligible hot events in id order (on PostgreSQL the same statement moves them to
the archive table and their rollup counts to ``archived``, uncommitted) → write
the file under a temporary name → fsync → rename → re-read and verify → manifest
(on SQLite the rows move here) → commit. A failure before the commit rolls the
rows back to hot and leaves either nothing or a published file without a
manifest; the next run discards temporary files and verifies and completes such
files (they must be exactly the hot rows they name) before archiving anything new.

The run folds the log into the rollups first (``rollup_fold``), so the rows it
moves normally carry an ``archived=false`` count to turn into an ``archived=true``
one; a row the fold has not reached only gains the latter (``archive_rows``).

Snapshots are taken once per run, for each touched stream at its last archived
event, after the batches (in chunks of ``SNAPSHOT_CHUNK`` streams). Nothing
depends on them until a purge, and purge takes any it finds missing (a run
that stopped before this step) before it deletes a row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from app.domain.clock import Clock
from app.domain.errors import Conflict
from app.domain.hashing import event_hash
from app.domain.retention import DEFAULT_BATCH_SIZE, PriorityTally, tally
from app.services import rollup_fold
from app.store import archive_files, archive_rows
from app.store.archive_lock import ColdStorage, cold_storage
from app.store.uow import UnitOfWork

__all__ = ["BUSY_MESSAGE", "ArchiveJob", "ArchiveReport", "ColdStorage", "Heads", "Progress", "ProgressCallback",
           "archive_events", "cold_storage", "take_snapshots"]

BUSY_MESSAGE = "another archive job is running; this one did nothing"
SNAPSHOT_CHUNK = 500
Heads = dict[str, int]


@dataclass(frozen=True)
class Progress:
    """Counts so far in a long run, for an operator watching it."""

    events: int
    files: int
    elapsed: float

    @property
    def rate(self) -> float | None:
        """Events per second, when any time has passed."""
        return self.events / self.elapsed if self.elapsed > 0 else None


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class ArchiveJob:
    older_than: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    dry_run: bool = False


@dataclass
class ArchiveReport:
    """What a run did (or, in a dry run, would do)."""

    cutoff: datetime
    busy: bool = False
    plan: list[PriorityTally] | None = None
    events: int = 0
    files: list[str] = field(default_factory=list)
    streams: int = 0
    recovered: list[str] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    seconds: float = 0.0


def archive_events(job: ArchiveJob, cold: ColdStorage, uow: UnitOfWork, reader: UnitOfWork, clock: Clock,
                   progress: ProgressCallback | None = None) -> ArchiveReport:
    """Archive every eligible event; a second concurrent run returns at once with ``busy``."""
    report = ArchiveReport(cutoff=cold.policy.archive_cutoff(clock(), job.older_than))
    if job.dry_run:
        with reader:
            report.plan = tally(cold.policy, archive_rows.hot_counts(reader.session, report.cutoff))
        return report
    started = time.monotonic()
    with cold.lock() as acquired:
        if not acquired:
            report.busy = True
            return report
        heads: Heads = {}
        rollup_fold.fold(uow)
        _recover(cold, uow, reader, clock, report, heads)
        _archive_batches(job, cold, uow, clock, report, progress or (lambda _p: None), heads)
        report.streams = take_snapshots(uow, heads, clock())
    report.seconds = time.monotonic() - started
    return report


def take_snapshots(uow: UnitOfWork, heads: Heads, now: datetime) -> int:
    """One snapshot per stream at its head, a chunk of streams per transaction; returns streams."""
    keys = sorted(heads)
    for start in range(0, len(keys), SNAPSHOT_CHUNK):
        with uow:
            archive_rows.snapshot_heads(uow.session, {k: heads[k] for k in keys[start:start + SNAPSHOT_CHUNK]}, now)
            uow.commit()
    return len(keys)


def _archive_batches(job: ArchiveJob, cold: ColdStorage, uow: UnitOfWork, clock: Clock, report: ArchiveReport,
                     progress: ProgressCallback, heads: Heads) -> None:
    """Batch after batch, each one transaction: take the rows (on PostgreSQL they are moved
    by the same statement), write and verify the file, add the manifest, commit. Anything
    failing before the commit rolls the rows back to hot; a file already published is
    completed by the next run (``_recover``)."""
    started, after = time.monotonic(), 0
    with uow:
        archive_rows.ensure_partitions(uow.session, report.cutoff)
        uow.commit()
    while True:
        now = clock()
        with uow:
            batch = archive_rows.take_batch(uow.session, report.cutoff, cold.policy.keep_priorities, after,
                                            job.batch_size, now)
            if not batch.lines:
                return
            path, digest = _write_file(cold.root, batch.lines, batch.texts)
            archive_rows.record_archive(uow.session, path, batch.lines, digest, now)
            _remember(heads, archive_rows.mark_archived(uow.session, batch.lines, taken=batch.moved))
            uow.commit()
        report.events += len(batch.lines)
        report.files.append(path)
        after = batch.lines[-1]["id"]
        progress(Progress(report.events, len(report.files), time.monotonic() - started))


def _write_file(root: Path, lines: list[dict[str, Any]], texts: list[str]) -> tuple[str, str]:
    """Publish the batch's file and prove it reads back; returns (relative path, SHA-256)."""
    path = archive_files.path_for(lines)
    payload = archive_files.encode_texts(texts)
    digest = archive_files.sha256(payload)
    target = root / path
    temp = archive_files.write_temp(target, payload)
    archive_files.publish(temp, target)
    archive_files.verify(target, [line["id"] for line in lines], digest)
    return path, digest


def _commit(uow: UnitOfWork, path: str, lines: list[dict[str, Any]], digest: str,
            now: datetime) -> dict[str, dict[str, Any]]:
    """The one transaction that makes a published file count: manifest, rows moved, rollups."""
    with uow:
        archive_rows.record_archive(uow.session, path, lines, digest, now)
        heads = archive_rows.mark_archived(uow.session, lines)
        uow.commit()
    return heads


def _remember(heads: Heads, file_heads: dict[str, dict[str, Any]]) -> None:
    for key, head in file_heads.items():
        heads[key] = max(heads.get(key, 0), head["sequence"])


def _recover(cold: ColdStorage, uow: UnitOfWork, reader: UnitOfWork, clock: Clock, report: ArchiveReport,
             heads: Heads) -> None:
    """Finish what an interrupted run left: temporary files are redone, published ones completed."""
    report.discarded = [str(p.relative_to(cold.root)) for p in archive_files.discard_temp_files(cold.root)]
    published = archive_files.published_files(cold.root)
    with reader:
        known = set(archive_rows.manifests_for(reader.session, published))
    for path in (p for p in published if p not in known):
        try:
            lines, digest = _orphan_lines(cold.root, path, reader)
            _remember(heads, _commit(uow, path, lines, digest, clock()))
        except (archive_files.CorruptArchive, Conflict):
            archive_files.reject(cold.root / path)
            report.rejected.append(path)
            continue
        report.recovered.append(path)
        report.events += len(lines)


def _orphan_lines(root: Path, path: str, reader: UnitOfWork) -> tuple[list[dict[str, Any]], str]:
    """A published file without a manifest is trusted only if it is exactly the hot rows it names."""
    lines, digest = archive_files.read(root / path)
    if not lines or archive_files.path_for(lines) != path:
        raise archive_files.CorruptArchive(f"{path}: its name does not match its events")
    if any(event_hash(line) != line["hash"] for line in lines):
        raise archive_files.CorruptArchive(f"{path}: an event's hash does not recompute")
    with reader:
        rows = archive_rows.rows_by_ids(reader.session, [line["id"] for line in lines])
        same = all(
            (row := rows.get(line["id"])) is not None
            and (row.event_id, row.hash) == (line["event_id"], line["hash"])
            for line in lines
        )
    if not same:
        raise Conflict(f"{path}: its events are not the hot rows it names")
    return lines, digest
