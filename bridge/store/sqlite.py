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
import sqlite3
import time
from collections import namedtuple
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from keyword import iskeyword
from typing import Any, NamedTuple, TypeVar

import structlog
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import (
    DBAPIError,
    MultipleResultsFound,
    NoResultFound,
    OperationalError,
    StatementError,
)

T = TypeVar("T")
S = TypeVar("S")

log = structlog.get_logger(__name__)


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
        entry = _FAST.get(id(statement))
        if (
            entry is not None
            and type(parameters) is dict
            and not kwargs
            and self._conn.in_transaction()
        ):
            prepared = entry.prepare(self._conn.dialect, tuple(sorted(parameters)))
            if prepared is not None:
                return _run_fast(self._conn, prepared, parameters)
        return self._conn.execute(statement, parameters, **kwargs)

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> Any:
        return self._conn.exec_driver_sql(statement, parameters)

    async def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(self._conn, *args, **kwargs)


@dataclass(eq=False)
class _Group:
    """One physical write transaction shared by the logical ones that queued for it."""

    conn: Connection
    trans: Any
    done: asyncio.Future[None]
    changes_at_begin: int
    members: int = 0

    @property
    def dbapi(self) -> sqlite3.Connection:
        return self.conn.connection.dbapi_connection  # type: ignore[return-value]


class LoopSQLiteEngine:
    """A sync SQLite engine handed out as `LoopConnection`s, with group commit.

    SQLite has one writer and every COMMIT is an fsync (`synchronous=FULL`). A write
    transaction here is a *logical* one: a SAVEPOINT inside the one physical
    transaction that the writers queued at that moment share. Each logical transaction
    runs alone (one at a time, in arrival order), is released or rolled back to its
    savepoint on its own, and returns only once the shared COMMIT is durable; the
    last one in the queue (or the `max_group`-th) starts that COMMIT, in a worker
    thread, and the writers that arrive meanwhile wait and form the next group. So N
    concurrent writers cost one fsync and one thread hop instead of N, and none of them
    returns before its data is on disk. If the COMMIT fails, every member of the group
    gets the error (nothing of the group was written).

    Writes use their own engine whose connections do not wait for SQLite's write lock
    (busy timeout 0): when another process or another store on the same file holds it,
    `BEGIN IMMEDIATE` fails at once and is tried again after an `asyncio.sleep`, so the
    event loop never blocks on it (and a holder running on the same loop can finish).
    """

    def __init__(
        self, engine: Engine, write_engine: Engine, *, wait_s: float, max_group: int = 100
    ) -> None:
        self.sync_engine = engine
        self.write_engine = write_engine
        self.wait_s = wait_s
        self.max_group = max_group
        self._lock = asyncio.Lock()
        self._queued = 0  # writers waiting for the lock: they will join the open group
        self._group: _Group | None = None
        self._committing: set[asyncio.Future[None]] = set()
        self.commits = 0  # physical COMMITs with writes (for tests and benchmarks)

    @property
    def dialect(self) -> Any:
        return self.sync_engine.dialect

    async def dispose(self) -> None:
        await asyncio.gather(*self._committing, return_exceptions=True)
        self.sync_engine.dispose()
        self.write_engine.dispose()

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[LoopConnection]:
        with self.sync_engine.connect() as conn:
            yield LoopConnection(conn)

    @contextlib.asynccontextmanager
    async def transaction(self, **options: Any) -> AsyncIterator[LoopConnection]:
        """One logical write transaction (see the class docstring): it commits with its
        group on a clean exit and is rolled back alone on an exception. Raises
        `OperationalError` if the write lock stays taken for `wait_s`."""
        self._queued += 1
        try:
            await self._lock.acquire()
        except BaseException:
            self._queued -= 1
            if self._group is not None and self._queued == 0:
                # The open group's last member left it to this writer to commit.
                self._spawn(self._commit_when_free())
            raise
        self._queued -= 1
        group = self._group
        try:
            if group is None:
                conn, trans = await self._begin(options)
                group = _Group(
                    conn,
                    trans,
                    asyncio.get_running_loop().create_future(),
                    conn.connection.dbapi_connection.total_changes,  # type: ignore[union-attr]
                )
                self._group = group
            group.members += 1
            cursor = group.dbapi.cursor()
            cursor.execute("SAVEPOINT hb_tx")
            try:
                yield LoopConnection(group.conn)
            except BaseException:
                cursor.execute("ROLLBACK TO hb_tx")
                cursor.execute("RELEASE hb_tx")
                raise
            cursor.execute("RELEASE hb_tx")
        finally:
            if group is not None and (self._queued == 0 or group.members >= self.max_group):
                # The last writer in line: COMMIT the group. A task of its own does it
                # and then releases the lock, so no member's cancellation can cut a
                # COMMIT short or hand the connection on mid-commit.
                self._group = None
                self._spawn(self._commit(group))
            else:
                self._lock.release()
        await asyncio.shield(group.done)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._committing.add(task)
        task.add_done_callback(self._committing.discard)

    async def _commit_when_free(self) -> None:
        await self._lock.acquire()
        group = self._group
        if group is None or self._queued > 0:  # committed already, or others will
            self._lock.release()
            return
        self._group = None
        await self._commit(group)

    async def _commit(self, group: _Group) -> None:
        """COMMIT a group, tell its members, close its connection, release the lock.
        A cancellation (the loop going away) waits for a COMMIT already running in its
        thread: the connection is never closed mid-commit."""
        failure: Exception | None = None
        cancelled = False
        try:
            if group.dbapi.total_changes == group.changes_at_begin:
                group.trans.commit()  # nothing written: no fsync, no thread
            else:
                commit = asyncio.ensure_future(asyncio.to_thread(group.trans.commit))
                while not commit.done():
                    try:
                        await asyncio.shield(commit)
                    except asyncio.CancelledError:
                        cancelled = True
                commit.result()
                self.commits += 1
        except Exception as exc:
            failure = exc
            with contextlib.suppress(Exception):
                group.trans.rollback()
        finally:
            with contextlib.suppress(Exception):
                group.conn.close()
            self._lock.release()
            if failure is None:
                group.done.set_result(None)
            else:
                group.done.set_exception(failure)
                group.done.exception()  # retrieved: members that raised do not await it
        if cancelled:
            raise asyncio.CancelledError

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


