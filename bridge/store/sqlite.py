"""The embedded SQLite store without a thread hop per statement.

Through aiosqlite every statement is a round trip to a worker thread and back through
the event loop; a write transaction holds the store's write lock (SQLite has one writer)
across all those round trips, so under load the lock, not SQLite, is the bottleneck.
Here statements run on the event loop's own thread (an embedded file answers in
microseconds) through an `AsyncConnection` look-alike. Only `COMMIT` (fsync) goes to a
worker thread, and waiting for another writer's lock is an `asyncio.sleep`. The store
code is the same for both dialects.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

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


async def _finish(commit: asyncio.Future[None]) -> None:
    """Wait for a COMMIT running in a worker thread, even when cancelled meanwhile: the
    connection must not go back to the pool (and to the next writer) mid-commit. The
    cancellation is passed on once the commit has finished."""
    try:
        await asyncio.shield(commit)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await commit
        raise


class LoopSQLiteEngine:
    """A sync SQLite engine handed out as `LoopConnection`s.

    Writes use their own engine whose connections do not wait for SQLite's write lock
    (busy timeout 0): when another process or another store on the same file holds it,
    `BEGIN IMMEDIATE` fails at once and is tried again after an `asyncio.sleep`, so the
    event loop never blocks on it (and a holder running on the same loop can finish).
    """

    def __init__(self, engine: Engine, write_engine: Engine, *, wait_s: float) -> None:
        self.sync_engine = engine
        self.write_engine = write_engine
        self.wait_s = wait_s

    @property
    def dialect(self) -> Any:
        return self.sync_engine.dialect

    async def dispose(self) -> None:
        self.sync_engine.dispose()
        self.write_engine.dispose()

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[LoopConnection]:
        with self.sync_engine.connect() as conn:
            yield LoopConnection(conn)

    @contextlib.asynccontextmanager
    async def transaction(self, **options: Any) -> AsyncIterator[LoopConnection]:
        """One write transaction: statements here, COMMIT (fsync) in a worker thread.
        Raises `OperationalError` if the write lock stays taken for `wait_s`."""
        conn, trans = await self._begin(options)
        try:
            try:
                yield LoopConnection(conn)
            except BaseException:
                trans.rollback()
                raise
            await _finish(asyncio.ensure_future(asyncio.to_thread(trans.commit)))
        finally:
            conn.close()

    async def _begin(self, options: dict[str, Any]) -> tuple[Connection, Any]:
        deadline = time.monotonic() + self.wait_s
        delay = 0.001
        while True:
            conn = self.write_engine.connect()
            if options:
                conn = conn.execution_options(**options)
            try:
                return conn, conn.begin()
            except OperationalError as exc:
                conn.close()
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
