"""Consuming: the one place that acks, and the per-queue workers.

`settle()` is the only code that acks a work message. It decides from the
handler's outcome:

- ACK   → ack;
- RETRY → publish (confirmed) to the next retry exchange with the attempt
  header incremented, then ack; past the last rung it becomes PARK;
- PARK  → publish (confirmed) to parking with the reason, then ack;
- the handler raising → RETRY.

Never nack-with-requeue for a failure of the work: that would put the message
back at the head of its shard. If the retry/park copy cannot be published
(bounded: `_PUBLISH_ATTEMPTS`), or settling itself raises (a bug, a retry
exchange deleted under us), the message is given back to its queue (nack with
requeue, after a pause): the quorum queue counts that delivery, and past
`x-delivery-limit` the broker dead-letters it to parking, where it becomes a
dead letter in the store. So no message waits unacked until its channel
closes, and every path ends in done or parked. A message whose channel has
closed is left alone: the broker delivers it again.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustQueue
from aio_pika.exceptions import ChannelInvalidStateError
from structlog.contextvars import bound_contextvars

from bridge.transport.delivery import (
    ATTEMPT_HEADER,
    BROKER_DEATH_HEADERS,
    PARK_REASON_HEADER,
    REFERRAL_HEADER,
    RETRY_REASON_HEADER,
    Delivery,
    Handler,
    Outcome,
    ParkingCallback,
    Verdict,
)
from bridge.transport.errors import PublishError
from bridge.transport.publisher import Publisher
from bridge.transport.topology import Topology

log = structlog.get_logger(__name__)

_MAX_REASON = 1000
_BACKOFF_START_S = 0.5
_BACKOFF_MAX_S = 15.0
_PUBLISH_ATTEMPTS = 4
_GIVE_BACK_PAUSE_S = 1.0

Process = Callable[[AbstractIncomingMessage], Awaitable[None]]


async def settle(
    message: AbstractIncomingMessage,
    handler: Handler,
    *,
    topology: Topology,
    publisher: Publisher,
    closing: asyncio.Event,
) -> None:
    """Run `handler` on one work message and ack, retry or park it."""
    delivery = Delivery.from_message(message)
    with bound_contextvars(
        message_id=delivery.message_id,
        referral_id=delivery.referral_id,
        routing_key=delivery.routing_key,
        attempt=delivery.attempt,
    ):
        verdict = await _run(handler, delivery)
        if verdict.outcome is Outcome.RETRY:
            delay = topology.retry_delay(delivery.attempt)
            if delay is None:
                verdict = Verdict.park(
                    f"retry ladder exhausted after {delivery.attempt} retries: {verdict.reason}"
                )
            else:
                headers = {
                    k: v for k, v in delivery.headers.items() if k not in BROKER_DEATH_HEADERS
                }
                headers |= {
                    ATTEMPT_HEADER: delivery.attempt + 1,
                    RETRY_REASON_HEADER: verdict.reason[:_MAX_REASON],
                }
                exchange = topology.retry_name(delay)
                if not await _publish(message, publisher, exchange, delivery, headers, closing):
                    await give_back(message, closing)
                    return
                log.info("retry.scheduled", delay_s=delay, next_attempt=delivery.attempt + 1)
        if verdict.outcome is Outcome.PARK:
            headers = dict(delivery.headers) | {PARK_REASON_HEADER: verdict.reason[:_MAX_REASON]}
            if not await _publish(message, publisher, topology.parking, delivery, headers, closing):
                await give_back(message, closing)
                return
            log.warning("message.parked")
        await ack(message)


async def deliver_parked(
    message: AbstractIncomingMessage, callback: ParkingCallback, closing: asyncio.Event
) -> None:
    """Hand a parked message to `callback` (which stores it), then ack it."""
    delivery = Delivery.from_message(message)
    backoff = _BACKOFF_START_S
    with bound_contextvars(message_id=delivery.message_id, referral_id=delivery.referral_id):
        while True:
            try:
                await callback(delivery)
                break
            except Exception as exc:
                log.warning("parked_message.store_failed", error=type(exc).__name__)
                if _channel_closed(message) or closing.is_set():
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
        log.info("parked_message.stored")
        await ack(message)


async def give_back(message: AbstractIncomingMessage, closing: asyncio.Event) -> None:
    """Return a message we could not settle to its queue (counted by the broker against
    `x-delivery-limit`, so this ends in parking at worst); nothing to do when its channel
    has closed (the broker delivers it again) or the node is stopping."""
    if _channel_closed(message) or closing.is_set():
        return
    await asyncio.sleep(_GIVE_BACK_PAUSE_S)  # not a hot loop at the head of the shard
    try:
        await message.nack(requeue=True)
    except Exception as exc:
        log.warning("nack.failed", error=type(exc).__name__)
    else:
        log.warning("message.given_back")


async def ack(message: AbstractIncomingMessage) -> None:
    """Ack; a failure (channel gone after a reconnect) is logged: the message comes again."""
    try:
        await message.ack()
    except Exception as exc:
        log.warning("ack.failed", error=repr(exc))


async def _run(handler: Handler, delivery: Delivery) -> Verdict:
    try:
        result = await handler(delivery)
    except Exception as exc:
        # Only the type is logged: exception text may carry personal data.
        log.warning("handler.failed", error=type(exc).__name__, exc_info=False)
        return Verdict.retry(f"{type(exc).__name__}: {exc}")
    return result if isinstance(result, Verdict) else Verdict(result)


async def _publish(
    message: AbstractIncomingMessage,
    publisher: Publisher,
    exchange: str,
    delivery: Delivery,
    headers: dict[str, object],
    closing: asyncio.Event,
) -> bool:
    """Publish a retry/park copy, a bounded number of times while the original is still
    ours; False when it could not be published."""
    backoff = _BACKOFF_START_S
    for attempt in range(1, _PUBLISH_ATTEMPTS + 1):
        try:
            await publisher.publish(
                exchange,
                delivery.routing_key,
                delivery.body,
                message_id=delivery.message_id,
                headers=headers,
            )
            return True
        except Exception as exc:  # PublishError, or the channel refusing (404 exchange)
            reason = exc.reason.value if isinstance(exc, PublishError) else type(exc).__name__
            log.warning("settle.publish_failed", exchange=exchange, reason=reason)
            if attempt == _PUBLISH_ATTEMPTS or _channel_closed(message) or closing.is_set():
                return False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX_S)
    return False


def _channel_closed(message: AbstractIncomingMessage) -> bool:
    """The channel a message came on has closed: it can no longer be acked."""
    try:
        return message.channel.is_closed  # aio-pika raises instead of answering True
    except ChannelInvalidStateError:
        return True


class Subscription:
    """One consumed queue: a broker consumer feeding a worker.

    Messages of one referral (header `x-bridge-referral-id`, else the message id) are
    processed one at a time, in delivery order; messages of different referrals run
    side by side, up to `concurrency` at once (1: the whole queue one at a time), and
    the channel's prefetch bounds them too. So a slow call for one referral never holds
    up the others of its shard. The aio-pika callback only enqueues, so a reconnect
    never cancels a handler half-way; messages delivered on a channel that has since
    closed are skipped (the broker delivers them again).
    """

    def __init__(
        self,
        queue: AbstractRobustQueue,
        process: Process,
        closing: asyncio.Event | None = None,
        *,
        concurrency: int = 1,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.queue = queue
        self._process = process
        self._closing = closing or asyncio.Event()
        self._inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._running = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._tag: str | None = None
        self._worker: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._latest: dict[str, asyncio.Task[None]] = {}  # per referral, its last message

    @property
    def consuming(self) -> bool:
        return self._tag is not None

    async def start(self) -> None:
        """Subscribe (again) and let the worker run."""
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name=f"consume:{self.queue.name}")
        self._running.set()
        if self._tag is None:
            self._tag = await self.queue.consume(self._enqueue)

    async def stop(self) -> None:
        """Cancel the broker consumer; the worker finishes its current message, then waits.

        Messages already delivered stay unacked in the inbox (no attempt spent)
        and are processed after `start()`.
        """
        self._running.clear()
        tag, self._tag = self._tag, None
        if tag is not None:
            try:
                await self.queue.cancel(tag)
            except Exception as exc:  # channel down: the robust restore forgets it anyway
                log.warning("consumer.cancel_failed", queue=self.queue.name, error=repr(exc))

    async def aclose(self, timeout_s: float) -> bool:
        """Stop, wait (bounded) for the messages in hand; True if they finished in time."""
        await self.stop()
        finished = True
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            finished = False
            log.warning("consumer.shutdown_timed_out", queue=self.queue.name)
        tasks = [t for t in (self._worker, *self._in_flight) if t is not None]
        for task in tasks:
            task.cancel()
        # aiormq may turn the cancellation of a task blocked in a channel call
        # into the channel's close error: nothing to do about either.
        await asyncio.gather(*tasks, return_exceptions=True)
        self._worker = None
        return finished

    async def _enqueue(self, message: AbstractIncomingMessage) -> None:
        self._inbox.put_nowait(message)

    async def _work(self) -> None:
        while True:
            message = await self._inbox.get()
            await self._turn()
            if _channel_closed(message):
                self._slots.release()
                log.debug("message.stale_skipped", queue=self.queue.name)
                continue
            key = _order_key(message)
            task = asyncio.create_task(self._one(message, self._latest.get(key)))
            self._latest[key] = task
            self._in_flight.add(task)
            self._idle.clear()
            task.add_done_callback(functools.partial(self._finished, key))

    async def _turn(self) -> None:
        """Wait for a free slot while consuming runs (a pause holds what is not started)."""
        while True:
            await self._running.wait()
            await self._slots.acquire()
            if self._running.is_set():
                return
            self._slots.release()

    async def _one(
        self, message: AbstractIncomingMessage, before: asyncio.Task[None] | None
    ) -> None:
        """Process one message once the one before it of the same referral is done."""
        try:
            if before is not None:
                await asyncio.wait({before})
            try:
                await self._process(message)
            except Exception as exc:  # never let one message stop the shard, or hang
                log.error("settle.failed", queue=self.queue.name, error=type(exc).__name__)
                await give_back(message, self._closing)
        finally:
            self._slots.release()

    def _finished(self, key: str, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if self._latest.get(key) is task:
            del self._latest[key]
        if not self._in_flight:
            self._idle.set()


def _order_key(message: AbstractIncomingMessage) -> str:
    """What orders messages: their referral (snapshots of one referral apply in order)."""
    referral = (message.headers or {}).get(REFERRAL_HEADER)
    return referral if isinstance(referral, str) else f"message:{message.message_id}"
