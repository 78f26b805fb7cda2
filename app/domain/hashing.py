"""Canonical JSON and the per-entity hash chain (DESIGN §3 "Hash chain").

Each event records the scheme its hash was computed with (``hash_scheme``):

- ``1`` (``LEGACY``): ``json.dumps`` with sorted keys, the rendering events
  were hashed with before RFC 8785. It is kept only so those events still
  verify; JSONB can rewrite the numbers it renders (``1e+20``, ``-0.0``).
- ``2`` (``JCS``): RFC 8785, the JSON Canonicalization Scheme. Numbers are
  rendered as the IEEE double they denote, so ``1``, ``1.0`` and ``1e0``
  hash alike and nothing storage does to a number changes the hash.

New events use ``CURRENT``. Readers choose by the event's own scheme, so a
stream may mix both.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785

LEGACY = 1
JCS = 2
CURRENT = JCS
SCHEMES = (LEGACY, JCS)

# Everything in the envelope except ``id``, ``hash``, ``hash_scheme`` and
# ``archived_at``: the global id is assigned by the database after hashing, and
# archiving must not change an event's identity.
HASHED_FIELDS = (
    "event_id",
    "type",
    "entity",
    "sequence",
    "actor",
    "timestamp",
    "correlation_id",
    "correlation_chain",
    "causation_id",
    "session_key",
    "priority",
    "changes",
    "data",
    "prev_hash",
)


def canonical_json(value: Any) -> str:
    """The legacy rendering (scheme 1); also the line format of archive files."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def jcs(value: Any) -> bytes:
    """RFC 8785 bytes of ``value``.

    The API refuses integers beyond ±(2^53−1) (I-JSON), but rows written
    before that rule may hold some, and later events copy them (a deleted
    event carries the final metadata). Those integers are rendered as their
    exact decimal digits, the one extension to RFC 8785 made here.
    """
    try:
        return rfc8785.dumps(value)
    except rfc8785.IntegerDomainError:
        return _jcs_with_big_integers(value)


def _jcs_with_big_integers(value: Any) -> bytes:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value).encode()
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: str(kv[0]).encode("utf-16be"))
        return b"{" + b",".join(rfc8785.dumps(str(k)) + b":" + _jcs_with_big_integers(v) for k, v in items) + b"}"
    if isinstance(value, list | tuple):
        return b"[" + b",".join(_jcs_with_big_integers(v) for v in value) + b"]"
    return rfc8785.dumps(value)


def canonical_bytes(value: Any, scheme: int) -> bytes:
    if scheme == JCS:
        return jcs(value)
    if scheme == LEGACY:
        return canonical_json(value).encode()
    raise ValueError(f"unknown hash scheme {scheme!r}")


def scheme_of(envelope: dict[str, Any]) -> int:
    """An envelope without a scheme (archive lines written before schemes existed) is legacy."""
    return int(envelope.get("hash_scheme") or LEGACY)


def event_hash(envelope: dict[str, Any], scheme: int | None = None) -> str:
    """SHA-256 over ``prev_hash`` followed by the canonical hashed fields, in the
    event's own scheme unless one is given."""
    content = {name: envelope.get(name) for name in HASHED_FIELDS}
    digest = hashlib.sha256()
    digest.update((envelope.get("prev_hash") or "").encode())
    digest.update(canonical_bytes(content, scheme_of(envelope) if scheme is None else scheme))
    return digest.hexdigest()
