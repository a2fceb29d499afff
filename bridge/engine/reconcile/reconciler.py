"""The reconciler: window lists, keyset reads, checks (see `bridge.engine.reconcile`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

import structlog

from adapters.base import Hotline
from adapters.errors import AdapterError, NotFound
from adapters.ratelimit import RequestBudget
from bridge.engine.intake import IntakePolicy
from bridge.engine.metrics import EngineMetrics
from bridge.engine.reconcile.findings import Run
from bridge.engine.reconcile.pages import PageTaker
from bridge.store import ReferralRow, Store
from bridge.transport import Topology

log = structlog.get_logger(__name__)

SETTLED: Final = frozenset({"closed"})
"""Referrals in these states are not read: both sides are done with them."""
PAGE: Final = 200
READ_FEED: Final = "reconcile"
"""The feed name a record read by `fetch` goes through the intake under."""


class _Side(Protocol):
    system: str
    hotline: Hotline
    intake: IntakePolicy
    budget: RequestBudget | None


class _DryRun(Exception):
    """Rolls back what a dry run's intake wrote: it compares and counts, nothing more."""


@dataclass
class Reconciler:
    """Reconciles each side this node runs. `run_once` is one run; a `dry_run` makes
    the same reads and comparisons in transactions it rolls back."""

    store: Store
    sides: Mapping[str, _Side]
    topology: Topology
    systems: Collection[str]
    """Every partner of the deployment (the run's report has both numbers of each)."""
    node_id: str
    interval_s: float
    routes: Mapping[str, str] = field(default_factory=dict)
    """Partner → where its referrals go, for the report's pair of numbers."""
    on_recorded: Callable[[], None] = lambda: None
    metrics: EngineMetrics = field(default_factory=EngineMetrics)
    progress_every_s: float = 1.0
    """Between two writes of a running run's counts (`GET /api/v1/reconciliations/{id}`)."""
    window_s: float = 86_400.0
    rate_share: float = 0.25
    page_size: int = PAGE
    fetch_concurrency: int = 8
    """Reads of one ledger page in flight at once (the budget's share paces them)."""
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def __post_init__(self) -> None:
        self._pages = PageTaker(self.topology, self.metrics, self.clock, frozenset(self.sides))

    async def run_once(self, trigger: str = "on_demand", *, dry_run: bool = False) -> int:
        """One reconciliation run over every side this node runs; returns its id."""
        run_id = await self.store.create_reconciliation(trigger, dry_run=dry_run)
        await self.perform(run_id, trigger=trigger, dry_run=dry_run)
        return run_id

    async def perform(self, run_id: int, *, trigger: str, dry_run: bool = False) -> None:
        """Carry out the run `run_id` (created by `Store.create_reconciliation`) and
        finish it `done`, or `failed` if anything raises (re-raised) or it is cancelled."""
        systems = tuple(sorted({*self.systems, *self.sides}))
        run = Run(run_id, dry_run, systems, routes=self.routes)
        status = "failed"
        try:
            for side in self.sides.values():
                with self._share(side):
                    covered = await self._window(side, run)
                    await self._reads(side, run, covered)
            status = "done"
        except Exception as exc:
            run.error = type(exc).__name__
            log.exception("reconciliation.failed", run_id=run_id)
            raise
        except asyncio.CancelledError:
            run.error = "cancelled: the node stopped"
            raise
        finally:
            self.metrics.reconciled(status, dry_run, run.counts)
            await self.store.finish_reconciliation(run_id, status, run.counts, run.report)
            log.info(
                "reconciliation.finished",
                run_id=run_id,
                trigger=trigger,
                dry_run=dry_run,
                status=status,
                **run.counts,
            )

    async def run(self) -> None:
        """Periodically, while this node holds the reconciler lease."""
        lease = "reconciler:" + ",".join(sorted(self.sides))
        while True:
            await asyncio.sleep(self.interval_s)
            if await self.store.try_acquire_lease(lease, self.node_id, self.interval_s * 2):
                await self.run_once("periodic")  # a crash: the supervisor restarts the task

    @contextmanager
    def _share(self, side: _Side) -> Iterator[None]:
        with side.budget.share(self.rate_share) if side.budget is not None else nullcontext():
            yield

    # 1. window lists ---------------------------------------------------------------

    async def _window(self, side: _Side, run: Run) -> dict[str, bool]:
        """List every feed over the window; returns the native ids listed, each with
        whether a finding was reported for it (so that it is reported once a run)."""
        covered: dict[str, bool] = {}
        since = self.clock() - timedelta(seconds=self.window_s)
        run.read_up_to[side.system] = await self._read_up_to(side)
        for feed in side.hotline.feeds:
            position = side.hotline.window_position(feed, since)
            while True:
                try:
                    page = await side.hotline.read_feed(feed, position)
                except AdapterError as exc:
                    run.found(
                        "failed",
                        None,
                        side.system,
                        {},
                        {"feed": feed, "error": type(exc).__name__},
                        why="the window list did not answer: its records are read instead",
                    )
                    break
                run.counts["listed"] += len(page.records)
                if page.records:
                    await self._intake(side, feed, run, covered, page.records, listed=True)
                await self._progress(run)
                if not page.more or (page.position == position and not page.records):
                    break
                position = page.position
        return covered

    async def _read_up_to(self, side: _Side) -> datetime | None:
        marks = [
            side.hotline.read_up_to(feed, await self.store.get_position(side.system, feed))
            for feed in side.hotline.feeds
        ]
        # a feed that has read nothing yet (12345's `created` before the bridge created
        # any order) holds nothing in flight: the others' marks decide
        known = [mark for mark in marks if mark is not None]
        return min(known) if known else None

    # 2. reads ----------------------------------------------------------------------

    async def _reads(self, side: _Side, run: Run, covered: dict[str, bool]) -> None:
        """Read every open referral the window lists did not cover, a keyset page at a
        time."""
        skip = covered if getattr(side.hotline, "window_current", False) else {}
        after: str | None = None
        while True:
            rows = await self.store.open_referrals(
                side.system, tuple(SETTLED), after=after, limit=self.page_size
            )
            if not rows:
                return
            after = rows[-1].referral_id
            todo = [row for row in rows if row.ids[side.system] not in skip]
            fetched = await self._fetch_page(side, run, todo)
            if fetched:
                await self._intake(side, READ_FEED, run, covered, fetched, listed=False)
            await self._progress(run)

    async def _fetch_page(
        self, side: _Side, run: Run, rows: Sequence[ReferralRow]
    ) -> list[tuple[Any, ReferralRow]]:
        """One `fetch` per row, a few at once; what was not found or failed is reported."""
        gate = asyncio.Semaphore(self.fetch_concurrency)
        out: list[tuple[Any, ReferralRow] | None] = [None] * len(rows)

        async def read(i: int, row: ReferralRow) -> None:
            native_id = row.ids[side.system]
            async with gate:
                run.counts["read"] += 1
                try:
                    out[i] = (await side.hotline.fetch(native_id), row)
                except NotFound:
                    run.counts["checked"] += 1
                    self._found(run, "missing", row, side.system, native_id=native_id)
                except AdapterError as exc:
                    run.counts["checked"] += 1
                    error = type(exc).__name__
                    self._found(run, "failed", row, side.system, native_id=native_id, error=error)
            await self._progress(run)  # a slow read holds its page, not the progress

        async with asyncio.TaskGroup() as group:
            for i, row in enumerate(rows):
                group.create_task(read(i, row))
        return [item for item in out if item is not None]

    def _found(self, run: Run, kind: str, row: ReferralRow, system: str, **detail: str) -> None:
        numbers = {**((row.last_snapshot or {}).get("numbers") or {}), **row.numbers}
        why = {"missing": "the source has no such record", "failed": "the source did not answer"}
        run.found(kind, row.referral_id, system, numbers, detail, why=why[kind], target=row.target)

    # the intake of a page, and the checks ------------------------------------------

    async def _intake(
        self,
        side: _Side,
        feed: str,
        run: Run,
        covered: dict[str, bool],
        records: Sequence[Any],
        *,
        listed: bool,
    ) -> None:
        """Take one page of records (listed, or `(record, row)` read) in one transaction
        as the poller would, report what differs, and check what the run handled; a dry
        run rolls the transaction back."""
        queued = False
        try:
            async with self.store.begin() as tx:
                queued = await self._pages.take(side, feed, run, covered, records, tx, listed)
                if run.dry_run:
                    raise _DryRun
        except _DryRun:
            return
        if queued:
            self.on_recorded()

    async def _progress(self, run: Run) -> None:
        if time.monotonic() - run.reported_at >= self.progress_every_s:
            await self.store.reconciliation_progress(run.id, run.counts)
            run.reported_at = time.monotonic()
