"""The outbox relay: publishes what intake recorded, with confirms, then marks it
published. At-least-once: a crash between confirm and mark publishes again, and the
receiving applier absorbs the repeat (same snapshot version).

What a failed publish does to its outbox message::

    returned (unroutable)   deterministic: parked at once as a `publish` dead letter
    nacked, timeout         attempts + 1, not pending again for a bounded exponential
                            back-off; parked at `max_attempts`
    connection              nothing: the broker is away for every message, not this
                            one; the relay waits and tries again

A message in back-off is not fetched, so it never holds up the messages behind it.
Parking removes the message from the outbox in the same transaction; a replay of the
dead letter puts it back (`bridge.engine.replay`).
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from bridge.engine.metrics import EngineMetrics, ParkReason
from bridge.store import DeadLetterIn, OutboxRow, Store, Tx
from bridge.transport import PublishError, PublishFailure, Transport

if TYPE_CHECKING:
    from bridge.config import StoreConfig

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RelayPolicy:
    """How long a message whose publish keeps failing is retried before it is parked."""

    max_attempts: int = 10
    retry_initial_s: float = 1.0
    retry_max_s: float = 300.0

    @classmethod
    def from_config(cls, config: StoreConfig) -> RelayPolicy:
        return cls(
            max_attempts=config.outbox_max_attempts,
            retry_initial_s=config.outbox_retry_initial_s,
            retry_max_s=config.outbox_retry_max_s,
        )

    def delay_s(self, failures: int) -> float:
        """The back-off after ``failures`` failed publishes (≥ 1): doubling, capped."""
        return min(self.retry_initial_s * 2 ** min(failures - 1, 62), self.retry_max_s)


class OutboxRelay:
    def __init__(
        self,
        *,
        store: Store,
        transport: Transport,
        batch: int = 200,
        idle_s: float = 0.5,
        policy: RelayPolicy | None = None,
        metrics: EngineMetrics | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics or EngineMetrics()
        self.transport = transport
        self.batch = batch
        self.idle_s = idle_s
        self.policy = policy or RelayPolicy()
        self._wake = asyncio.Event()
        self.published = 0
        self.parked = 0

    def kick(self) -> None:
        """Intake recorded something: publish now rather than at the next tick."""
        self._wake.set()

    async def relay_once(self) -> int:
        """Publish one batch (confirmed concurrently); returns how many were published.

        Failed messages are deferred or parked (see the module docstring); only a lost
        connection leaves them due, and then the relay sleeps a second.
        """
        rows = await self.store.outbox_pending(self.batch)
        if not rows:
            return 0
        outcomes = await asyncio.gather(*(self._publish(row) for row in rows))
        ids = [row.id for row, failure in zip(rows, outcomes, strict=True) if failure is None]
        if ids:
            await self.store.mark_published(ids)
            self.published += len(ids)
        failed = [
            (row, failure)
            for row, failure in zip(rows, outcomes, strict=True)
            if failure is not None and failure.reason is not PublishFailure.CONNECTION
        ]
        if failed:
            async with self.store.begin() as tx:
                parked = [await self._fail(tx, row, failure) for row, failure in failed]
            for letter in parked:
                if letter is not None:  # committed: count it
                    self.metrics.park(letter.system, "publish", _reason(letter))
        if len(ids) + len(failed) < len(rows):
            await asyncio.sleep(1.0)  # the connection is lost: do not spin
        return len(ids)

    async def _publish(self, row: OutboxRow) -> PublishError | None:
        try:
            await self.transport.publish(
                row.routing_key,
                row.body,
                message_id=str(row.headers.get("message_id", row.id)),
                headers=row.headers,
            )
        except PublishError as exc:
            return exc
        return None

    async def _fail(self, tx: Tx, row: OutboxRow, failure: PublishError) -> DeadLetterIn | None:
        """Defer a failed publish, or park it; the dead letter parked, if one was."""
        attempts = row.attempts + 1
        if failure.reason is PublishFailure.RETURNED:
            why = (
                f"the broker returned outbox message {row.id} as unroutable: no queue is "
                f"bound to routing key {row.routing_key!r} on {self.transport.topology.exchange!r}"
            )
        elif attempts >= self.policy.max_attempts:
            why = (
                f"outbox message {row.id} to routing key {row.routing_key!r} was not "
                f"confirmed in {attempts} attempts (last: {failure.reason.value})"
            )
        else:
            delay_s = self.policy.delay_s(attempts)
            if await tx.defer_outbox(row, delay_s):
                log.warning(
                    "snapshot.publish_deferred",
                    referral_id=row.referral_id,
                    outbox_id=row.id,
                    reason=failure.reason.value,
                    attempts=attempts,
                    delay_s=delay_s,
                )
            return None
        returned = failure.reason is PublishFailure.RETURNED
        letter = _letter(row, why, attempts, field="routing_key" if returned else None)
        letter_id = await tx.park_outbox(row.id, letter)
        if letter_id is not None:
            self.parked += 1
            log.warning(
                "snapshot.parked",
                referral_id=row.referral_id,
                outbox_id=row.id,
                dead_letter_id=letter_id,
                reason=failure.reason.value,
                attempts=attempts,
            )
            return letter
        return None

    async def run(self) -> None:
        """Relay until cancelled; a store failure ends the task (the supervisor restarts it)."""
        while True:
            count = await self.relay_once()
            if count < self.batch:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.idle_s)
                except TimeoutError:
                    pass


def _reason(letter: DeadLetterIn) -> ParkReason:
    return "unroutable" if letter.field == "routing_key" else "publish_failed"


def _letter(row: OutboxRow, reason: str, attempts: int, field: str | None) -> DeadLetterIn:
    """A `publish` dead letter holding what a replay needs to queue the message again."""
    parts = row.routing_key.split(".")
    target = parts[1] if len(parts) > 1 and parts[0] == "to" else "unknown"  # to.{target}.…
    return DeadLetterIn(
        system=target,
        stage="publish",
        reason=reason,
        payload={
            "outbox_id": row.id,
            "routing_key": row.routing_key,
            "body_b64": base64.b64encode(row.body).decode("ascii"),
            "headers": dict(row.headers),
            "early_warning": row.early_warning,
        },
        referral_id=row.referral_id or None,
        field=field,
        attempts=attempts,
    )
