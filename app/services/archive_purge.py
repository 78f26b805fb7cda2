"""Purge (archived events past retention leave for good) and its inverse, restore.

A file and its rows go together: a file is due when every event in it is past
the cutoff (its manifest's ``newest_at``). Every due file is checked first: present,
with the SHA-256 its manifest recorded (those bytes were read back and counted when
it was archived); a file that is missing or does not match is held, never purged:
its rows are then the only copy. Then each stream's state at its last purged event
is made sure of (a snapshot, the anchor folds resume from), and the rows go
set-based: on PostgreSQL every due file whose id range is its own, all together in
one transaction by id ranges and whole monthly partitions (``archive_purge_rows``);
the others (and every file on SQLite) one transaction per file, by the ids read
from it. The manifests are stamped ``purged_at`` in the same transaction; only then
are the files unlinked, and a run that stops in between leaves files the next purge
removes. Emptied monthly partitions are dropped.

Restore takes a copy of an archive file (from a backup of ``ARCHIVE_DIR``),
checks it against its manifest and every event hash, puts it back in place and
re-inserts the rows that were purged, same ids and hashes.
"""

from __future__ import annotations

import time
from array import array
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from app.domain.clock import Clock
from app.domain.errors import Conflict, NotFound
from app.domain.hashing import event_hash
from app.domain.retention import newest_is_past
from app.services.archive import BUSY_MESSAGE, ColdStorage, Progress, ProgressCallback, take_snapshots
from app.store import archive_files, archive_partitions, archive_purge_rows, archive_rows
from app.store.archive_purge_rows import DueRange
from app.store.tables import ArchiveManifest
from app.store.uow import UnitOfWork


@dataclass
class PurgeReport:
    """Files and events purged (or due, in a dry run), and files held back because they cannot be trusted."""

    cutoff: datetime
    dry_run: bool = False
    busy: bool = False
    files: list[str] = field(default_factory=list)
    events: int = 0
    held: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)
    partitions: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class DueFile:
    """A due file whose bytes are the ones its manifest recorded: its id range and count."""

    path: str
    span: DueRange


def purge_archived(older_than: str | None, dry_run: bool, cold: ColdStorage, uow: UnitOfWork,
                   reader: UnitOfWork, clock: Clock, progress: ProgressCallback | None = None) -> PurgeReport:
    """Delete archived events (rows and files) whose whole file is past the retention cutoff."""
    report = PurgeReport(cutoff=cold.policy.purge_cutoff(clock(), older_than), dry_run=dry_run)
    started = time.monotonic()
    with cold.lock() as acquired:
        if not acquired:
            report.busy = True
            return report
        if not dry_run:
            report.cleaned = _remove_leftovers(cold.root, reader)
        due = _checked_files(cold.root, reader, report)
        if dry_run:
            report.files, report.events = [d.path for d in due], sum(d.span.event_count for d in due)
        else:
            with reader:
                heads = archive_rows.last_heads(reader.session, [d.span.manifest_id for d in due])
            take_snapshots(uow, heads, clock())
            _purge_files(cold.root, due, uow, clock, report, progress or (lambda _p: None), started)
            report.partitions = _drop_empty_partitions(uow, report.cutoff)
    report.seconds = time.monotonic() - started
    return report


def _checked_files(root: Path, reader: UnitOfWork, report: PurgeReport) -> list[DueFile]:
    """Due manifests whose file is there with the SHA-256 they recorded. Those bytes were read
    back and counted when the file was archived, and the manifest's ``newest_at`` came from
    them, so a matching digest vouches for the count and the ages without parsing a line."""
    with reader:
        manifests = [(m.path, m.sha256, DueRange(m.id, m.first_id, m.last_id, m.newest_at, m.event_count))
                     for m in archive_rows.due_for_purge(reader.session, report.cutoff) if m.newest_at is not None]
    due = []
    for path, digest, span in manifests:
        if archive_files.file_sha256(root / path) == digest:
            due.append(DueFile(path, span))
        else:
            report.held.append(path)
    return due


def _exact(path: Path, count: int, cutoff: datetime) -> tuple[array[int], tuple[datetime, datetime]] | None:
    """(ids, (oldest, newest)) read from the file, when it still holds ``count`` events all past the cutoff."""
    try:
        lines, _digest = archive_files.read(path)
    except (archive_files.CorruptArchive, OSError):
        return None
    if len(lines) != count or not lines:
        return None
    stamps = [datetime.fromisoformat(line["timestamp"]) for line in lines]
    if not newest_is_past(stamps, cutoff):
        return None
    return array("q", (line["id"] for line in lines)), (min(stamps), max(stamps))


