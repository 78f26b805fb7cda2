"""Per-token request rates: a token bucket per token and kind (reads, writes).

With Redis configured (``REDIS_URL``, or the broker's Redis) the buckets live
there and one Lua script refills and takes atomically, on Redis's clock, so
every gunicorn worker and machine shares them. Otherwise (the zero-service
default) each process keeps its own buckets: the limit then applies per
process. A Redis that does not answer never fails a request: that request is
judged by the process's own buckets instead.

A request is counted once, when it is authenticated: a long-lived event
stream is one read, however long it stays open.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Any, Protocol

from app.config import Settings
from app.services.tokens import Principal

log = logging.getLogger(__name__)

KEY_PREFIX = "orch:ratelimit"
# Refill, take one if there is one, and say how long until there would be. Redis's own clock keeps
# machines with skewed clocks fair; the bucket expires once it would be full again anyway.
TAKE_SCRIPT = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return tostring(wait)
"""


class Buckets(Protocol):
    def take(self, key: str, rate: float, capacity: float) -> float:
        """0 when a request may go ahead, else the seconds until one may."""


class LocalBuckets:
    """One process's buckets (the zero-service default, and the fallback when Redis fails)."""

    def __init__(self) -> None:
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, rate: float, capacity: float) -> float:
        now = time.monotonic()
        with self._lock:
            tokens, at = self._state.get(key, (capacity, now))
            tokens = min(capacity, tokens + max(0.0, now - at) * rate)  # a clock set back refills nothing
            wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
            self._state[key] = (tokens - 1 if wait == 0 else tokens, now)
            return wait


class RedisBuckets:
    """Buckets shared by every process that talks to the same Redis."""

    TIMEOUT = 0.25

    def __init__(self, url: str, fallback: LocalBuckets) -> None:
        import redis

        self._errors: tuple[type[Exception], ...] = (redis.RedisError,)
        self._client = redis.Redis.from_url(url, socket_timeout=self.TIMEOUT, socket_connect_timeout=self.TIMEOUT)
        self._script: Any = self._client.register_script(TAKE_SCRIPT)
        self._fallback = fallback
        self._warned_at = 0.0

    def take(self, key: str, rate: float, capacity: float) -> float:
        try:
            return float(self._script(keys=[key], args=[repr(rate), repr(capacity)]))
        except self._errors:
            if time.monotonic() - self._warned_at > 60:
                self._warned_at = time.monotonic()
                log.warning("rate limiting falls back to per-process buckets: Redis does not answer",
                            exc_info=True)
            return self._fallback.take(key, rate, capacity)


def redis_url(settings: Settings) -> str | None:
    """``REDIS_URL``, else the broker's Redis, else None (no Redis configured)."""
    if settings.redis_url:
        return settings.redis_url
    broker = settings.celery_broker_url
    return broker if broker.startswith(("redis://", "rediss://")) else None


class RequestLimiter:
    """Decides, before a request does anything, whether its token may make it now."""

    def __init__(self, settings: Settings, buckets: Buckets | None = None) -> None:
        self._settings = settings
        if buckets is None:
            url = redis_url(settings)
            buckets = RedisBuckets(url, LocalBuckets()) if url else LocalBuckets()
        self._buckets = buckets
        # Services sharing one Redis must not share buckets: token ids repeat across databases.
        self._namespace = hashlib.sha256(settings.database_url.encode()).hexdigest()[:12]

    def rate_for(self, principal: Principal, write: bool) -> float:
        own = principal.writes_per_second if write else principal.reads_per_second
        default = self._settings.rate_limit_writes if write else self._settings.rate_limit_reads
        return own if own is not None else default

    def admit(self, principal: Principal, write: bool) -> float:
        """0 to go ahead, else the seconds to wait. A rate of 0 (or less) means unlimited."""
        rate = self.rate_for(principal, write)
        if rate <= 0 or principal.token_id is None:
            return 0.0
        capacity = max(1.0, rate * self._settings.rate_limit_burst)
        key = f"{KEY_PREFIX}:{self._namespace}:{principal.token_id}:{'w' if write else 'r'}"
        return self._buckets.take(key, rate, capacity)
