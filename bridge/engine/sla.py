"""The SLA watch: flags referrals whose deadlines (办理时限) are near or missed.

Every `[sla] interval_s` the node that holds the `sla:<sides>` lease (one per store,
however many replicas run) reads the referrals that may still owe something, in
batches by referral id (keyset), judges their deadlines (`bridge.engine.deadlines`) at
its clock, and stores each deadline's due time and state in `sla_deadlines`. A deadline
whose state becomes `at_risk` (within `[sla] warn_before_s`) or `breached` is logged
once, as `sla.at_risk` / `sla.breached`, with the referral id, kind, system and due
time only. The stored state is the memory: a restart, or another replica taking the
lease over, logs nothing twice.

Which deadlines a node judges: those on the hotlines it runs (`[bridge] sides`); the
other side's actions are not in its ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

import structlog
from pydantic import ValidationError

from bridge.config import SlaConfig
from bridge.engine.deadlines import AT_RISK, BREACHED, WorkCalendar, state_at
from bridge.partners import DeadlinesFn, default_deadline_rules
from bridge.store import Clock, SlaRow, SlaSubject, Store, utc_now
from schemas.canonical import Referral

log = structlog.get_logger(__name__)

BATCH: Final = 200
DUE_TOLERANCE: Final = timedelta(seconds=1)
"""A due time that moved less than this is not rewritten (the same deadline read from
two snapshots a few milliseconds apart)."""
MIN_LEASE_S: Final = 30.0


@dataclass(frozen=True)
class Crossing:
    """A deadline that entered `at_risk` or `breached` in this scan."""

    referral_id: str
    kind: str
    system: str
    due_at: datetime
    state: str


@dataclass
class SlaWatch:
    """The watch of one node. `clock` returns aware UTC times (tests move it);
    `systems` are the hotlines the node runs."""

    store: Store
    config: SlaConfig
    node_id: str
    systems: Collection[str]
    rules: Mapping[str, DeadlinesFn] = field(default_factory=default_deadline_rules)
    """Origin partner → the deadlines of referrals that began there (its kind's)."""
    clock: Clock = utc_now
    batch_size: int = BATCH
    scans: int = field(default=0, init=False)
    """Scans completed by this node (for tests and status)."""

    @property
    def lease(self) -> str:
        return "sla:" + ",".join(sorted(self.systems))

    @property
    def calendar(self) -> WorkCalendar:
        return WorkCalendar(frozenset(self.config.holidays), frozenset(self.config.extra_workdays))

    async def run(self) -> None:
        """Scan now, then every `interval_s`, while this node holds the lease."""
        while True:
            await self.tick()
            await asyncio.sleep(self.config.interval_s)

    async def tick(self) -> bool:
        """One scan if this node holds (or takes) the lease; whether it scanned."""
        if not await self._hold_lease():
            return False
        await self.scan()
        return True

    async def scan(self) -> list[Crossing]:
        """Judge every referral that may still owe something, one batch at a time (one
        read, one write each); returns the crossings logged. Stops early if another node
        took the lease over between two batches."""
        calendar = self.calendar
        crossings: list[Crossing] = []
        after: str | None = None
        while True:
            batch = await self.store.sla_batch(after, self.batch_size, tuple(self.rules))
            if not batch:
                break
            after = batch[-1].referral_id
            rows, found = self.judge(batch, self.clock(), calendar)
            await self.store.upsert_sla(rows)
            for crossing in found:
                log.warning(
                    f"sla.{crossing.state}",
                    referral_id=crossing.referral_id,
                    kind=crossing.kind,
                    system=crossing.system,
                    due_at=crossing.due_at.isoformat(),
                )
            crossings += found
            if len(batch) < self.batch_size or not await self._hold_lease():
                break
        self.scans += 1
        return crossings

    def judge(
        self, batch: list[SlaSubject], now: datetime, calendar: WorkCalendar
    ) -> tuple[list[SlaRow], list[Crossing]]:
        """The rows to write (new or changed) and the crossings, for one batch at `now`."""
        warn = timedelta(seconds=self.config.warn_before_s)
        rows: list[SlaRow] = []
        crossings: list[Crossing] = []
        for subject in batch:
            ref = _snapshot(subject)
            if ref is None:
                continue
            rule = self.rules.get(ref.origin)
            if rule is None:
                continue
            found = rule(
                ref, subject.actions, subject.deadlines, calendar=calendar, systems=self.systems
            )
            for deadline in found:
                state = state_at(deadline, now, warn)
                old = subject.deadlines.get(deadline.kind)
                moved = old is None or abs(old.due_at - deadline.due_at) >= DUE_TOLERANCE
                if old is not None and old.state == state and not moved:
                    continue
                changed = old is None or old.state != state
                due = deadline.due_at if moved or old is None else old.due_at
                rows.append(
                    SlaRow(
                        referral_id=subject.referral_id,
                        kind=deadline.kind,
                        system=deadline.system,
                        due_at=due,
                        state=state,
                        changed_at=now if changed or old is None else old.changed_at,
                    )
                )
                if changed and state in (AT_RISK, BREACHED):
                    crossings.append(
                        Crossing(subject.referral_id, deadline.kind, deadline.system, due, state)
                    )
        return rows, crossings

    async def _hold_lease(self) -> bool:
        ttl = max(self.config.interval_s * 3, MIN_LEASE_S)
        return await self.store.try_acquire_lease(self.lease, self.node_id, ttl)


def _snapshot(subject: SlaSubject) -> Referral | None:
    """The referral's last snapshot, or None (none yet: an applier recorded the referral
    before its own side read it; unreadable: logged, judged again next scan)."""
    if subject.last_snapshot is None:
        return None
    try:
        return Referral.model_validate(subject.last_snapshot)
    except ValidationError:
        log.warning("sla.snapshot_unreadable", referral_id=subject.referral_id)
        return None
