"""Engines and sessions, with SQLite made safe for concurrent writers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

WRITE_OPTION = "orchestration_write"


def make_engine(url: str, echo: bool = False, *, prepared_statements: bool = True) -> Engine:
    """``prepared_statements=False`` behind PgBouncer in transaction mode: a statement psycopg
    prepared on one server connection would be missing on the next one the pool hands out."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, echo)
    connect_args = {} if prepared_statements else {"prepare_threshold": None}
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20,
                         connect_args=connect_args)


def _sqlite_engine(url: str, echo: bool) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy issue BEGIN itself so writers can take the lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # A writer that begins deferred and upgrades later can deadlock-fail;
        # BEGIN IMMEDIATE queues writers on the busy timeout instead.
        immediate = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def session_factories(engine: Engine) -> tuple[sessionmaker[Session], sessionmaker[Session]]:
    """(writer, reader) session factories; writers take SQLite's write lock at BEGIN."""
    writer = sessionmaker(bind=engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False)
    reader = sessionmaker(bind=engine, expire_on_commit=False)
    return writer, reader
