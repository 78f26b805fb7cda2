"""Cold storage on disk: gzip JSON Lines archive files, written so a crash never half-publishes one.

A file is written under a temporary name, fsynced, renamed into place (and its
directory fsynced), then read back and checked before any row is marked. The
gzip stream carries no timestamp or name, so the same events always give the
same bytes and the same SHA-256.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from app.domain.clock import as_utc
from app.domain.errors import Invalid
from app.domain.hashing import canonical_json

SUFFIX = ".jsonl.gz"
TEMP_SUFFIX = ".tmp"
REJECTED_SUFFIX = ".rejected"


class CorruptArchive(Invalid):
    """An archive file that does not hold what its manifest (or its name) says."""


def relative_path(first_id: int, last_id: int, first_timestamp: datetime) -> str:
    """``YYYY/MM/DD/<first>-<last>.jsonl.gz``, dated by the first event so a rerun picks the same name."""
    return f"{as_utc(first_timestamp):%Y/%m/%d}/{first_id}-{last_id}{SUFFIX}"


def path_for(lines: Sequence[dict[str, Any]]) -> str:
    """The relative path of the file holding these archive lines (first line first)."""
    first = lines[0]
    return relative_path(first["id"], lines[-1]["id"], datetime.fromisoformat(first["timestamp"]))


def encode(lines: Iterable[dict[str, Any]]) -> bytes:
    return encode_texts(canonical_json(line) for line in lines)


def encode_texts(texts: Iterable[str]) -> bytes:
    """One JSON document a line, gzip level 6 (zlib's default: the speed/size balance of ``gzip``)."""
    text = "".join(line + "\n" for line in texts)
    return gzip.compress(text.encode(), compresslevel=6, mtime=0)


def sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def file_sha256(path: Path) -> str | None:
    """SHA-256 of a file's bytes, read in blocks (memory stays flat); None when it is missing."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    except FileNotFoundError:
        return None
    return digest.hexdigest()


def _fsync_dir(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def write_temp(target: Path, payload: bytes) -> Path:
    """Write ``payload`` beside ``target`` under a temporary name and flush it to disk."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(target.name + TEMP_SUFFIX)
    with open(temp, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    return temp


def publish(temp: Path, target: Path) -> None:
    """Atomically give the synced temporary file its final name."""
    os.replace(temp, target)
    _fsync_dir(target.parent)


def read(path: Path) -> tuple[list[dict[str, Any]], str]:
    """(lines, SHA-256 of the file's bytes); a truncated or garbled file is ``CorruptArchive``."""
    payload = path.read_bytes()
    try:
        text = gzip.decompress(payload).decode()
        lines = [json.loads(line) for line in text.splitlines() if line]
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptArchive(f"{path} is not a readable gzip JSON Lines file: {exc}") from None
    return lines, sha256(payload)


def verify(path: Path, ids: Sequence[int], digest: str) -> None:
    """Re-read a published file: the expected SHA-256 (so exactly the bytes written), a gzip
    stream that decompresses whole, one line per event, the first and last ids in place."""
    payload = path.read_bytes()
    if sha256(payload) != digest:
        raise CorruptArchive(f"{path}: SHA-256 {sha256(payload)} does not match {digest}")
    try:
        lines = gzip.decompress(payload).splitlines()
        ends = [json.loads(lines[0])["id"], json.loads(lines[-1])["id"]] if lines else []
    except (OSError, EOFError, ValueError, KeyError) as exc:
        raise CorruptArchive(f"{path} does not read back: {exc}") from None
    if len(lines) != len(ids) or ends != [ids[0], ids[-1]]:
        raise CorruptArchive(f"{path}: holds {len(lines)} events, expected {len(ids)} in id order")


def discard_temp_files(root: Path) -> list[Path]:
    """Temporary files are what a run left before renaming: never trusted, always redone."""
    found = sorted(root.rglob(f"*{SUFFIX}{TEMP_SUFFIX}")) if root.exists() else []
    for temp in found:
        temp.unlink(missing_ok=True)
    return found


def published_files(root: Path) -> list[str]:
    """Every archive file under ``root``, as paths relative to it."""
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob(f"*{SUFFIX}"))


def reject(path: Path) -> Path:
    """Move a file that failed verification aside, so its events can be archived again."""
    aside = path.with_name(path.name + REJECTED_SUFFIX)
    os.replace(path, aside)
    _fsync_dir(path.parent)
    return aside


def remove(path: Path) -> bool:
    if not path.exists():
        return False
    path.unlink()
    _fsync_dir(path.parent)
    return True


def place(source: Path, target: Path) -> bool:
    """Copy ``source`` to ``target`` the same crash-safe way; False when it is already there."""
    if target.exists() or source.resolve() == target.resolve():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(target.name + TEMP_SUFFIX)
    with open(source, "rb") as src, open(temp, "wb") as dst:
        shutil.copyfileobj(src, dst)
        dst.flush()
        os.fsync(dst.fileno())
    publish(temp, target)
    return True
