"""The composition root: builds a node from its settings, owns start and stop.

Start order: HTTP session → store → adapters → broker (topology) → consumers (appliers)
→ outbox relay → reconciler → SLA watch → pollers → admin API; torn down in reverse by
one `AsyncExitStack`.
This is the only module that names concrete adapters: a third partner hotline is a new
`adapters/<name>/` package, a mapping module, a side module and one entry in `SIDES`.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog

from adapters.base import Hotline
from adapters.errors import AdapterError
from adapters.hotline12345.adapter import Hotline12345
from adapters.hotline12351.adapter import Hotline12351
from adapters.ratelimit import RequestBudget
from adapters.retry import RetryPolicy
from bridge.admin import serve_admin
from bridge.config import Settings
from bridge.engine.applier import Applier, ApplyPolicy
from bridge.engine.intake import IntakePolicy
from bridge.engine.metrics import EngineMetrics
from bridge.engine.poller import Poller
from bridge.engine.relay import OutboxRelay, RelayPolicy
from bridge.engine.retention import Retention, RetentionPolicy
from bridge.engine.side12345 import Apply12345, Intake12345
from bridge.engine.side12351 import Apply12351, Intake12351
from bridge.engine.sla import SlaWatch
from bridge.engine.versions import record_tables
from bridge.mapping import MappingTables
from bridge.reconcile import Reconciler
from bridge.store import Clock, DeadLetterIn, Store, utc_now
from bridge.supervisor import Supervisor
from bridge.transport import Delivery, Topology, Transport
from bridge.transport.delivery import PARK_REASON_HEADER

log = structlog.get_logger(__name__)

PARTNER = {"12345": "12351", "12351": "12345"}
"""Where a side's snapshots go: every referral crosses between these two."""


@dataclass
class Side:
    """One hotline this node runs: its adapter, intake and apply policies, and the
    request budget its calls spend (which counts their outcomes, for the metrics)."""

    system: str
    hotline: Hotline
    intake: IntakePolicy
    apply: ApplyPolicy
    budget: RequestBudget | None = None


def build_side(
    system: str, settings: Settings, session: aiohttp.ClientSession, tables: MappingTables
) -> Side:
    """The registry of hotlines this bridge knows."""
    handler = settings.bridge.handler_name
    if system == "12345":
        assert settings.hotline12345 is not None
        hotline12345 = Hotline12345(session, settings.hotline12345)
        return Side(
            system,
            hotline12345,
            Intake12345(unit_code=settings.hotline12345.unit_code, tables=tables),
            Apply12345(hotline=hotline12345, handler=handler, tables=tables),
            hotline12345.budget,
        )
    if system == "12351":
        assert settings.hotline12351 is not None
        hotline12351 = Hotline12351(session, settings.hotline12351)
        return Side(
            system,
            hotline12351,
            Intake12351(tables=tables),
            Apply12351(hotline=hotline12351, tables=tables),
            hotline12351.budget,
        )
    raise ValueError(f"unknown hotline {system!r}")


def topology_of(settings: Settings) -> Topology:
    amqp = settings.amqp
    return Topology(
        namespace=amqp.namespace,
        targets=("12345", "12351"),
        shards=amqp.shards,
        retry_delays_s=tuple(amqp.retry_delays_s),
        delivery_limit=amqp.delivery_limit,
    )


@dataclass
class Node:
    """A running bridge node: the runtime state the CLI, admin API and tests look at."""

    settings: Settings
    store: Store
    transport: Transport
    sides: dict[str, Side]
    appliers: dict[str, Applier]
    pollers: list[Poller]
    relay: OutboxRelay
    node_id: str
    supervisor: Supervisor
    reconciler: Reconciler | None = None
    sla: SlaWatch | None = None
    """The SLA watch; None when `[sla] enabled` is false."""
    paused: set[str] = field(default_factory=set)
    admin_url: str | None = None
    """Where the admin API listens (the port actually bound); None: `[admin]` disabled."""
    probe_interval_s: float = 2.0
    """Between two pings of a paused hotline: cheap (under 1 % of 12345's budget) and
    short, so that a recovery is noticed within seconds, not at a back-off step later."""
    metrics: EngineMetrics = field(default_factory=EngineMetrics)
    """The engine's counters (actions, retries, parked), exposed by `/metrics`."""

    def spawn(self, name: str, factory: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Run a background task under the node's supervisor (restarted if it crashes)."""
        self.supervisor.spawn(name, factory)

    async def pause_target(self, system: str) -> None:
        """A hotline is unavailable: stop consuming its queues (no attempts spent) and
        probe it until it answers again."""
        if system in self.paused:
            return
        self.paused.add(system)
        await self.transport.pause(system)
        log.warning("upstream.unavailable", system=system, consumers="paused")
        self.spawn(f"probe.{system}", functools.partial(self._probe, system))

    async def _probe(self, system: str) -> None:
        """Ping after 0.5 s, then 1 s, then every `probe_interval_s` (the rate budget is
        shared with everything else) until the hotline answers, then resume its
        consumers; a resume that fails (the broker channel is being restored) is tried
        again, so a target never stays paused after its hotline is back. What waited goes
        within seconds of the recovery."""
        delay = self.probe_interval_s / 4  # a short run of errors often ends at once
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.probe_interval_s)
            try:
                await self.sides[system].hotline.ping()
            except AdapterError:
                continue
            try:
                await self.transport.resume(system)
            except Exception as exc:
                log.warning("consumers.resume_failed", system=system, error=type(exc).__name__)
                continue
            self.paused.discard(system)
            log.info("upstream.recovered", system=system, consumers="resumed")
            return


