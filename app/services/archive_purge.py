"""Purge (archived events past retention leave for good) and its inverse, restore.

A file and its rows go together: a file is due when every event in it is past
the cutoff (its manifest's ``newest_at``). Every due file is read and checked
first (present, same SHA-256 and count as its manifest, every event past the
cutoff); a file that is missing or does not match is held, never purged: its
rows are then the only copy. Then each stream's state at its last purged event
is made sure of (a snapshot, the anchor folds resume from), and file by file
the rows are deleted set-based (one ``DELETE … RETURNING`` per chunk of ids,
pruned to the file's partitions) and the manifest stamped ``purged_at`` in one
transaction; only then is the file unlinked, and a run that stops in between
leaves a file the next purge removes. Emptied monthly partitions are dropped.

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
from app.services.archive import BUSY_MESSAGE, ColdStorage, Heads, Progress, ProgressCallback, take_snapshots
from app.store import archive_files, archive_partitions, archive_rows
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
    """A due file that matched its manifest: its event ids and time span, and its stream heads."""

    manifest_id: int
    path: str
    ids: array[int]
    stamps: tuple[datetime, datetime]
    heads: dict[str, Any]


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
            report.files, report.events = [d.path for d in due], sum(len(d.ids) for d in due)
        else:
            take_snapshots(uow, _last_heads(due), clock())
            _purge_files(cold.root, due, uow, clock, report, progress, started)
            report.partitions = _drop_empty_partitions(uow, report.cutoff)
    report.seconds = time.monotonic() - started
    return report


def _checked_files(root: Path, reader: UnitOfWork, report: PurgeReport) -> list[DueFile]:
    with reader:
        manifests = [(m.id, m.path, m.sha256, m.event_count, m.stream_heads) for m in
                     archive_rows.due_for_purge(reader.session, report.cutoff)]
    due = []
    for manifest_id, path, digest, count, heads in manifests:
        checked = _checked(root / path, digest, count, report.cutoff)
        if checked is None:
            report.held.append(path)
        else:
            due.append(DueFile(manifest_id, path, checked[0], checked[1], heads or {}))
    return due


def _checked(path: Path, digest: str, count: int,
             cutoff: datetime) -> tuple[array[int], tuple[datetime, datetime]] | None:
    """(ids, (oldest, newest)) when the file matches its manifest and all its events are past the cutoff."""
    if not path.exists():
        return None
    try:
        lines, actual = archive_files.read(path)
    except archive_files.CorruptArchive:
        return None
    if actual != digest or len(lines) != count or not lines:
        return None
    stamps = [datetime.fromisoformat(line["timestamp"]) for line in lines]
    if not newest_is_past(stamps, cutoff):
        return None
    return array("q", (line["id"] for line in lines)), (min(stamps), max(stamps))


def _last_heads(due: list[DueFile]) -> Heads:
    """Each stream's last event among the files about to go: where its folds will resume."""
    heads: Heads = {}
    for item in due:
        for key, head in item.heads.items():
            heads[key] = max(heads.get(key, 0), head["sequence"])
    return heads


def _purge_files(root: Path, due: list[DueFile], uow: UnitOfWork, clock: Clock, report: PurgeReport,
                 progress: ProgressCallback | None, started: float) -> None:
    for item in due:
        report.events += _purge_file(uow, root, item, clock())
        report.files.append(item.path)
        if progress:
            progress(Progress(report.events, len(report.files), time.monotonic() - started))


def _purge_file(uow: UnitOfWork, root: Path, item: DueFile, now: datetime) -> int:
    with uow:
        manifest = uow.session.get(ArchiveManifest, item.manifest_id)
        if manifest is None or manifest.purged_at is not None:
            raise Conflict(f"archive manifest {item.manifest_id} changed during the purge")
        deleted = archive_rows.delete_archived(uow.session, manifest, item.ids, item.stamps, now)
        uow.commit()
    archive_files.remove(root / item.path)
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
