"""Reconciliation: each node re-reads its own system for the referrals it knows and
re-publishes their snapshots (marked as replays), so that the other node compares them
with its ledger and performs whatever is still missing. The same path as normal traffic
(ARCHITECTURE.md principle 1); periodic, on demand, and run by one node at a time per
side (a lease in the store). A dry run (`dry_run=True`) reads and compares the same way
but records, queues and parks nothing: its report says what a run would have done.

A run's counts: `checked` (referrals re-read), `republished` (snapshots queued again; in
a dry run, that would be), `changed` (the record differs from what this node last read
of it: a change its feed did not deliver), `missing` (the source no longer has it),
`failed` (the source did not answer), `parked` (it no longer maps). The report lists the
referrals behind the last four, `changed` with the ledger's state and the source's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import structlog

from adapters.base import Hotline
from adapters.errors import AdapterError, NotFound
from bridge.engine.intake import IntakePolicy, park_record, record_intake
from bridge.engine.metrics import EngineMetrics
from bridge.errors import MappingError
from bridge.store import ReferralRow, Store
from bridge.transport import Topology

log = structlog.get_logger(__name__)

SETTLED: Final = frozenset({"closed"})
"""Referrals in these states are not re-read: both sides are done with them."""
PAGE: Final = 200


class _Side(Protocol):
    system: str
    hotline: Hotline
    intake: IntakePolicy


REPORT_ITEMS: Final = 100
"""At most this many referrals listed under each finding of a report (counts are whole)."""


class _DryRun(Exception):
    """Rolls back what a dry run's intake wrote: it compares and counts, nothing more."""


@dataclass
class Reconciler:
    """Re-reads each side's unsettled referrals. `run_once` is one run; `dry_run` does
    the same reads and comparisons in transactions it rolls back: nothing is recorded,
    queued or parked, and the report says what a run would have done."""

    store: Store
    sides: Mapping[str, _Side]
    topology: Topology
    partner: Mapping[str, str]
    node_id: str
    interval_s: float
    on_recorded: Callable[[], None] = lambda: None
    metrics: EngineMetrics = field(default_factory=EngineMetrics)
    progress_every_s: float = 1.0
    """Between two writes of a running run's counts (`GET /api/v1/reconciliations/{id}`)."""

    async def run_once(self, trigger: str = "on_demand", *, dry_run: bool = False) -> int:
        """One reconciliation run over every side this node runs; returns its id."""
        run_id = await self.store.create_reconciliation(trigger, dry_run=dry_run)
        await self.perform(run_id, trigger=trigger, dry_run=dry_run)
        return run_id

    async def perform(self, run_id: int, *, trigger: str, dry_run: bool = False) -> None:
        """Carry out the run `run_id` (created by `Store.create_reconciliation`) and
        finish it `done`, or `failed` if anything raises (re-raised) or it is cancelled."""
        run = _Run(run_id, dry_run)
        status = "failed"
        try:
            for side in self.sides.values():
                await self._side(side, run)
            status = "done"
        except Exception as exc:
            run.report["error"] = type(exc).__name__
            log.exception("reconciliation.failed", run_id=run_id)
            raise
        except asyncio.CancelledError:
            run.report["error"] = "cancelled: the node stopped"
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

    async def _side(self, side: _Side, run: _Run) -> None:
        offset = 0
        while True:
            rows = await self.store.list_referrals(limit=PAGE, offset=offset)
            if not rows:
                return
            offset += len(rows)
            for row in rows:
                native_id = row.ids.get(side.system)
                if native_id is None or row.state in SETTLED:
                    continue
                await self._referral(side, row, native_id, run)
                if time.monotonic() - run.reported_at >= self.progress_every_s:
                    await self.store.reconciliation_progress(run.id, run.counts)
                    run.reported_at = time.monotonic()

    async def _referral(self, side: _Side, row: ReferralRow, native_id: str, run: _Run) -> None:
        run.counts["checked"] += 1
        try:
            record = await side.hotline.fetch(native_id)
        except NotFound:
            run.found("missing", row.referral_id, side.system)
            return
        except AdapterError as exc:
            run.found("failed", row.referral_id, side.system, error=type(exc).__name__)
            return
        try:
            async with self.store.begin() as tx:
                key = side.intake.fetch_key(record)  # what the feed readers dedup on
                before = await tx.get_seen(side.system, key)
                try:
                    taken = await side.intake.take(
                        "reconcile", record, tx, datetime.now(UTC), force=True
                    )
                except MappingError as exc:
                    run.found("parked", row.referral_id, side.system, field=exc.field)
                    if run.dry_run:
                        raise _DryRun from None
                    await park_record(tx, side.intake, "reconcile", record, exc)
                    self.metrics.park(side.system, "intake", "mapping")
                    return
                after = await tx.get_seen(side.system, key)
                if taken is not None and (
                    before is None or after is None or after.content_hash != before.content_hash
                ):
                    run.found(
                        "changed",
                        row.referral_id,
                        side.system,
                        ledger_state=row.state,
                        source_state=taken.referral.state.value,
                    )
                if taken is not None and await record_intake(
                    tx, self.topology, self.partner[side.system], taken, replay=True
                ):
                    run.counts["republished"] += 1
                if run.dry_run:
                    raise _DryRun
        except _DryRun:
            return
        self.on_recorded()

    async def run(self) -> None:
        """Periodically, while this node holds the reconciler lease."""
        lease = "reconciler:" + ",".join(sorted(self.sides))
        while True:
            await asyncio.sleep(self.interval_s)
            if await self.store.try_acquire_lease(lease, self.node_id, self.interval_s * 2):
                await self.run_once("periodic")  # a crash: the supervisor restarts the task


@dataclass
class _Run:
    """A run in progress: its counts and its report (identifiers and states only)."""

    id: int
    dry_run: bool
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("checked", "republished", "changed", "missing", "failed", "parked"), 0
        )
    )
    report: dict[str, Any] = field(default_factory=dict)
    reported_at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.report.update(
            dry_run=self.dry_run, changed=[], missing=[], failed=[], parked=[], truncated=False
        )

    def found(self, finding: str, referral_id: str, system: str, **detail: str | None) -> None:
        """Count a finding and list the referral (up to `REPORT_ITEMS` per finding)."""
        self.counts[finding] += 1
        listed = self.report[finding]
        if len(listed) < REPORT_ITEMS:
            listed.append({"referral_id": referral_id, "system": system, **detail})
        else:
            self.report["truncated"] = True