def _purge_files(root: Path, due: list[DueFile], uow: UnitOfWork, clock: Clock, report: PurgeReport,
                 progress: ProgressCallback, started: float) -> None:
    """Files whose id range is theirs alone go together, set-based (PostgreSQL); the others one
    at a time, their ids read from the file."""
    with uow:
        ranged = archive_purge_rows.partition_safe(uow.session, [d.span for d in due])
    together = [d for d in due if d.span.manifest_id in ranged]
    if together:
        with uow:
            events, _emptied = archive_purge_rows.purge_ranges(uow.session, [d.span for d in together], clock())
            uow.commit()
        _unlink(root, together, report)
        report.events += events
        progress(Progress(report.events, len(report.files), time.monotonic() - started))
    for item in (d for d in due if d.span.manifest_id not in ranged):
        exact = _exact(root / item.path, item.span.event_count, report.cutoff)
        if exact is None:
            report.held.append(item.path)
            continue
        report.events += _purge_file(uow, item.span.manifest_id, *exact, clock())
        _unlink(root, [item], report)
        progress(Progress(report.events, len(report.files), time.monotonic() - started))


def _unlink(root: Path, files: list[DueFile], report: PurgeReport) -> None:
    """After the commit: a purge that stops here leaves files the next one removes."""
    for item in files:
        archive_files.remove(root / item.path)
        report.files.append(item.path)


def _purge_file(uow: UnitOfWork, manifest_id: int, ids: array[int], stamps: tuple[datetime, datetime],
                now: datetime) -> int:
    with uow:
        manifest = uow.session.get(ArchiveManifest, manifest_id)
        if manifest is None or manifest.purged_at is not None:
            raise Conflict(f"archive manifest {manifest_id} changed during the purge")
        deleted = archive_rows.delete_archived(uow.session, manifest, ids, stamps, now)
        uow.commit()
    return deleted


def _drop_empty_partitions(uow: UnitOfWork, cutoff: datetime) -> list[str]:
    with uow:
        dropped = archive_partitions.drop_empty_before(uow.session, cutoff)
        uow.commit()
    return dropped


def _remove_leftovers(root: Path, reader: UnitOfWork) -> list[str]:
    with reader:
        leftovers = archive_rows.purged_leftovers(reader.session, archive_files.published_files(root))
    for path in leftovers:
        archive_files.remove(root / path)
    return leftovers


@dataclass(frozen=True)
class RestoreReport:
    path: str
    inserted: int
    present: int


def restore_archive(source: Path, cold: ColdStorage, uow: UnitOfWork, clock: Clock) -> RestoreReport:
    """Bring an archive file's events back exactly; rows still present are left as they are."""
    lines, digest = archive_files.read(source)
    with cold.lock() as acquired:
        if not acquired:
            raise Conflict(BUSY_MESSAGE)
        with uow:
            manifest = _manifest(uow, digest)
            _check_against(manifest, lines, source)
            path = manifest.path
        _put_back(source, cold.root / path, digest)
        with uow:
            manifest = _manifest(uow, digest)
            inserted, present = archive_rows.restore_rows(uow.session, lines)
            manifest.purged_at = None
            uow.commit()
    return RestoreReport(path, inserted, present)


def _manifest(uow: UnitOfWork, digest: str) -> ArchiveManifest:
    manifest = archive_rows.manifest_by_sha256(uow.session, digest)
    if manifest is None:
        raise NotFound(f"no archive manifest records a file with SHA-256 {digest}")
    return manifest


def _check_against(manifest: ArchiveManifest, lines: list[dict[str, Any]], source: Path) -> None:
    """Count, id range, every hash, and the chain links inside the file."""
    ids = [line["id"] for line in lines]
    if len(lines) != manifest.event_count or (ids[0], ids[-1]) != (manifest.first_id, manifest.last_id):
        raise archive_files.CorruptArchive(f"{source} does not hold the events its manifest lists")
    if any(event_hash(line) != line["hash"] for line in lines):
        raise archive_files.CorruptArchive(f"{source}: an event's hash does not recompute")
    last: dict[tuple[str, int], dict[str, Any]] = {}
    for line in (line for line in lines if line["sequence"] is not None):
        key = (line["entity"]["type"], line["entity"]["id"])
        before = last.get(key)
        if before is not None and before["sequence"] + 1 == line["sequence"] and before["hash"] != line["prev_hash"]:
            raise archive_files.CorruptArchive(f"{source}: event {line['id']} does not chain to {before['id']}")
        last[key] = line


def _put_back(source: Path, target: Path, digest: str) -> None:
    """Return the file to its place in ``ARCHIVE_DIR`` so a later purge (or restore) finds it."""
    if target.exists() and archive_files.read(target)[1] != digest:
        raise Conflict(f"{target} exists and is not this archive")
    archive_files.place(source, target)
