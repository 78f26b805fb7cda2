"""Purge (archived events past retention leave for good) and its inverse, restore.

Purge works file by file, since a file and its rows go together: a file is
due when every event in it is past the cutoff. Its rows are deleted and the
manifest stamped ``purged_at`` in one transaction, and only then is the file
unlinked; a run that stops in between leaves a file the next purge removes.
A file that is missing or does not match its manifest is held, never purged:
its rows are then the only copy.

Restore takes a copy of an archive file (from a backup of ``ARCHIVE_DIR``),
checks it against its manifest and every event hash, puts it back in place and
re-inserts the rows that were purged, same ids and hashes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from app.domain.clock import Clock
from app.domain.errors import Conflict, NotFound
from app.domain.hashing import event_hash
from app.domain.retention import newest_is_past
from app.services.archive import BUSY_MESSAGE, ColdStorage, Progress, ProgressCallback
from app.store import archive_files, archive_rows
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
    seconds: float = 0.0


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
        with reader:
            due = [(m.id, m.path, m.sha256, m.event_count) for m in
                   archive_rows.due_for_purge(reader.session, report.cutoff)]
        for manifest_id, path, digest, count in due:
            _purge_one(cold.root, manifest_id, path, _checked_lines(cold.root / path, digest, count, report.cutoff),
                       uow, clock, report)
            if progress:
                progress(Progress(report.events, len(report.files), time.monotonic() - started))
    report.seconds = time.monotonic() - started
    return report


def _purge_one(root: Path, manifest_id: int, path: str, lines: list[dict[str, Any]] | None, uow: UnitOfWork,
               clock: Clock, report: PurgeReport) -> None:
    if lines is None:
        report.held.append(path)
        return
    report.events += len(lines) if report.dry_run else _purge_file(uow, root, manifest_id, lines, clock())
    report.files.append(path)


def _checked_lines(path: Path, digest: str, count: int, cutoff: datetime) -> list[dict[str, Any]] | None:
    """The file's lines when it matches its manifest and all its events are past the cutoff."""
    if not path.exists():
        return None
    try:
        lines, actual = archive_files.read(path)
    except archive_files.CorruptArchive:
        return None
    if actual != digest or len(lines) != count:
        return None
    stamps = [datetime.fromisoformat(line["timestamp"]) for line in lines]
    return lines if newest_is_past(stamps, cutoff) else None


def _purge_file(uow: UnitOfWork, root: Path, manifest_id: int, lines: list[dict[str, Any]], now: datetime) -> int:
    with uow:
        manifest = uow.session.get(ArchiveManifest, manifest_id)
        if manifest is None or manifest.purged_at is not None:
            raise Conflict(f"archive manifest {manifest_id} changed during the purge")
        deleted = archive_rows.delete_archived(uow.session, manifest, lines, now)
        path = manifest.path
        uow.commit()
    archive_files.remove(root / path)
    return deleted


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
