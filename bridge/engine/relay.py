"""The outbox relay: publishes what intake recorded, with confirms, then marks it
published. At-least-once: a crash between confirm and mark publishes again, and the
receiving applier absorbs the repeat (same snapshot version)."""

from __future__ import annotations

import asyncio

import structlog

from bridge.store import Store
from bridge.transport import PublishError, Transport

log = structlog.get_logger(__name__)


class OutboxRelay:
    def __init__(
        self, *, store: Store, transport: Transport, batch: int = 200, idle_s: float = 0.5
    ) -> None:
        self.store = store
        self.transport = transport
        self.batch = batch
        self.idle_s = idle_s
        self._wake = asyncio.Event()
        self.published = 0

    def kick(self) -> None:
        """Intake recorded something: publish now rather than at the next tick."""
        self._wake.set()

    async def relay_once(self) -> int:
        """Publish one batch (confirmed concurrently); returns how many were published."""
        rows = await self.store.outbox_pending(self.batch)
        if not rows:
            return 0

        async def publish(row) -> int | None:  # type: ignore[no-untyped-def]
            try:
                await self.transport.publish(
                    row.routing_key,
                    row.body,
                    message_id=str(row.headers.get("message_id", row.id)),
                    headers=row.headers,
                )
            except PublishError as exc:
                log.warning(
                    "snapshot.publish_failed",
                    referral_id=row.referral_id,
                    reason=str(exc.reason) if hasattr(exc, "reason") else str(exc),
                )
                return None
            return row.id

        ids = [i for i in await asyncio.gather(*(publish(r) for r in rows)) if i is not None]
        if ids:
            await self.store.mark_published(ids)
            self.published += len(ids)
        if len(ids) < len(rows):
            await asyncio.sleep(1.0)  # the broker refused some: do not spin
        return len(ids)

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