# --- the fast path for the store's prebuilt statements -------------------------------
#
# Profiling the end-to-end bench showed about a third of the event loop's time inside
# SQLAlchemy's per-statement execution machinery (parameter construction, execution
# context, result set-up) against about 4 % in SQLite itself. The hot statements are
# built once (see `tables.per_dialect`), so their SQL, parameter order and type
# processors can be worked out once too: a statement marked with `fast()` is compiled
# by SQLAlchemy on first use (per set of parameter names), and later runs go straight
# to the sqlite3 cursor with SQLAlchemy's own bind and result processors. SQLAlchemy
# still writes every SQL string; nothing here is hand-written SQL. Anything the fast
# path does not handle (other statements, several parameter sets, a connection
# outside a transaction, post-compile parameters) goes through SQLAlchemy as before.

_FAST: dict[int, _FastStatement] = {}


def fast(statement: S) -> S:
    """Mark a statement that lives for the whole process (built at import or once per
    dialect) for the SQLite fast path; returns it unchanged. The registry holds it, so
    its `id()` stays its own."""
    if id(statement) not in _FAST:
        _FAST[id(statement)] = _FastStatement(statement)
    return statement


class _Prepared(NamedTuple):
    sql: str
    binds: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]  # name, default, proc
    row: type[tuple[Any, ...]] | None  # a namedtuple of the result columns, or None
    result_procs: tuple[Callable[[Any], Any] | None, ...]


