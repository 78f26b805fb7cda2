"""Nightly archive jobs for beat: the same services the CLI runs, so a job archives as the CLI does.

Acknowledged on receipt, not late: a lost run is simply the next night's, which
completes whatever this one left. Two deliveries at once are harmless anyway:
the archive lock lets one work and the other return ``busy``.
"""

from __future__ import annotations

import logging
from typing import Any

from app import metrics
from app.domain.retention import DEFAULT_BATCH_SIZE
from app.services import archive, archive_purge
from workers.celery_app import celery, runtime

log = logging.getLogger(__name__)

ARCHIVE_RUN = "archive.run"
ARCHIVE_PURGE = "archive.purge"
# A night's backlog can outlast the default job limits; a run cut short is completed by the next one.
JOB_OPTIONS: dict[str, Any] = {"acks_late": False, "soft_time_limit": 4 * 3600, "time_limit": 4 * 3600 + 300}


def _log_progress(progress: archive.Progress) -> None:
    log.info("archive progress: %d events, %d files, %s events/s", progress.events, progress.files,
             f"{progress.rate:.0f}" if progress.rate else "n/a")


@celery.task(name=ARCHIVE_RUN, **JOB_OPTIONS)
def run(older_than: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, Any]:
    """Archive what the retention policy (or ``older_than``) makes eligible."""
    rt = runtime()
    with metrics.retention_run("archive") as finished:
        report = archive.archive_events(archive.ArchiveJob(older_than, batch_size),
                                        archive.cold_storage(rt.settings, rt.engine), rt.uow(), rt.read_uow(),
                                        rt.clock, _log_progress)
        finished(report.busy, report.events)
    return {"busy": report.busy, "events": report.events, "files": report.files + report.recovered,
            "rejected": report.rejected}


@celery.task(name=ARCHIVE_PURGE, **JOB_OPTIONS)
def purge(older_than: str | None = None) -> dict[str, Any]:
    """Delete archived events, files and rows, past the retention for archives."""
    rt = runtime()
    with metrics.retention_run("purge") as finished:
        report = archive_purge.purge_archived(older_than, False, archive.cold_storage(rt.settings, rt.engine),
                                              rt.uow(), rt.read_uow(), rt.clock, _log_progress)
        finished(report.busy, report.events)
    return {"busy": report.busy, "events": report.events, "files": report.files, "held": report.held}
