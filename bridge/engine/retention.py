"""Retention: the store keeps only what is still needed, deleted a small batch at a
time so that traffic is never blocked.

What is deleted, and after how long (``[store]`` keys)::

    outbox               published messages          outbox_retention_s after publishing
    dead_letters         replayed or discarded ones  dead_letter_retention_s after the change
    reconciliation_runs  finished runs               reconciliation_retention_s after finishing
    leases               expired leases              lease_retention_s after expiry

Never deleted: unpublished messages, parked dead letters, running runs, and the record
itself (referrals, actions, events) with the state that guards exactly-once
(source_versions, feed_seen, created_index), which must outlive any change to its
referral.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from bridge.store import Clock, Store, utc_now

if TYPE_CHECKING:
    from bridge.config import StoreConfig

log = structlog.get_logger(__name__)

Purge = Callable[[datetime, int], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long each kind of finished row is kept, in seconds, and the batch size."""

    outbox_s: float = 604_800
    dead_letters_s: float = 2_592_000
    reconciliations_s: float = 2_592_000
    leases_s: float = 86_400
    interval_s: float = 600
    batch: int = 500

    @classmethod
    def from_config(cls, config: StoreConfig) -> RetentionPolicy:
        return cls(
            outbox_s=config.outbox_retention_s,
            dead_letters_s=config.dead_letter_retention_s,
            reconciliations_s=config.reconciliation_retention_s,
            leases_s=config.lease_retention_s,
            interval_s=config.retention_interval_s,
            batch=config.retention_batch,
        )


class Retention:
    """The background task that applies a :class:`RetentionPolicy` to a store."""

    def __init__(
        self, *, store: Store, policy: RetentionPolicy | None = None, clock: Clock = utc_now
    ) -> None:
        self.store = store
        self.policy = policy or RetentionPolicy()
        self.clock = clock
        self.purged: dict[str, int] = {}

    async def purge_once(self, now: datetime | None = None) -> dict[str, int]:
        """Delete everything whose retention has passed at ``now`` (default: the clock);
        returns how many rows of each table were deleted. One transaction per batch,
        yielding to the event loop between batches. Database errors propagate."""
        now = now or self.clock()
        policy = self.policy
        purges: list[tuple[str, float, Purge]] = [
            ("outbox", policy.outbox_s, self.store.purge_published),
            ("dead_letters", policy.dead_letters_s, self.store.purge_dead_letters),
            ("reconciliation_runs", policy.reconciliations_s, self.store.purge_reconciliations),
            ("leases", policy.leases_s, self.store.purge_leases),
        ]
        counts: dict[str, int] = {}
        for table, keep_s, purge in purges:
            cutoff = now - timedelta(seconds=keep_s)
            counts[table] = 0
            while True:
                deleted = await purge(cutoff, policy.batch)
                counts[table] += deleted
                await asyncio.sleep(0)  # let traffic's transactions in between batches
                if deleted < policy.batch:
                    break
            self.purged[table] = self.purged.get(table, 0) + counts[table]
        if any(counts.values()):
            log.info("store.purged", **counts)
        return counts

    async def run(self) -> None:
        """Purge every ``interval_s``, from the start; a failure (the store) ends the
        task, and the node's supervisor logs it and starts it again."""
        while True:
            await self.purge_once()
            await asyncio.sleep(self.policy.interval_s)
