"""Store URLs, the async engine per dialect, and migrations at start.

The config contract names plain URLs (``sqlite:////abs/path.db``,
``postgresql://user@host/db``); they are translated here to the async drivers
(``sqlite+aiosqlite``, ``postgresql+asyncpg``) and nowhere else.

SQLite is set up so that a write never meets "database is locked": WAL (readers
never block the writer), a busy timeout, and write transactions opened with
``BEGIN IMMEDIATE`` (they take the write lock up front and wait for it, instead of
failing when a deferred transaction tries to upgrade). Inside one process the
:class:`~bridge.store.store.Store` also serialises its write transactions with
an ``asyncio.Lock``, so they queue in the event loop and not in SQLite.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .sqlite import LoopSQLiteEngine

MIGRATIONS_DIR: Final = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_S: Final = 30.0
BEGIN_MODE_OPTION: Final = "hb_sqlite_begin"
"""Execution option naming the SQLite ``BEGIN`` mode (``DEFERRED``/``IMMEDIATE``)."""

# Any constant works; it only has to be the same in every replica.
_MIGRATION_LOCK_KEY: Final = 0x68625F6D6967  # "hb_mig"

_SQLITE_SCHEMES: Final = {"sqlite", "sqlite+aiosqlite"}
_POSTGRES_SCHEMES: Final = {"postgresql", "postgres", "postgresql+asyncpg"}


def to_async_url(url: str) -> URL:
    """Translate a config URL to the async driver's URL.

    Raises :class:`ValueError` for an unsupported scheme or an in-memory SQLite
    database (the store must outlive the process). The message never echoes
    the URL, which may hold a password.
    """
    parsed = make_url(url)
    scheme = parsed.drivername
    if scheme in _SQLITE_SCHEMES:
        if not parsed.database or parsed.database == ":memory:":
            raise ValueError("the SQLite store needs a file path: sqlite:////abs/path.db")
        return parsed.set(drivername="sqlite+aiosqlite")
    if scheme in _POSTGRES_SCHEMES:
        return parsed.set(drivername="postgresql+asyncpg")
    raise ValueError(
        f"unsupported store URL scheme {scheme!r}: use sqlite:////abs/path.db or postgresql://…"
    )


def create_engine(url: str) -> AsyncEngine | LoopSQLiteEngine:
    """Create the engine for a config URL; creates the SQLite file's directory.

    PostgreSQL: the asyncpg async engine. SQLite: a sync pysqlite engine whose
    statements run on the event loop's thread (see `bridge.store.sqlite`).
    """
    async_url = to_async_url(url)
    if async_url.get_backend_name() == "sqlite":
        assert async_url.database is not None
        Path(async_url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        sync_url = async_url.set(drivername="sqlite+pysqlite")
        engines = []
        for busy_timeout_s in (SQLITE_BUSY_TIMEOUT_S, 0.0):  # reads, writes
            engine = sa.create_engine(
                sync_url,
                connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
                hide_parameters=True,  # statement errors carry no values (personal data)
            )
            _configure_sqlite(engine, busy_timeout_s)
            engines.append(engine)
        return LoopSQLiteEngine(*engines, wait_s=SQLITE_BUSY_TIMEOUT_S)
    return create_async_engine(async_url, pool_pre_ping=True, hide_parameters=True)


def _configure_sqlite(engine: Engine, busy_timeout_s: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the driver so that _on_begin decides its mode.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(BEGIN_MODE_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def alembic_config() -> Config:
    """An Alembic config built in code: no ``alembic.ini`` is read."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    """The newest revision shipped with this package."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(conn: Connection) -> str | None:
    """The revision the connected database is at (``None`` if never migrated)."""
    return MigrationContext.configure(conn).get_current_revision()


async def migrate(engine: AsyncEngine | LoopSQLiteEngine) -> str | None:
    """Upgrade the database to head in one transaction; returns the new revision.

    Safe to run from several processes at once: PostgreSQL takes a transaction
    advisory lock first, SQLite takes the write lock with ``BEGIN IMMEDIATE``.
    """
    if isinstance(engine, LoopSQLiteEngine):
        return await asyncio.to_thread(_upgrade_sqlite, engine.sync_engine)
    async with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn = await conn.execution_options(**{BEGIN_MODE_OPTION: "IMMEDIATE"})
        async with conn.begin():
            if conn.dialect.name == "postgresql":
                await conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
            return await conn.run_sync(_upgrade)


def _upgrade_sqlite(engine: Engine) -> str | None:
    with engine.connect() as conn:
        conn = conn.execution_options(**{BEGIN_MODE_OPTION: "IMMEDIATE"})
        with conn.begin():
            return _upgrade(conn)


def _upgrade(conn: Connection) -> str | None:
    config = alembic_config()
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
    return current_revision(conn)
