"""Engines and sessions, with SQLite made safe for concurrent writers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

CONNECTION_OK = 0  # libpq's CONNECTION_OK (psycopg.pq.ConnStatus.OK), without importing psycopg for SQLite

WRITE_OPTION = "orchestration_write"


def make_engine(url: str, echo: bool = False, *, prepared_statements: bool = True) -> Engine:
    """``prepared_statements=False`` behind PgBouncer in transaction mode: a statement psycopg
    prepared on one server connection would be missing on the next one the pool hands out."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, echo)
    connect_args = {} if prepared_statements else {"prepare_threshold": None}
    engine = create_engine(url, echo=echo, pool_size=10, max_overflow=20, connect_args=connect_args)
    event.listen(engine, "checkout", _refuse_closed_by_server)
    return engine


def _refuse_closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Hand out no connection the server has closed (a restart, ``pg_terminate_backend``, an idle timeout).

    ``pool_pre_ping`` would ask the server with a round trip on every checkout:
    one of the five or six a write costs. An idle connection the server has
    hung up on has its goodbye and the end of the stream waiting to be read;
    libpq's ``PQconsumeInput`` reads what is there without blocking (libpq's
    socket is non-blocking, two ``recv`` calls, no round trip), and fails on a
    closed stream. A dead one is
    refused (``DisconnectionError``) and the pool replaces it, as it would
    after a failed ping. A connection lost without a word (a network cut)
    still fails its first statement, and the pool then recycles every
    connection as old as it.
    """
    pgconn = dbapi_connection.pgconn
    try:
        # Twice: the first read takes the server's goodbye (a FATAL message), the second meets the
        # end of the stream. On a live idle connection each finds nothing and returns at once.
        pgconn.consume_input()
        pgconn.consume_input()
    except Exception as exc:  # noqa: BLE001 - whatever libpq says, this connection is no good
        raise DisconnectionError("the server closed this connection while it sat in the pool") from exc
    if pgconn.status != CONNECTION_OK:
        raise DisconnectionError("this pooled connection is no longer open")


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
