"""One archive job at a time, across processes and machines that share the database.

PostgreSQL: a session-level advisory lock held on its own autocommit
connection for the whole run (no transaction stays open while files are
written). SQLite: an exclusive ``flock`` on a file beside the database. Both
are released by the operating system or the server if the process dies, so a
crashed run never blocks the next one.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text

from app.config import Settings
from app.domain.retention import RetentionPolicy

# Arbitrary but fixed: archive, purge and restore all take this one key.
ARCHIVE_JOB_LOCK = 7_236_052_154_312_557_202
LOCK_FILE_SUFFIX = ".archive.lock"


@dataclass(frozen=True)
class ColdStorage:
    """Where archive files live, the retention policy, and the lock that keeps archive jobs one at a time."""

    root: Path
    policy: RetentionPolicy
    lock: Callable[[], AbstractContextManager[bool]]


def cold_storage(settings: Settings, engine: Engine) -> ColdStorage:
    """Build the archive wiring from configuration (CONTRACT §7); the services get it ready-made,
    so they never see the engine or the settings."""
    policy = RetentionPolicy.from_config(settings.retention_archive_after, settings.retention_delete_after,
                                         settings.retention_keep_priorities)
    root = Path(settings.archive_dir)
    return ColdStorage(root, policy, lambda: exclusive(engine, root))


@contextmanager
def exclusive(engine: Engine, fallback_dir: Path) -> Iterator[bool]:
    """Yield True while this process alone runs archive jobs, False when another one does."""
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine) as acquired:
            yield acquired
    else:
        with _lock_file(_lock_path(engine, fallback_dir)) as acquired:
            yield acquired


@contextmanager
def _advisory_lock(engine: Engine) -> Iterator[bool]:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        acquired = bool(connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": ARCHIVE_JOB_LOCK}))
        try:
            yield acquired
        finally:
            if acquired:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ARCHIVE_JOB_LOCK})


def _lock_path(engine: Engine, fallback_dir: Path) -> Path:
    database = engine.url.database
    if database and database != ":memory:":
        return Path(database).with_name(Path(database).name + LOCK_FILE_SUFFIX)
    return fallback_dir / LOCK_FILE_SUFFIX.lstrip(".")


@contextmanager
def _lock_file(path: Path) -> Iterator[bool]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
