"""The store: one object that owns the engine and hands out transactions.

::

    store = await Store.connect("sqlite:////var/lib/hotline-bridge/bridge.db")
    async with store.begin() as tx:      # one transaction: commit, or roll back on error
        await tx.set_position("A", "dispatched", "mark-42")
        await tx.enqueue(message)
    await store.aclose()

Methods on :class:`Store` itself each run in their own short transaction.

Write serialisation: on SQLite, :meth:`Store.begin` and every writing method
run one at a time, and those that queued together share one COMMIT (group
commit, see :class:`~bridge.store.sqlite.LoopSQLiteEngine`); each returns only
once its data is durable. It is not reentrant: calling :meth:`begin` or a
writing method of the same store inside a ``begin()`` block raises
:class:`RuntimeError` instead of deadlocking. Reading methods take no lock.
On PostgreSQL there is no lock; transactions run concurrently at READ COMMITTED
and :meth:`Tx.get_referral` locks its row.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import (
    audit,
    browse,
    dead_letters,
    events,
    feeds,
    jobs,
    leases,
    ledger,
    mapping_versions,
    outbox,
    reconciliation,
    sla,
)
from .browse import Deadline, ReferralFilter, StatusFigures
from .engine import BEGIN_MODE_OPTION, create_engine, current_revision, migrate
from .figures import Figures, read_figures
from .models import (
    AuditIn,
    AuditRow,
    Clock,
    DeadLetterFilter,
    DeadLetterRow,
    Event,
    JobRow,
    OutboxRow,
    ReconciliationRun,
    ReferralRow,
    SlaRow,
    SlaSubject,
    utc_now,
)
from .sqlite import LoopSQLiteEngine
from .tables import referrals
from .transaction import Tx


class Store:
    """The durable store; create it with :meth:`connect`, end it with :meth:`aclose`."""

    def __init__(self, engine: AsyncEngine | LoopSQLiteEngine, *, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._clock = clock
        self._sqlite = engine.dialect.name == "sqlite"
        self._lock_owner: asyncio.Task[Any] | None = None
        self._closed = False

    @classmethod
    async def connect(cls, url: str, *, clock: Clock = utc_now) -> Store:
        """Open the store at a config URL and migrate it to head.

        ``clock`` returns aware UTC datetimes; it stamps every row and judges
        lease expiry (tests pass a fake one). Raises :class:`ValueError` for
        an unsupported URL; database errors propagate.
        """
        engine = create_engine(url)
        try:
            await migrate(engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, clock=clock)

    @property
    def clock(self) -> Clock:
        """The clock that stamps the rows (the admin status measures ages with it)."""
        return self._clock

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    async def aclose(self) -> None:
        """Close every pooled connection; `ping()` fails from now on."""
        self._closed = True
        await self._engine.dispose()

    async def ping(self) -> None:
        """Run ``SELECT 1``; raises if the database cannot be reached or the store
        is closed (:class:`RuntimeError`)."""
        if self._closed:
            raise RuntimeError("the store is closed")
        async with self._engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def schema_revision(self) -> str | None:
        """The migration revision the database is at."""
        async with self._engine.connect() as conn:
            return await conn.run_sync(current_revision)

    # transactions
    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        if not self._sqlite:
            async with self._engine.begin() as conn:
                yield conn
            return
        task = asyncio.current_task()
        if task is not None and task is self._lock_owner:
            raise RuntimeError("store write transactions are not reentrant (SQLite)")
        assert isinstance(self._engine, LoopSQLiteEngine)
        async with self._engine.transaction(**{BEGIN_MODE_OPTION: "IMMEDIATE"}) as conn:
            self._lock_owner = task
            try:
                yield conn  # type: ignore[misc]
            finally:
                self._lock_owner = None

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        if isinstance(self._engine, LoopSQLiteEngine):
            # WAL: a reader sees the last commit and never waits for the writer
            async with self._engine.connect() as loop_conn:
                with loop_conn.sync_connection.begin():
                    yield loop_conn  # type: ignore[misc]
            return
        async with self._engine.connect() as conn, conn.begin():
            yield conn

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[Tx]:
        """One database transaction: commits on a clean exit, rolls back on an exception."""
        async with self._write() as conn:
            yield Tx(conn, self._clock)

    # feeds and outbox
    async def get_position(self, system: str, feed: str) -> str | None:
        """The committed position of a feed, or ``None``."""
        async with self._read() as conn:
            return await feeds.get_position(conn, system, feed)

    async def outbox_pending(self, limit: int = 100) -> list[OutboxRow]:
        """Unpublished messages due now (none in back-off), early-warning first, then
        oldest first."""
        async with self._read() as conn:
            return await outbox.pending(conn, limit, self._clock())

    async def mark_published(self, ids: Sequence[int]) -> int:
        """Mark outbox messages as published; returns how many were still pending."""
        async with self._write() as conn:
            return await outbox.mark_published(conn, ids, self._clock())

    # retention: each call deletes one batch of at most `limit` rows in a transaction
    async def purge_published(self, older_than: datetime, limit: int = 500) -> int:
        """Delete outbox messages published before ``older_than``; returns how many."""
        async with self._write() as conn:
            return await outbox.purge_published(conn, older_than, limit)

    async def purge_dead_letters(self, older_than: datetime, limit: int = 500) -> int:
        """Delete replayed or discarded dead letters last changed before ``older_than``."""
        async with self._write() as conn:
            return await dead_letters.purge_closed(conn, older_than, limit)

    async def purge_reconciliations(self, older_than: datetime, limit: int = 500) -> int:
        """Delete reconciliation runs finished before ``older_than``."""
        async with self._write() as conn:
            return await reconciliation.purge_finished(conn, older_than, limit)

    async def purge_leases(self, expired_before: datetime, limit: int = 500) -> int:
        """Delete leases that expired before ``expired_before``."""
        async with self._write() as conn:
            return await leases.purge_expired(conn, expired_before, limit)

    # referrals
    async def get_referral(self, referral_id: str) -> ReferralRow | None:
        """One referral, or ``None``."""
        async with self._read() as conn:
            return await ledger.get_referral(conn, referral_id)

    async def list_referrals(
        self,
        state: str | None = None,
        early_warning: bool | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[ReferralRow]:
        """Referrals matching the filters, newest first."""
        async with self._read() as conn:
            return await ledger.list_referrals(
                conn, state=state, early_warning=early_warning, limit=limit, offset=offset
            )

    async def timeline(self, referral_id: str) -> list[Event]:
        """A referral's events, oldest first."""
        async with self._read() as conn:
            return await events.timeline(conn, referral_id)

    # browsing (the admin API; see bridge.store.browse)
    async def page_referrals(
        self,
        flt: ReferralFilter,
        *,
        after: tuple[datetime, str] | None = None,
        limit: int = 50,
    ) -> list[ReferralRow]:
        """A keyset page of referrals, newest first (see :func:`browse.page_referrals`)."""
        async with self._read() as conn:
            return await browse.page_referrals(conn, flt, after=after, limit=limit)

    async def find_referral(self, system: str, value: str) -> ReferralRow | None:
        """The referral ``system`` knows by the number or native id ``value``, or ``None``."""
        async with self._read() as conn:
            return await browse.find_referral(conn, system, value)

    async def numbered(self, number: str, *, limit: int = 50) -> list[ReferralRow]:
        """The referrals that some system numbers ``number``, newest first (see
        :func:`browse.numbered`)."""
        async with self._read() as conn:
            return await browse.numbered(conn, number, limit=limit)

    async def referral_extras(
        self, referral_ids: Sequence[str]
    ) -> tuple[dict[str, list[Deadline]], dict[str, int]]:
        """For a page of referrals: their SLA deadlines and their parked dead letters."""
        async with self._read() as conn:
            return (
                await browse.deadlines_of(conn, referral_ids),
                await browse.parked_of(conn, referral_ids),
            )

    async def status_figures(self) -> StatusFigures:
        """The figures of the admin status (see :func:`browse.status_figures`); raises
        :class:`RuntimeError` once the store is closed."""
        if self._closed:
            raise RuntimeError("the store is closed")
        async with self._read() as conn:
            return await browse.status_figures(conn)

    # dead letters
    async def list_dead_letters(
        self,
        status: str | None = None,
        system: str | None = None,
        stage: str | None = None,
        referral_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[DeadLetterRow]:
        """Dead letters matching every given filter, oldest first."""
        async with self._read() as conn:
            return await dead_letters.list_(
                conn,
                status=status,
                system=system,
                stage=stage,
                referral_id=referral_id,
                limit=limit,
                offset=offset,
            )

    async def page_dead_letters(
        self, match: DeadLetterFilter, *, after_id: int | None = None, limit: int = 50
    ) -> list[DeadLetterRow]:
        """A keyset page of dead letters (see :func:`bridge.store.dead_letters.page`)."""
        async with self._read() as conn:
            return await dead_letters.page(conn, match, after_id=after_id, limit=limit)

    async def dead_letter_ids(
        self,
        match: DeadLetterFilter,
        *,
        after_id: int | None = None,
        up_to_id: int | None = None,
        limit: int = 100,
    ) -> list[int]:
        """The ids of the next matching dead letters in ``(after_id, up_to_id]``."""
        async with self._read() as conn:
            return await dead_letters.ids(
                conn, match, after_id=after_id, up_to_id=up_to_id, limit=limit
            )

    async def count_matching_dead_letters(
        self, match: DeadLetterFilter, *, up_to_id: int | None = None
    ) -> int:
        """How many dead letters match, up to an id."""
        async with self._read() as conn:
            return await dead_letters.count(conn, match, up_to_id=up_to_id)

    async def last_dead_letter_id(self) -> int:
        """The highest dead-letter id so far (0: none)."""
        async with self._read() as conn:
            return await dead_letters.last_id(conn)

    async def get_dead_letter(self, letter_id: int) -> DeadLetterRow | None:
        """One dead letter, or ``None``."""
        async with self._read() as conn:
            return await dead_letters.get(conn, letter_id)

    async def set_dead_letter_status(self, letter_id: int, status: str) -> DeadLetterRow | None:
        """Set a dead letter's status (``"replayed"`` counts an attempt).

        Returns the updated row, or ``None`` if unknown; raises ``ValueError``
        for an unknown status.
        """
        async with self._write() as conn:
            return await dead_letters.set_status(conn, letter_id, status, self._clock())

    async def count_dead_letters(self) -> dict[str, int]:
        """Dead letters per status; every status is a key."""
        async with self._read() as conn:
            return await dead_letters.count_by_status(conn)

    # mapping versions
    async def put_mapping_version(self, version: str, tables: dict[str, Any]) -> bool:
        """Record the mapping tables of ``version`` (``MappingTables.as_json()``); does
        nothing and returns ``False`` when that version is already recorded."""
        async with self._write() as conn:
            return await mapping_versions.put(conn, version, tables, self._clock())

    async def get_mapping_version(self, version: str) -> dict[str, Any] | None:
        """The mapping tables recorded as ``version``, or ``None``."""
        async with self._read() as conn:
            return await mapping_versions.get(conn, version)

    # leases
    async def try_acquire_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Acquire or renew a lease if free, expired or already ``holder``'s."""
        async with self._write() as conn:
            return await leases.try_acquire(conn, name, holder, ttl_s, self._clock())

    async def release_lease(self, name: str, holder: str) -> bool:
        """Release a lease if ``holder`` holds it; returns whether it did."""
        async with self._write() as conn:
            return await leases.release(conn, name, holder)

    async def leases_held_by(self, holder: str) -> list[str]:
        """Names of the unexpired leases ``holder`` holds."""
        async with self._read() as conn:
            return await leases.held_by(conn, holder, self._clock())

    # reconciliation runs
    async def create_reconciliation(self, trigger: str, *, dry_run: bool = False) -> int:
        """Start a reconciliation run (status ``"running"``); returns its id."""
        async with self._write() as conn:
            return await reconciliation.create(conn, trigger, self._clock(), dry_run=dry_run)

    async def reconciliation_progress(self, run_id: int, counts: dict[str, Any]) -> bool:
        """Record a running run's counts so far."""
        async with self._write() as conn:
            return await reconciliation.progress(conn, run_id, counts)

    async def finish_reconciliation(
        self,
        run_id: int,
        status: str,
        counts: dict[str, Any],
        report: dict[str, Any] | None = None,
    ) -> bool:
        """Close a run; returns ``False`` if the id is unknown."""
        async with self._write() as conn:
            return await reconciliation.finish(conn, run_id, status, counts, self._clock(), report)

    async def open_referrals(
        self, system: str, settled: Sequence[str], *, after: str | None, limit: int = 200
    ) -> list[ReferralRow]:
        """A keyset page of the referrals `system` knows and that are not settled, in
        `referral_id` order after `after` (see :func:`reconciliation.open_referrals`)."""
        async with self._read() as conn:
            return await reconciliation.open_referrals(
                conn, system, settled, after=after, limit=limit
            )

    async def get_reconciliation(self, run_id: int) -> ReconciliationRun | None:
        """One run, or ``None``."""
        async with self._read() as conn:
            return await reconciliation.get(conn, run_id)

    async def list_reconciliations(
        self, limit: int = 20, offset: int = 0
    ) -> list[ReconciliationRun]:
        """Runs, newest first."""
        async with self._read() as conn:
            return await reconciliation.list_(conn, limit=limit, offset=offset)

    # jobs (see bridge.store.jobs)
    async def create_job(self, kind: str, params: dict[str, Any], created_by: str) -> int:
        """A new ``queued`` job; returns its id."""
        async with self._write() as conn:
            return await jobs.create(conn, kind, params, created_by, self._clock())

    async def start_job(self, job_id: int, total: int) -> bool:
        """A queued job runs, with ``total`` items to do."""
        async with self._write() as conn:
            return await jobs.start(conn, job_id, total, self._clock())

    async def job_progress(self, job_id: int, done: int, failed: int) -> bool:
        """A running job's counts so far."""
        async with self._write() as conn:
            return await jobs.progress(conn, job_id, done, failed, self._clock())

    async def finish_job(self, job_id: int, status: str, result: dict[str, Any]) -> bool:
        """Close an open job ``done`` or ``failed``; ``False`` if already closed."""
        async with self._write() as conn:
            return await jobs.finish(conn, job_id, status, result, self._clock())

    async def get_job(self, job_id: int) -> JobRow | None:
        """One job, or ``None``."""
        async with self._read() as conn:
            return await jobs.get(conn, job_id)

    async def fail_interrupted_jobs(self, node: str, stale_s: float, reason: str) -> list[int]:
        """Fail the open jobs no node runs any more (see
        :func:`bridge.store.jobs.fail_interrupted`); returns their ids."""
        now = self._clock()
        async with self._write() as conn:
            return await jobs.fail_interrupted(
                conn, node, now - timedelta(seconds=stale_s), reason, now
            )

    async def fail_stale_job(self, job_id: int, stale_s: float, reason: str) -> bool:
        """Fail an open job no node has updated for ``stale_s``; returns whether it did."""
        now = self._clock()
        async with self._write() as conn:
            return await jobs.fail_if_stale(
                conn, job_id, now - timedelta(seconds=stale_s), reason, now
            )

    # audit
    async def add_audit(self, entry: AuditIn) -> int:
        """Append one audit entry; returns its id."""
        async with self._write() as conn:
            return await audit.add(conn, entry, self._clock())

    async def list_audit(
        self,
        *,
        before_id: int | None = None,
        operation: str | None = None,
        token: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditRow]:
        """Audit entries newest first (see :func:`bridge.store.audit.list_`)."""
        async with self._read() as conn:
            return await audit.list_(
                conn,
                before_id=before_id,
                operation=operation,
                token=token,
                since=since,
                limit=limit,
            )

    # SLA watch (see :mod:`bridge.store.sla`; `sla.flagged` filters referral lists)
    async def sla_batch(
        self, after: str | None, limit: int, origins: Sequence[str]
    ) -> list[SlaSubject]:
        """The next referrals the SLA watch judges, after ``after`` by id (keyset)."""
        async with self._read() as conn:
            return await sla.scan_batch(conn, after=after, limit=limit, origins=origins)

    async def upsert_sla(self, rows: Sequence[SlaRow]) -> None:
        """Insert or replace deadlines, all in one transaction."""
        async with self._write() as conn:
            await sla.upsert(conn, rows)

    async def sla_counts(self) -> dict[tuple[str, str, str], int]:
        """``(system, kind, state) → deadlines``."""
        async with self._read() as conn:
            return await sla.counts(conn)

    async def sla_for(self, referral_id: str) -> list[SlaRow]:
        """One referral's deadlines, soonest due first (none: empty)."""
        async with self._read() as conn:
            return await sla.for_referral(conn, referral_id)

    # status
    async def figures(self) -> Figures:
        """Grouped counts for the metrics (see :mod:`bridge.store.figures`); raises
        :class:`RuntimeError` once the store is closed."""
        if self._closed:
            raise RuntimeError("the store is closed")
        async with self._read() as conn:
            return await read_figures(conn)

    async def stats(self) -> dict[str, Any]:
        """Figures for ``/status`` and metrics, read in one transaction.

        Keys: ``referrals_total``, ``referrals_by_state`` (state → count),
        ``early_warning`` (referrals flagged), ``outbox_backlog``,
        ``outbox_oldest_pending_at`` (datetime or ``None``), ``dead_letters``
        (status → count, every status present).
        """
        async with self._read() as conn:
            by_state = {
                state: int(count)
                for state, count in await conn.execute(
                    sa.select(referrals.c.state, sa.func.count()).group_by(referrals.c.state)
                )
            }
            early = (
                await conn.execute(
                    sa.select(sa.func.count()).where(referrals.c.early_warning.is_(True))
                )
            ).scalar_one()
            backlog, oldest = await outbox.backlog(conn)
            letters = await dead_letters.count_by_status(conn)
        return {
            "referrals_total": sum(by_state.values()),
            "referrals_by_state": by_state,
            "early_warning": int(early),
            "outbox_backlog": backlog,
            "outbox_oldest_pending_at": oldest,
            "dead_letters": letters,
        }
