"""Settings from the environment: the only reader of ``os.environ`` in ``app/``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = Path(os.getcwd()) / "var"


def _default_database_url() -> str:
    return f"sqlite:///{DEFAULT_DATA_DIR / 'orchestration.db'}"


@dataclass(frozen=True)
class Settings:
    """Everything the service can be told; every default works on one machine.

    The defaults give the zero-service quick start: SQLite under ``var/`` and
    Celery's filesystem transport, so nothing but Python is needed.
    """

    database_url: str = field(default_factory=_default_database_url)
    celery_broker_url: str = "filesystem://"
    redis_url: str | None = None
    archive_dir: str = str(DEFAULT_DATA_DIR / "archive")
    broker_dir: str = str(DEFAULT_DATA_DIR / "broker")
    retention_archive_after: str = "90d"
    retention_delete_after: str = "365d"
    retention_keep_priorities: tuple[str, ...] = ("P0",)
    # Five-field cron expressions (UTC) for beat's nightly archive and purge jobs.
    archive_schedule: str = "30 2 * * *"
    purge_schedule: str = "45 3 * * *"
    max_content_length: int = 1024 * 1024
    snapshot_every: int = 50
    causation_depth_limit: int = 5
    dispatch_after_commit: bool = True
    sql_echo: bool = False
    automation_modules: tuple[str, ...] = ()
    automation_max_retries: int = 8
    outbox_sweep_after: float = 5.0
    # Operations (issue 16): health threshold, logs, metrics.
    health_max_outbox_age: float = 60.0
    log_format: str = "text"
    log_level: str = "INFO"
    metrics_dir: str | None = None
    worker_metrics_port: int | None = None
    worker_metrics_addr: str = "127.0.0.1"
    pgbouncer: bool = False
    outbox_max_deliveries: int = 5
    # Tokens (issue 17): per-token request rates (token bucket), burst in seconds' worth of the rate,
    # how often a process re-reads the revocation epoch, and how often last_used_at may be written.
    rate_limit_writes: float = 50.0
    rate_limit_reads: float = 200.0
    rate_limit_burst: float = 2.0
    token_epoch_poll: float = 0.5
    token_last_used_every: float = 60.0
    # Webhooks (issue 13): where they may go, how long and how often they are retried.
    webhook_allowed_hosts: tuple[str, ...] = ()
    webhook_retry_for: float = 24 * 3600.0
    webhook_backoff_base: float = 5.0
    webhook_backoff_max: float = 3600.0
    webhook_connect_timeout: float = 5.0
    webhook_read_timeout: float = 10.0
    webhook_rotation_window: float = 24 * 3600.0
    # Live event stream (GET /events/stream): heartbeat comment period, longest
    # connection (the client resumes with Last-Event-ID), open streams per token,
    # how often a process re-reads the log when no pub/sub wakes it, ticket life.
    stream_heartbeat: float = 15.0
    stream_max_seconds: float = 300.0
    stream_max_per_token: int = 5
    stream_poll_interval: float = 0.5
    stream_ticket_ttl: float = 30.0
    stream_slot_dir: str = str(DEFAULT_DATA_DIR / "streams")

    @property
    def pubsub_redis_url(self) -> str | None:
        """REDIS_URL, or else the broker's Redis when the broker is one."""
        if self.redis_url:
            return self.redis_url
        return self.celery_broker_url if self.celery_broker_url.startswith(("redis://", "rediss://")) else None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        base = cls()
        keep = env.get("ORCH_RETENTION_KEEP_PRIORITIES")
        return cls(
            database_url=env.get("DATABASE_URL", base.database_url),
            celery_broker_url=env.get("CELERY_BROKER_URL", base.celery_broker_url),
            redis_url=env.get("REDIS_URL") or None,
            archive_dir=env.get("ARCHIVE_DIR", base.archive_dir),
            broker_dir=env.get("ORCH_BROKER_DIR", base.broker_dir),
            retention_archive_after=env.get(
                "ORCH_RETENTION_ARCHIVE_AFTER", base.retention_archive_after
            ),
            retention_delete_after=env.get(
                "ORCH_RETENTION_DELETE_AFTER", base.retention_delete_after
            ),
            retention_keep_priorities=(
                tuple(p.strip() for p in keep.split(",") if p.strip())
                if keep is not None
                else base.retention_keep_priorities
            ),
            archive_schedule=env.get("ORCH_ARCHIVE_SCHEDULE", base.archive_schedule),
            purge_schedule=env.get("ORCH_PURGE_SCHEDULE", base.purge_schedule),
            max_content_length=int(
                env.get("ORCH_MAX_CONTENT_LENGTH", base.max_content_length)
            ),
            snapshot_every=int(env.get("ORCH_SNAPSHOT_EVERY", base.snapshot_every)),
            causation_depth_limit=int(
                env.get("ORCH_CAUSATION_DEPTH_LIMIT", base.causation_depth_limit)
            ),
            dispatch_after_commit=env.get("ORCH_DISPATCH_AFTER_COMMIT", "1") != "0",
            sql_echo=env.get("ORCH_SQL_ECHO", "0") == "1",
            automation_modules=tuple(
                m.strip() for m in env.get("ORCH_AUTOMATION_MODULES", "").split(",") if m.strip()
            ),
            automation_max_retries=int(
                env.get("ORCH_AUTOMATION_MAX_RETRIES", base.automation_max_retries)
            ),
            outbox_sweep_after=float(env.get("ORCH_OUTBOX_SWEEP_AFTER", base.outbox_sweep_after)),
            **_operations(env, base),
            outbox_max_deliveries=max(1, int(env.get("ORCH_OUTBOX_MAX_DELIVERIES", base.outbox_max_deliveries))),
            rate_limit_writes=float(env.get("ORCH_RATE_LIMIT_WRITES", base.rate_limit_writes)),
            rate_limit_reads=float(env.get("ORCH_RATE_LIMIT_READS", base.rate_limit_reads)),
            rate_limit_burst=float(env.get("ORCH_RATE_LIMIT_BURST", base.rate_limit_burst)),
            token_epoch_poll=float(env.get("ORCH_TOKEN_EPOCH_POLL", base.token_epoch_poll)),
            token_last_used_every=float(env.get("ORCH_TOKEN_LAST_USED_EVERY", base.token_last_used_every)),
            **_webhook_settings(env, base),
            **_stream_settings(env, base),
        )


