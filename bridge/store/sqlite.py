"""The embedded SQLite store without a thread hop per statement.

Through aiosqlite every statement is a round trip to a worker thread and back through
the event loop; a write transaction holds the store's write lock (SQLite has one writer)
across all those round trips, so under load the lock, not SQLite, is the bottleneck.
Here statements run on the event loop's own thread (an embedded file answers in
microseconds) through an `AsyncConnection` look-alike, and only what may wait goes to a
worker thread: `BEGIN IMMEDIATE` (another process may hold the write lock; busy timeout)
and `COMMIT` (fsync). The store code is the same for both dialects.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine

T = TypeVar("T")


class LoopConnection:
    """The part of `AsyncConnection` the store uses, over a sync `Connection` whose
    statements run on the calling (event loop) thread."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    @property
    def dialect(self) -> Any:
        return self._conn.dialect

    @property
    def sync_connection(self) -> Connection:
        return self._conn

    async def execute(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return self._conn.execute(statement, parameters, **kwargs)

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> Any:
        return self._conn.exec_driver_sql(statement, parameters)

    async def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(self._conn, *args, **kwargs)


class LoopSQLiteEngine:
    """A sync SQLite engine handed out as `LoopConnection`s."""

    def __init__(self, engine: Engine) -> None:
        self.sync_engine = engine

    @property
    def dialect(self) -> Any:
        return self.sync_engine.dialect

    async def dispose(self) -> None:
        self.sync_engine.dispose()

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[LoopConnection]:
        with self.sync_engine.connect() as conn:
            yield LoopConnection(conn)

    @contextlib.asynccontextmanager
    async def transaction(self, **options: Any) -> AsyncIterator[LoopConnection]:
        """One transaction: BEGIN and COMMIT in a worker thread, statements here."""
        with self.sync_engine.connect() as conn:
            if options:
                conn = conn.execution_options(**options)
            trans = await asyncio.to_thread(conn.begin)
            try:
                yield LoopConnection(conn)
            except BaseException:
                trans.rollback()
                raise
            await asyncio.to_thread(trans.commit)
