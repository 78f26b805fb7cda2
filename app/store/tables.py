"""The schema. Alembic migrations under ``migrations/`` create exactly this."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from app.store.types import BigId, Json, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class StreamMixin:
    """An entity with its own event stream: version is its last sequence."""

    correlation_id: Mapped[str] = mapped_column(String(36), unique=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiToken(Base):
    """A bearer token, stored as its SHA-256; ``prefix`` (its first characters) only helps people recognise it."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    name: Mapped[str | None] = mapped_column(String(200))
    prefix: Mapped[str | None] = mapped_column(String(16))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The stream id its created/revoked events share (they stand outside any entity stream).
    correlation_id: Mapped[str | None] = mapped_column(String(36))
    # Per-token request rates (requests/s); None: the configured defaults.
    writes_per_second: Mapped[float | None] = mapped_column(Float)
    reads_per_second: Mapped[float | None] = mapped_column(Float)


class TokenEpoch(Base):
    """One row whose counter every revocation raises: processes poll it to drop cached tokens."""

    __tablename__ = "token_epoch"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    epoch: Mapped[int] = mapped_column(BigId, default=0)


class Sprint(StreamMixin, Base):
    __tablename__ = "sprints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sprint_code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), index=True)
    priority: Mapped[str] = mapped_column(String(2))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", Json, default=dict)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Task(StreamMixin, Base):
    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_code: Mapped[str] = mapped_column(String(64), unique=True)
    sprint_id: Mapped[int | None] = mapped_column(ForeignKey("sprints.id"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), index=True)
    priority: Mapped[str] = mapped_column(String(2))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    assignee: Mapped[str | None] = mapped_column(String(200), index=True)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", Json, default=dict)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sprint: Mapped[Sprint | None] = relationship(lazy="joined")


class AgentSession(StreamMixin, Base):
    __tablename__ = "agent_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_key: Mapped[str] = mapped_column(String(128), unique=True)
    agent_id: Mapped[str] = mapped_column(String(200), index=True)
    sprint_id: Mapped[int | None] = mapped_column(ForeignKey("sprints.id"), index=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", Json, default=dict)
    sprint: Mapped[Sprint | None] = relationship(lazy="joined")
    task: Mapped[Task | None] = relationship(lazy="joined")


class Signal(StreamMixin, Base):
    """Notifications and alerts raised by automation: one-event entities."""

    __tablename__ = "signals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class Event(Base):
    __tablename__ = "orchestration_events"
    __table_args__ = (
        # The unique constraint's index also serves reads of a stream in sequence order.
        UniqueConstraint("entity_type", "entity_id", "sequence", name="uq_events_stream_sequence"),
        Index("ix_events_entity_code", "entity_type", "entity_code"),
        Index(
            "ix_events_correlation_chain",
            "correlation_chain",
            postgresql_using="gin",
            postgresql_ops={"correlation_chain": "jsonb_path_ops"},
        ),
        Index("ix_events_session_key_id", "session_key", "id"),
        Index("ix_events_entity_code_id", "entity_code", "id"),
        # actor_kind filters: ``actor LIKE 'user:%'`` under any collation (0009).
        Index("ix_events_actor_pattern", "actor", postgresql_ops={"actor": "varchar_pattern_ops"}),
        # Each list filter is an ordered range on (filter, id): a page never walks the log (0006).
        Index("ix_events_actor_id", "actor", "id"),
        Index("ix_events_type_id", "type", "id", postgresql_ops={"type": "varchar_pattern_ops"}),
        Index("ix_events_entity_type_id", "entity_type", "id"),
        Index("ix_events_emitted_at_id", "emitted_at", "id"),
        # Never reuse an id on SQLite, even after a purge deletes the highest ones.
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(200))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int] = mapped_column(Integer)
    entity_code: Mapped[str | None] = mapped_column(String(128))
    sequence: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(200))
    emitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    correlation_id: Mapped[str] = mapped_column(String(36), index=True)
    correlation_chain: Mapped[list[str]] = mapped_column(Json, default=list)
    causation_id: Mapped[str | None] = mapped_column(String(36), index=True)
    causation_depth: Mapped[int] = mapped_column(Integer, default=0)
    session_key: Mapped[str | None] = mapped_column(String(128))  # indexed with id (0002)
    priority: Mapped[str] = mapped_column(String(2))
    changes: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    hash: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    # app.domain.hashing: 1 legacy sorted-key JSON (rows from before 0003), 2 RFC 8785.
    hash_scheme: Mapped[int] = mapped_column(SmallInteger, default=1, server_default=text("1"))
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def _archive_columns() -> list[Column[Any]]:
    """Every column of the events table, whatever it has by now: archiving moves rows whole."""
    return [Column(c.name, c.type, nullable=c.nullable) for c in Event.__table__.columns]


# Archived events, moved out of the hot table (same columns). On PostgreSQL it is
# partitioned by month of ``emitted_at`` (partitions made on demand by the archiver),
# so purge empties and drops whole partitions; on SQLite it is a plain table.
EVENTS_ARCHIVE = Table(
    "orchestration_events_archive",
    Base.metadata,
    *_archive_columns(),
    PrimaryKeyConstraint("id", "emitted_at", name="pk_orchestration_events_archive"),
    Index("ix_events_archive_stream", "entity_type", "entity_id", "sequence"),
    Index("ix_events_archive_correlation_id", "correlation_id"),
    Index("ix_events_archive_correlation_chain", "correlation_chain", postgresql_using="gin",
          postgresql_ops={"correlation_chain": "jsonb_path_ops"}),
    Index("ix_events_archive_session_key_id", "session_key", "id"),
    Index("ix_events_archive_entity_code_id", "entity_code", "id"),
    Index("ix_events_archive_event_id", "event_id"),
    postgresql_partition_by="RANGE (emitted_at)",
)


