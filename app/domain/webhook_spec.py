"""Webhooks per the Standard Webhooks specification: secrets, signatures, where they may go, when to retry.

Pure functions (stdlib only); the delivery job does the I/O. The signature is
``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed with the
base64-decoded part of a ``whsec_`` secret; during a rotation one header
carries both signatures, space-separated, so receivers holding either secret
verify. Tests check it against the ``standardwebhooks`` reference verifier.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import random
from collections.abc import Iterable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64
MAX_URL_LENGTH = 2000
DEFAULT_PORTS = {"http": 80, "https": 443}
# 408 and 429 say "later"; every other 4xx says the request itself is wrong: retrying cannot help.
RETRYABLE_4XX = (408, 429)


def check_url(url: Any) -> list[str]:
    """An absolute http(s) URL with a host and no credentials in it."""
    if not isinstance(url, str) or not 0 < len(url) <= MAX_URL_LENGTH:
        return [f"params.url: an http or https URL of at most {MAX_URL_LENGTH} characters"]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return ["params.url: not a valid URL"]
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return ["params.url: an http or https URL with a host"]
    if parts.username or parts.password:
        return ["params.url: credentials do not belong in the URL"]
    return []


def check_secret(secret: Any) -> list[str]:
    """``whsec_`` followed by base64 of 24 to 64 random bytes."""
    if secret_bytes(secret) is None:
        return [f"params.secret: {SECRET_PREFIX}<base64 of {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes>"]
    return []


def secret_bytes(secret: Any) -> bytes | None:
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        return None
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES else None


def host_and_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(parts.scheme, 0)


def parse_allowed_hosts(raw: str) -> tuple[str, ...]:
    """``host`` (any port) or ``host:port``, comma-separated; empty: nothing is allowed."""
    return tuple(item.strip().lower() for item in raw.split(",") if item.strip())


def host_allowed(url: str, allowed: Iterable[str]) -> bool:
    host, port = host_and_port(url)
    entries = set(allowed)
    return bool(host) and (host in entries or f"{host}:{port}" in entries or f"[{host}]:{port}" in entries)


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = secret_bytes(secret)
    if key is None:
        raise ValueError("not a whsec_ secret")
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers; one signature per secret (two during a rotation)."""
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(signature(s, msg_id, timestamp, body) for s in secrets),
            "content-type": "application/json"}


def retryable(status: int | None) -> bool:
    """None: no answer (timeout, connection error)."""
    return status is None or status >= 500 or status in RETRYABLE_4XX


def backoff(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential with jitter: somewhere in [half, all] of ``base * 2**(attempt-1)``, at most ``cap``."""
    ceiling = min(cap, base * 2.0 ** max(attempt - 1, 0))
    draw = rng.random() if rng is not None else random.random()
    return ceiling * (0.5 + 0.5 * draw)


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())