class _FastStatement:
    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self.prepared: dict[tuple[str, ...], _Prepared | None] = {}

    def prepare(self, dialect: Any, keys: tuple[str, ...]) -> _Prepared | None:
        try:
            return self.prepared[keys]
        except KeyError:
            pass
        try:
            prepared = self._prepare(dialect, keys)
        except Exception as exc:  # SQLAlchemy's internals moved: its own path still works
            log.warning("store.fast_path_unavailable", error=repr(exc))
            prepared = None
        self.prepared[keys] = prepared
        return prepared

    def _prepare(self, dialect: Any, keys: tuple[str, ...]) -> _Prepared | None:
        """The statement's SQL, parameter order and SQLAlchemy's own type processors.
        Uses SQLAlchemy internals (`_bind_processors`, `_result_columns`,
        `_cached_result_processor`, SQLAlchemy 2.0/2.1); any failure here means
        "use SQLAlchemy's path"."""
        compiled = self.statement.compile(dialect=dialect, column_keys=list(keys))
        prepared: _Prepared | None = None
        if compiled.positiontup is not None and not compiled.post_compile_params:
            procs = compiled._bind_processors
            binds = tuple(
                (name, compiled.binds[name].effective_value, procs.get(name))
                for name in compiled.positiontup
            )
            columns = compiled._result_columns
            names = [column.keyname for column in columns]
            if all(name.isidentifier() and not iskeyword(name) for name in names):
                prepared = _Prepared(
                    sql=compiled.string,
                    binds=binds,
                    row=namedtuple("Row", names) if names else None,  # type: ignore[misc]
                    result_procs=tuple(
                        column.type._cached_result_processor(dialect, None) for column in columns
                    ),
                )
        return prepared


def _run_fast(conn: Connection, prepared: _Prepared, parameters: dict[str, Any]) -> _FastResult:
    args = []
    for name, default, proc in prepared.binds:
        value = parameters[name] if name in parameters else default
        try:
            args.append(proc(value) if proc is not None else value)
        except Exception as exc:  # as SQLAlchemy reports a bad parameter
            raise StatementError(
                f"({type(exc).__name__}) {exc} [parameter {name!r}]", prepared.sql, None, exc
            ) from exc
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        try:
            cursor.execute(prepared.sql, args)
            raw = cursor.fetchall() if prepared.row is not None else []
        except sqlite3.Error as exc:
            raise DBAPIError.instance(
                prepared.sql, args, exc, sqlite3.Error, hide_parameters=True, dialect=conn.dialect
            ) from exc
        rows = [
            prepared.row._make(  # type: ignore[attr-defined]
                value if proc is None else proc(value)
                for value, proc in zip(values, prepared.result_procs, strict=True)
            )
            for values in raw
        ]
        return _FastResult(rows, cursor.rowcount, cursor.lastrowid)
    finally:
        cursor.close()


class _FastResult:
    """The part of SQLAlchemy's `Result` the store uses."""

    __slots__ = ("_lastrowid", "_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int, lastrowid: int | None) -> None:
        self._rows = rows
        self.rowcount = rowcount
        self._lastrowid = lastrowid

    @property
    def inserted_primary_key(self) -> tuple[int | None]:
        return (self._lastrowid,)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return list(self._rows)

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def one_or_none(self) -> Any:
        if len(self._rows) > 1:
            raise MultipleResultsFound("Multiple rows were found when one or none was required")
        return self.first()

    def one(self) -> Any:
        if not self._rows:
            raise NoResultFound("No row was found when one was required")
        return self.one_or_none()

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar(self) -> Any:
        row = self.first()
        return None if row is None else row[0]

    def scalars(self) -> _Scalars:
        return _Scalars(row[0] for row in self._rows)


class _Scalars(list[Any]):
    def all(self) -> list[Any]:
        return list(self)
