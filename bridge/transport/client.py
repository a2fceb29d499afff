"""`Transport`: owner of the AMQP connection, its channels and consumers."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

import aio_pika
import structlog
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS, ChannelPreconditionFailed

from bridge.transport.consumer import Subscription, deliver_parked, settle
from bridge.transport.delivery import REFERRAL_HEADER, Handler, ParkingCallback
from bridge.transport.errors import TopologyError, TransportError
from bridge.transport.publisher import Publisher
from bridge.transport.topology import PRIORITIES, Priority, Topology

log = structlog.get_logger(__name__)


@dataclass
class _TargetConsumers:
    channels: dict[Priority, AbstractRobustChannel]
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    paused: bool = False


class Transport:
    """Publishes snapshots and consumes a target's work queues over one robust connection.

    Build with `await Transport.connect(...)`; end with `await aclose()`.
    Publishing uses one confirm channel; each target's alert queues and normal
    queues are consumed on channels of their own, so early-warning traffic
    never waits behind normal traffic.
    """

    def __init__(
        self,
        connection: AbstractRobustConnection,
        topology: Topology,
        *,
        publisher: Publisher,
        topology_channel: AbstractRobustChannel,
        prefetch: int,
        shutdown_timeout_s: float,
        concurrency: int = 1,
    ) -> None:
        self.topology = topology
        self._connection = connection
        self._publisher = publisher
        self._topology_channel = topology_channel
        self._prefetch = prefetch
        self._concurrency = concurrency
        self._shutdown_timeout_s = shutdown_timeout_s
        self._targets: dict[str, _TargetConsumers] = {}
        self._parking: Subscription | None = None
        self._parking_channel: AbstractRobustChannel | None = None
        self._closing = asyncio.Event()
        self._down = False  # log a disconnect once, not once per failed attempt
        connection.reconnect_callbacks.add(self._on_reconnected)
        connection.close_callbacks.add(self._on_connection_closed)

    @classmethod
    async def connect(
        cls,
        url: str,
        topology: Topology,
        *,
        prefetch: int = 32,
        concurrency: int = 1,
        publish_timeout_s: float = 10.0,
        reconnect_interval_s: float = 2.0,
        shutdown_timeout_s: float = 10.0,
        connection_name: str = "hotline-bridge",
    ) -> Transport:
        """Connect (robust: reconnects by itself afterwards). Raises TransportError."""
        try:
            connection = await aio_pika.connect_robust(
                url,
                timeout=publish_timeout_s,
                reconnect_interval=reconnect_interval_s,
                client_properties={"connection_name": connection_name},
            )
        except (*CONNECTION_EXCEPTIONS, TimeoutError) as exc:
            raise TransportError(f"cannot connect to the AMQP broker: {exc!r}") from exc
        confirm = connection.channel(publisher_confirms=True, on_return_raises=True)
        await confirm.initialize()
        topology_channel = connection.channel(publisher_confirms=True, on_return_raises=True)
        await topology_channel.initialize()
        log.info("amqp.connected", namespace=topology.namespace)
        return cls(
            connection,
            topology,
            publisher=Publisher(confirm, publish_timeout_s),  # type: ignore[arg-type]
            topology_channel=topology_channel,  # type: ignore[arg-type]
            prefetch=prefetch,
            shutdown_timeout_s=shutdown_timeout_s,
            concurrency=concurrency,
        )

    # -- readiness ---------------------------------------------------------

    @property
    def connected(self) -> bool:
        return not self._connection.is_closed and self._connection.connected.is_set()

    def consumers_state(self, target: str) -> str:
        """Readiness of `target`'s consumers: `ok` (every work queue consumed), `paused`,
        `none` (nothing consumed), or `detached: n of m consumed`."""
        consumers = self._targets.get(target)
        if consumers is None or not consumers.subscriptions:
            return "none"
        if consumers.paused:
            return "paused"
        subscriptions = consumers.subscriptions.values()
        attached = sum(1 for s in subscriptions if s.consuming)
        if attached == len(subscriptions):
            return "ok"
        return f"detached: {attached} of {len(subscriptions)} consumed"

    async def ping(self, timeout_s: float = 5.0) -> bool:
        """True if the broker answers and the namespace's exchange exists."""
        if not self.connected:
            return False
        try:
            async with asyncio.timeout(timeout_s):
                channel = self._connection.channel(publisher_confirms=False)
                await channel.initialize()
                try:
                    await channel.declare_exchange(
                        self.topology.exchange, passive=True, robust=False
                    )
                finally:
                    await channel.close()
        except (*CONNECTION_EXCEPTIONS, TimeoutError) as exc:
            log.info("amqp.ping_failed", error=repr(exc))
            return False
        return True

    async def queue_depths(self, target: str, timeout_s: float = 2.0) -> int | None:
        """Messages waiting in `target`'s work queues (every shard and priority), from
        passive declarations on a channel of its own; None if the broker does not say
        (down, a queue missing, no answer within `timeout_s`)."""
        if not self.connected:
            return None
        try:
            async with asyncio.timeout(timeout_s):
                channel = self._connection.channel(publisher_confirms=False)
                await channel.initialize()
                try:
                    total = 0
                    for name in self.topology.work_queues(target):
                        queue = await channel.declare_queue(name, passive=True, robust=False)
                        total += queue.declaration_result.message_count or 0
                finally:
                    if not channel.is_closed:
                        await channel.close()
        except Exception as exc:  # a figure for the status: its absence says enough
            log.info("amqp.queue_depth_failed", target=target, error=type(exc).__name__)
            return None
        return total

    # -- topology ----------------------------------------------------------

    async def declare(self) -> None:
        """Declare every exchange, queue and binding (idempotent). Raises TopologyError."""
        channel = self._topology_channel
        try:
            exchanges = {
                e.name: await channel.declare_exchange(e.name, e.type, durable=True)
                for e in self.topology.exchanges()
            }
            queues = {
                q.name: await channel.declare_queue(q.name, durable=True, arguments=q.arguments)
                for q in self.topology.queues()
            }
            for b in self.topology.bindings():
                await queues[b.queue].bind(exchanges[b.exchange], b.routing_key)
        except ChannelPreconditionFailed as exc:
            raise TopologyError(f"the broker refused a declaration: {exc}") from exc
        log.info("topology.declared", namespace=self.topology.namespace)

    async def delete_topology(self) -> None:
        """Stop consuming and delete every exchange and queue of the namespace (tests)."""
        await self._stop_consumers()
        channel = self._topology_channel
        for q in self.topology.queues():
            await channel.queue_delete(q.name)
        for e in self.topology.exchanges():
            await channel.exchange_delete(e.name)
        log.info("topology.deleted", namespace=self.topology.namespace)

    # -- publishing --------------------------------------------------------

    async def publish(
        self,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        headers: Mapping[str, object] | None = None,
    ) -> None:
        """Publish to the referrals exchange; return once confirmed. Raises PublishError."""
        await self._publisher.publish(
            self.topology.exchange, routing_key, body, message_id=message_id, headers=headers or {}
        )

    async def publish_snapshot(
        self,
        target: str,
        referral_id: str,
        early_warning: bool,
        body: bytes,
        message_id: str,
        headers: Mapping[str, object] | None = None,
    ) -> None:
        """Publish a snapshot to its target's shard (alert queues if early warning)."""
        routing_key = self.topology.routing_key(target, referral_id, early_warning)
        await self.publish(
            routing_key,
            body,
            message_id=message_id,
            headers={**(headers or {}), REFERRAL_HEADER: referral_id},
        )

    # -- consuming ---------------------------------------------------------

    async def consume(
        self, target: str, handler: Handler, shards: tuple[int, ...] | None = None
    ) -> None:
        """Consume the work queues of `target` (all shards, or those given).

        Consumers of a paused target start when it is resumed. Raises ValueError
        for a queue already consumed.
        """
        consumers = await self._target(target)
        process = functools.partial(
            settle,
            handler=handler,
            topology=self.topology,
            publisher=self._publisher,
            closing=self._closing,
        )
        chosen = self.topology.pick_shards(shards)
        for priority in PRIORITIES:
            for shard in chosen:
                name = self.topology.work_queue(target, priority, shard)
                if name in consumers.subscriptions:
                    raise ValueError(f"{name} is already consumed")
                queue = await consumers.channels[priority].declare_queue(
                    name, durable=True, arguments=self.topology.work_queue_arguments()
                )
                # Bound here too so that aio-pika's restore, which re-declares a
                # queue deleted under its consumer, also restores the binding.
                await queue.bind(
                    self.topology.exchange, self.topology.binding_key(target, priority, shard)
                )
                subscription = Subscription(
                    queue, process, self._closing, concurrency=self._concurrency
                )
                consumers.subscriptions[name] = subscription
                if not consumers.paused:
                    await subscription.start()
        log.info("consumers.started", target=target, shards=shards, paused=consumers.paused)

    async def stop_consuming(self, target: str, shards: tuple[int, ...] | None = None) -> None:
        """Cancel and forget the consumers of those shards (e.g. a lease was lost)."""
        consumers = self._targets.get(target)
        if consumers is None:
            return
        for name in self.topology.work_queues(target, shards):
            subscription = consumers.subscriptions.pop(name, None)
            if subscription is not None:
                await subscription.aclose(self._shutdown_timeout_s)
        log.info("consumers.stopped", target=target, shards=shards)

    async def pause(self, target: str) -> None:
        """Stop deliveries for `target`; a handler already running finishes normally."""
        consumers = await self._target(target)
        consumers.paused = True
        await asyncio.gather(*(s.stop() for s in consumers.subscriptions.values()))
        log.info("consumers.paused", target=target)

    async def resume(self, target: str) -> None:
        """Re-subscribe the consumers of a paused target."""
        consumers = await self._target(target)
        consumers.paused = False
        for subscription in consumers.subscriptions.values():
            await subscription.start()
        log.info("consumers.resumed", target=target)

    async def drain_parking(self, callback: ParkingCallback) -> None:
        """Consume the parking queue: `callback` stores each message, then it is acked."""
        if self._parking is not None:
            raise ValueError("the parking queue is already drained")
        self._parking_channel = await self._new_consumer_channel()
        queue = await self._parking_channel.declare_queue(
            self.topology.parking,
            durable=True,
            arguments=self.topology.parking_queue_arguments(),
        )
        self._parking = Subscription(
            queue, functools.partial(deliver_parked, callback=callback, closing=self._closing)
        )
        await self._parking.start()
        log.info("parking.draining")

    # -- lifecycle ---------------------------------------------------------

    async def aclose(self) -> None:
        """Stop consumers, let in-flight handlers finish (bounded), close the connection."""
        if self._closing.is_set():
            return
        await self._stop_consumers()
        self._closing.set()
        await self._connection.close()
        log.info("amqp.closed")

    async def _stop_consumers(self) -> None:
        subscriptions = [s for c in self._targets.values() for s in c.subscriptions.values()]
        if self._parking is not None:
            subscriptions.append(self._parking)
        # Concurrently: one shared bound, not one per queue.
        await asyncio.gather(*(s.aclose(self._shutdown_timeout_s) for s in subscriptions))
        channels = [ch for c in self._targets.values() for ch in c.channels.values()]
        if self._parking_channel is not None:
            channels.append(self._parking_channel)
        for channel in channels:
            try:
                await channel.close()
            except Exception as exc:
                log.warning("amqp.channel_close_failed", error=repr(exc))
        self._targets.clear()
        self._parking = self._parking_channel = None

    async def _target(self, target: str) -> _TargetConsumers:
        if target not in self.topology.targets:
            raise ValueError(f"unknown target {target!r}")
        if target not in self._targets:
            channels = {p: await self._new_consumer_channel() for p in PRIORITIES}
            self._targets[target] = _TargetConsumers(channels)
        return self._targets[target]

    async def _new_consumer_channel(self) -> AbstractRobustChannel:
        channel = self._connection.channel(publisher_confirms=False)
        await channel.initialize()
        await channel.set_qos(prefetch_count=self._prefetch)
        return channel  # type: ignore[return-value]

    def _on_reconnected(self, *_: object) -> None:
        self._down = False
        log.warning("amqp.reconnected", namespace=self.topology.namespace)

    def _on_connection_closed(self, _sender: object, exc: BaseException | None = None) -> None:
        if not self._closing.is_set() and not self._down:
            self._down = True
            log.warning("amqp.disconnected", error=repr(exc))