async def start_node(
    settings: Settings,
    stack: AsyncExitStack,
    *,
    retry_policy: RetryPolicy | None = None,
    clock: Clock = utc_now,
) -> Node:
    """Start every part of a node on `stack`; closing the stack stops it cleanly.
    `clock` is the node's time: the store stamps rows and judges leases by it, retention
    and the SLA watch judge their ages and deadlines by it (tests pass the simulators')."""
    settings.check()
    tables = MappingTables.from_config(settings.mapping or None)
    node_id = settings.bridge.node_id or f"{socket.gethostname()}:{os.getpid()}"

    session = await stack.enter_async_context(aiohttp.ClientSession())
    store = await Store.connect(settings.store.url, clock=clock)
    stack.push_async_callback(store.aclose)
    await record_tables(store, tables)  # events name them by version; replays read them
    metrics = EngineMetrics()
    sides = {s: build_side(s, settings, session, tables) for s in settings.bridge.sides}
    for side in sides.values():
        stack.push_async_callback(side.hotline.aclose)

    topology = topology_of(settings)
    transport = await Transport.connect(
        settings.amqp.url,
        topology,
        prefetch=settings.amqp.prefetch,
        concurrency=settings.amqp.concurrency,
        publish_timeout_s=settings.amqp.publish_timeout_s,
        connection_name=f"hotline-bridge {node_id}",
    )
    stack.push_async_callback(transport.aclose)
    await transport.declare()

    relay = OutboxRelay(
        store=store,
        transport=transport,
        policy=RelayPolicy.from_config(settings.store),
        metrics=metrics,
    )
    supervisor = Supervisor(crash_exit_after_s=settings.bridge.crash_exit_after_s)
    node = Node(
        settings, store, transport, sides, {}, [], relay, node_id, supervisor, metrics=metrics
    )
    stack.push_async_callback(supervisor.aclose)

    policy = retry_policy or RetryPolicy(deadline_s=settings.bridge.attempt_timeout_s)
    for system, side in sides.items():
        applier = Applier(
            store=store,
            hotline=side.hotline,
            policy=side.apply,
            retry_policy=policy,
            on_unavailable=node.pause_target,
            metrics=metrics,
        )
        node.appliers[system] = applier
        await transport.consume(system, applier.handle)
    await transport.drain_parking(_parking_to_store(store, metrics))

    node.reconciler = Reconciler(
        store=store,
        sides=sides,
        topology=topology,
        partner=PARTNER,
        node_id=node_id,
        interval_s=settings.bridge.reconcile_interval_s,
        window_s=settings.bridge.reconcile_window_s,
        rate_share=settings.bridge.reconcile_rate_share,
        on_recorded=relay.kick,
        metrics=metrics,
    )
    node.spawn("relay", relay.run)
    retention = Retention(
        store=store, policy=RetentionPolicy.from_config(settings.store), clock=clock
    )
    node.spawn("retention", retention.run)
    node.spawn("reconciler", node.reconciler.run)
    if settings.sla.enabled:
        node.sla = SlaWatch(
            store=store, config=settings.sla, node_id=node_id, systems=set(sides), clock=clock
        )
        node.spawn("sla", node.sla.run)
    for system, side in sides.items():
        for feed in side.hotline.feeds:
            poller = Poller(
                store=store,
                hotline=side.hotline,
                feed=feed,
                policy=side.intake,
                topology=topology,
                target=PARTNER[system],
                interval_s=settings.bridge.poll_interval_s,
                busy_interval_s=settings.bridge.poll_busy_interval_s,
                max_backoff_s=settings.bridge.poll_max_backoff_s,
                on_recorded=relay.kick,
                metrics=metrics,
            )
            node.pollers.append(poller)
            node.spawn(poller.name, poller.run)
    node.admin_url = await serve_admin(node, stack, PARTNER)
    log.info("node.started", node_id=node_id, sides=list(sides), admin=node.admin_url)
    return node


def _parking_to_store(
    store: Store, metrics: EngineMetrics
) -> Callable[[Delivery], Coroutine[Any, Any, None]]:
    """Messages the broker parked (over the delivery limit, ladder exhausted) become
    dead letters in the store, where an admin sees and replays them."""

    async def park(delivery: Delivery) -> None:
        async with store.begin() as tx:
            await tx.park(
                DeadLetterIn(
                    system=delivery.target or "unknown",
                    stage="transport",
                    reason=delivery.park_reason or "parked by the transport",
                    payload={
                        "message_id": delivery.message_id,
                        "routing_key": delivery.routing_key,
                        "body": delivery.body.decode("utf-8", "replace"),
                    },
                    referral_id=delivery.referral_id,
                    attempts=delivery.attempt + 1,
                )
            )
        # the bridge's reason: its retry ladder ended; none: the broker's delivery limit
        bridge_parked = PARK_REASON_HEADER in delivery.headers
        metrics.park(
            delivery.target or "unknown",
            "transport",
            "retries_exhausted" if bridge_parked else "delivery_limit",
        )
        log.warning("message.parked", message_id=delivery.message_id)

    return park