def _operations(env: dict[str, str], base: Settings) -> dict[str, Any]:
    """Health, logging and metrics settings (one block, so other settings merge cleanly)."""
    port = env.get("ORCH_WORKER_METRICS_PORT")
    return {
        "health_max_outbox_age": float(env.get("ORCH_HEALTH_MAX_OUTBOX_AGE", base.health_max_outbox_age)),
        "log_format": env.get("LOG_FORMAT", base.log_format).strip().lower() or base.log_format,
        "log_level": env.get("LOG_LEVEL", base.log_level).strip().upper() or base.log_level,
        "metrics_dir": env.get("PROMETHEUS_MULTIPROC_DIR") or None,
        "worker_metrics_port": int(port) if port else None,
        "worker_metrics_addr": env.get("ORCH_WORKER_METRICS_ADDR", base.worker_metrics_addr),
        "pgbouncer": env.get("ORCH_PGBOUNCER", "0") == "1",
    }


def _webhook_settings(env: dict[str, str], base: Settings) -> dict[str, Any]:
    def seconds(name: str, default: float) -> float:
        return float(env.get(name, default))

    return {
        "webhook_allowed_hosts": tuple(h.strip().lower() for h in env.get("ORCH_WEBHOOK_ALLOWED_HOSTS", "").split(",")
                                       if h.strip()),
        "webhook_retry_for": seconds("ORCH_WEBHOOK_RETRY_FOR", base.webhook_retry_for),
        "webhook_backoff_base": seconds("ORCH_WEBHOOK_BACKOFF_BASE", base.webhook_backoff_base),
        "webhook_backoff_max": seconds("ORCH_WEBHOOK_BACKOFF_MAX", base.webhook_backoff_max),
        "webhook_connect_timeout": seconds("ORCH_WEBHOOK_CONNECT_TIMEOUT", base.webhook_connect_timeout),
        "webhook_read_timeout": seconds("ORCH_WEBHOOK_READ_TIMEOUT", base.webhook_read_timeout),
        "webhook_rotation_window": seconds("ORCH_WEBHOOK_ROTATION_WINDOW", base.webhook_rotation_window),
    }


def _stream_settings(env: dict[str, str], base: Settings) -> dict[str, Any]:
    return {
        "stream_heartbeat": float(env.get("ORCH_STREAM_HEARTBEAT", base.stream_heartbeat)),
        "stream_max_seconds": float(env.get("ORCH_STREAM_MAX_SECONDS", base.stream_max_seconds)),
        "stream_max_per_token": int(env.get("ORCH_STREAM_MAX_PER_TOKEN", base.stream_max_per_token)),
        "stream_poll_interval": float(env.get("ORCH_STREAM_POLL_INTERVAL", base.stream_poll_interval)),
        "stream_ticket_ttl": float(env.get("ORCH_STREAM_TICKET_TTL", base.stream_ticket_ttl)),
        "stream_slot_dir": env.get("ORCH_STREAM_SLOT_DIR", base.stream_slot_dir),
    }
