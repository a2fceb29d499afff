"""A feed poller: reads one feed of one hotline and records what it read (intake) in the
same transaction as the new position. Backs off while its hotline fails; never skips."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from pydantic import ValidationError

from adapters.base import Hotline
from adapters.errors import AdapterError, RateLimited, Unavailable
from bridge.engine.intake import IntakePolicy, park_record, record_intake
from bridge.engine.metrics import EngineMetrics
from bridge.errors import MappingError
from bridge.store import Store
from bridge.transport import Topology

log = structlog.get_logger(__name__)

READ_TIMEOUT_S = 300.0
"""The longest one poll (its pages, its transaction) may take: far above any healthy read
(HTTP calls time out after 10 s, a 429 pauses for at most 60 s)."""


def as_mapping_error(exc: Exception, native_key: str) -> MappingError:
    """What an intake raised for a record, as the `MappingError` it is parked with."""
    if isinstance(exc, MappingError):
        if exc.case is None:
            exc.case = native_key
        return exc
    if isinstance(exc, ValidationError):
        return MappingError.from_validation(exc, native_key)
    return MappingError(type(exc).__name__, None, native_key, "the record could not be mapped")


class Poller:
    def __init__(
        self,
        *,
        store: Store,
        hotline: Hotline,
        feed: str,
        policy: IntakePolicy,
        topology: Topology,
        interval_s: float,
        busy_interval_s: float | None = None,
        max_backoff_s: float = 60.0,
        on_recorded: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        read_timeout_s: float = READ_TIMEOUT_S,
        metrics: EngineMetrics | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics or EngineMetrics()
        self.hotline = hotline
        self.feed = feed
        self.policy = policy
        self.topology = topology
        self.interval_s = interval_s
        self.busy_interval_s = min(busy_interval_s or interval_s, interval_s)
        self.max_backoff_s = max_backoff_s
        self.on_recorded = on_recorded
        self.clock = clock
        self.failing = False
        self.last_error: str | None = None  # the type of the last failure, for readiness
        self.last_success: datetime | None = None
        self.read_timeout_s = read_timeout_s

    @property
    def name(self) -> str:
        return f"poller.{self.hotline.system}.{self.feed}"

    async def poll_once(self) -> tuple[int, bool]:
        """Read one page and record it; returns (records forwarded, more to read)."""
        position = await self.store.get_position(self.hotline.system, self.feed)
        page = await self.hotline.read_feed(self.feed, position)
        if not page.records and page.position == position:
            return 0, page.more  # nothing new and nowhere to move: no transaction, no fsync
        read_at = self.clock()
        forwarded = parked = 0
        async with self.store.begin() as tx:
            for record in page.records:
                try:
                    intake = await self.policy.take(self.feed, record, tx, read_at)
                except (MappingError, ValidationError, ValueError, KeyError, TypeError) as exc:
                    # one record that does not map is parked; the feed goes on
                    exc = as_mapping_error(exc, self.policy.native_key(record))
                    await park_record(tx, self.policy, self.feed, record, exc)
                    parked += 1
                    log.warning(
                        "record.parked",
                        system=self.hotline.system,
                        native_id=self.policy.native_key(record),
                        field=exc.field,
                    )
                    continue
                if intake is not None and await record_intake(tx, self.topology, intake):
                    forwarded += 1
            await tx.set_position(self.hotline.system, self.feed, page.position)
        for _ in range(parked):  # committed: count them
            self.metrics.park(self.hotline.system, "intake", "mapping")
        if forwarded:
            self.on_recorded()
            log.info(
                "feed.read",
                system=self.hotline.system,
                feed=self.feed,
                records=len(page.records),
                forwarded=forwarded,
            )
        return forwarded, page.more

    async def run(self) -> None:
        """Poll until cancelled. While the hotline fails, wait `retry_delay(failures)`:
        from `busy_interval_s`, doubling up to `max_backoff_s`, so that one transient
        error costs half a second and a recovery is seen within `max_backoff_s`; a 429
        waits its `Retry-After` (the shared request budget holds every caller back too)
        without growing the back-off. Anything else that fails (the store) ends the task:
        the node's supervisor logs it and starts it again.

        After a read that brought something new the next one comes after
        `busy_interval_s` (changes come in runs: the other side's answer to what was
        just forwarded, the rest of a burst), after a quiet one after `interval_s`."""
        failures = 0
        while True:
            try:
                # A read that never ends (a hang we cannot see) must not stop the feed
                # silently: past the bound it ends the task, which the supervisor logs
                # and restarts.
                async with asyncio.timeout(self.read_timeout_s):
                    forwarded, more = await self.poll_once()
            except AdapterError as exc:
                if not self.failing:
                    log.warning(
                        "upstream.unavailable",
                        system=self.hotline.system,
                        feed=self.feed,
                        error=type(exc).__name__,
                        maintenance=isinstance(exc, Unavailable),
                    )
                self.failing, self.last_error = True, type(exc).__name__
                if isinstance(exc, RateLimited):
                    await asyncio.sleep(max(exc.retry_after, self.busy_interval_s))
                else:
                    failures += 1
                    await asyncio.sleep(self.retry_delay(failures))
                continue
            if self.failing:
                log.info("upstream.recovered", system=self.hotline.system, feed=self.feed)
                self.failing = False
            self.last_success = self.clock()
            failures = 0
            if not more:
                await asyncio.sleep(self.busy_interval_s if forwarded else self.interval_s)

    def retry_delay(self, failures: int) -> float:
        """The wait after the `failures`-th failed read in a row."""
        return min(self.busy_interval_s * 2 ** (failures - 1), self.max_backoff_s)
