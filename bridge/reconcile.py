"""Reconciliation: each node re-reads its own system for the referrals it knows and
re-publishes their snapshots (marked as replays), so that the other node compares them
with its ledger and performs whatever is still missing. The same path as normal traffic
(ARCHITECTURE.md principle 1); periodic, on demand, and run by one node at a time per
side (a lease in the store).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol

import structlog

from adapters.base import Hotline
from adapters.errors import AdapterError, NotFound
from bridge.engine.intake import IntakePolicy, park_record, record_intake
from bridge.engine.metrics import EngineMetrics
from bridge.errors import MappingError
from bridge.store import Store
from bridge.transport import Topology

log = structlog.get_logger(__name__)

SETTLED: Final = frozenset({"closed"})
"""Referrals in these states are not re-read: both sides are done with them."""
PAGE: Final = 200


class _Side(Protocol):
    system: str
    hotline: Hotline
    intake: IntakePolicy


@dataclass
class Reconciler:
    store: Store
    sides: Mapping[str, _Side]
    topology: Topology
    partner: Mapping[str, str]
    node_id: str
    interval_s: float
    on_recorded: Callable[[], None] = lambda: None
    metrics: EngineMetrics = field(default_factory=EngineMetrics)

    async def run_once(self, trigger: str = "on_demand") -> int:
        """One reconciliation run over every side this node runs; returns its id."""
        run_id = await self.store.create_reconciliation(trigger)
        counts = {"checked": 0, "republished": 0, "missing": 0, "failed": 0, "parked": 0}
        status = "finished"
        try:
            for side in self.sides.values():
                await self._side(side, counts)
        except Exception:
            status = "failed"
            log.exception("reconciliation.failed", run_id=run_id)
            raise
        finally:
            await self.store.finish_reconciliation(run_id, status, counts)
            log.info("reconciliation.finished", run_id=run_id, trigger=trigger, **counts)
        return run_id

    async def _side(self, side: _Side, counts: dict[str, int]) -> None:
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
                counts["checked"] += 1
                try:
                    record = await side.hotline.fetch(native_id)
                except NotFound:
                    counts["missing"] += 1
                    continue
                except AdapterError:
                    counts["failed"] += 1
                    continue
                async with self.store.begin() as tx:
                    try:
                        taken = await side.intake.take(
                            "reconcile", record, tx, datetime.now(UTC), force=True
                        )
                    except MappingError as exc:
                        await park_record(tx, side.intake, "reconcile", record, exc)
                        counts["parked"] += 1
                        self.metrics.park(side.system, "intake", "mapping")
                        continue
                    if taken is not None and await record_intake(
                        tx, self.topology, self.partner[side.system], taken, replay=True
                    ):
                        counts["republished"] += 1
                self.on_recorded()

    async def run(self) -> None:
        """Periodically, while this node holds the reconciler lease."""
        lease = "reconciler:" + ",".join(sorted(self.sides))
        while True:
            await asyncio.sleep(self.interval_s)
            if await self.store.try_acquire_lease(lease, self.node_id, self.interval_s * 2):
                await self.run_once("periodic")  # a crash: the supervisor restarts the task