class OutboxEntry(Base):
    """An event rules must still see; deleted when a worker has evaluated it."""

    __tablename__ = "orchestration_outbox"
    event_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("orchestration_events.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    dispatch_count: Mapped[int] = mapped_column(Integer, default=0)
    # Deliveries that failed for a non-transient reason; at ORCH_OUTBOX_MAX_DELIVERIES the event is dead-lettered.
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Rule(Base):
    __tablename__ = "automation_rules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    trigger: Mapped[dict[str, Any]] = mapped_column(Json)
    action: Mapped[dict[str, Any]] = mapped_column(Json)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RuleRun(Base):
    """The tracking row: UNIQUE(rule, event) written atomically with the effects."""

    __tablename__ = "automation_rule_runs"
    __table_args__ = (UniqueConstraint("rule_id", "event_id", name="uq_rule_runs_rule_event"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("automation_rules.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(BigId, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    effects: Mapped[list[Any]] = mapped_column(Json, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    # Why a run did nothing: nothing to do as of its event, superseded, or no longer valid live.
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookDelivery(Base):
    """The outbox of one webhook run: what to POST where, until when, and how it went."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("automation_rule_runs.id", ondelete="CASCADE"), unique=True)
    rule_id: Mapped[int] = mapped_column(Integer)
    event_id: Mapped[int] = mapped_column(BigId)
    url: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class WebhookAttempt(Base):
    """One try of a delivery: never the secret, never more than a short excerpt of the answer."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (UniqueConstraint("delivery_id", "number", name="uq_webhook_attempts_delivery_number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[float] = mapped_column(Float)
    status_code: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    response_excerpt: Mapped[str | None] = mapped_column(Text)


class EventRollup(Base):
    """Hourly counts of the events up to the watermark (``RollupWatermark``), archived or not."""

    __tablename__ = "orchestration_event_rollups"
    bucket_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    type: Mapped[str] = mapped_column(String(200), primary_key=True)
    actor: Mapped[str] = mapped_column(String(200), primary_key=True)
    entity_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    archived: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    count: Mapped[int] = mapped_column(BigId, default=0)


class EventMarginal(Base):
    """Counts of each type, actor and entity type on its own (``dimension``, ``value``; ``total``
    with value ``""`` counts every event) per UTC day or month (``grain``, ``start``): all-time
    statistics read months × values + days rows, not one hourly rollup row per combination.

    PostgreSQL only: statement triggers on ``orchestration_event_rollups`` (migrations 0011,
    0012, 0013; one grouping-sets pass since 0014) change these counts by whatever changes the
    hours'. One code path keeps them itself: a purge emptying a whole month deletes its
    archived rows as a range (``archive_purge_rows.MONTH_OFF``, the triggers standing aside).
    Both tables keep a quarter of each page free (``fillfactor``, 0014): a count updated in
    place stays on its page (a HOT update).
    The ``hour`` grain holds ``type`` and ``total`` only: an hourly timeline reads hours × types;
    the ``all`` grain (``start`` at the epoch) holds the whole log: all time reads one row per value.
    """

    __tablename__ = "orchestration_event_marginals"
    grain: Mapped[str] = mapped_column(String(8), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
    archived: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    count: Mapped[int] = mapped_column(BigId, default=0)


class RollupWatermark(Base):
    """One row: every hot event with ``id <= folded_upto`` is counted in the rollups, none above it.

    Writers never touch the rollups (a shared rollup row would serialize them on its lock
    until COMMIT); the fold job (``rollup_fold``) adds settled events batch by batch and
    moves this mark in the same transaction, and readers add the hot events above it.
    """

    __tablename__ = "orchestration_rollup_watermark"
    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    folded_upto: Mapped[int] = mapped_column(BigId, default=0)


class Snapshot(Base):
    __tablename__ = "orchestration_snapshots"
    __table_args__ = (
        UniqueConstraint("entity_type", "entity_id", "sequence", name="uq_snapshots_stream_sequence"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int] = mapped_column(Integer)
    sequence: Mapped[int] = mapped_column(Integer)
    state: Mapped[dict[str, Any]] = mapped_column(Json)
    last_hash: Mapped[str] = mapped_column(String(64))
    last_event_id: Mapped[str] = mapped_column(String(36))
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ArchiveManifest(Base):
    __tablename__ = "orchestration_archive_manifests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(500), unique=True)
    event_count: Mapped[int] = mapped_column(Integer)
    first_id: Mapped[int] = mapped_column(BigId)
    last_id: Mapped[int] = mapped_column(BigId)
    sha256: Mapped[str] = mapped_column(String(64))
    stream_heads: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The file's newest event timestamp: purge picks due files without reading their rows (0006).
    newest_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)



class StreamTicket(Base):
    """A short-lived, single-use pass to open one event stream (browsers' EventSource cannot send headers)."""

    __tablename__ = "stream_tickets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
