"""The composition root: builds a node from its settings, owns start and stop.

Start order: HTTP session → store → adapters → broker (topology) → consumers (appliers)
→ outbox relay → reconciler → SLA watch → pollers → admin API; torn down in reverse by
one `AsyncExitStack`.
This is the only module that names concrete partners: each kind is registered here, once
(`bridge.partners`); everything else takes the partners of the deployment from the
registry. A new partner kind is an `adapters/<kind>/` package, its kind module under
`bridge/partners/`, and one `register()` line below (docs/partners.md).
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

from adapters.errors import AdapterError
from adapters.retry import RetryPolicy
from bridge import partners
from bridge.admin import serve_admin
from bridge.config import Settings
from bridge.engine.applier import Applier
from bridge.engine.metrics import EngineMetrics
from bridge.engine.poller import Poller
from bridge.engine.relay import OutboxRelay, RelayPolicy
from bridge.engine.retention import Retention, RetentionPolicy
from bridge.engine.sla import SlaWatch
from bridge.engine.versions import record_tables
from bridge.mapping import MappingTables
from bridge.partners import Deployment, Side, SideContext
from bridge.partners.hotline12345 import KIND as KIND_12345
from bridge.partners.hotline12351 import KIND as KIND_12351
from bridge.partners.open311 import KIND as KIND_OPEN311
from bridge.reconcile import Reconciler
from bridge.store import Clock, DeadLetterIn, Store, utc_now
from bridge.supervisor import Supervisor
from bridge.transport import Delivery, Topology, Transport
from bridge.transport.delivery import PARK_REASON_HEADER

log = structlog.get_logger(__name__)

partners.register(KIND_12345)
partners.register(KIND_12351)
partners.register(KIND_OPEN311)


def build_side(
    system: str,
    settings: Settings,
    session: aiohttp.ClientSession,
    tables: MappingTables,
    deployment: Deployment | None = None,
) -> Side:
    """The side of partner `system` (its kind's adapter and policies)."""
    deployment = deployment or settings.deployment()
    partner = deployment.partners[system]
    if partner.config is None:
        raise ValueError(f"no config section for partner {system!r}")
    ctx = SideContext(
        system, partner.config, settings, session, tables, deployment, topology_of(settings)
    )
    return partner.kind.build_side(ctx)


def topology_of(settings: Settings) -> Topology:
    """Work queues for every partner of the deployment (`[bridge] partners`), so that a
    node can route to a partner another node runs."""
    amqp = settings.amqp
    return Topology(
        namespace=amqp.namespace,
        targets=settings.deployment(require_sides=False).names,
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
    deployment: Deployment | None = None
    """Every partner of the deployment; None: read from `settings` when asked."""

    @property
    def partners(self) -> Deployment:
        if self.deployment is None:
            self.deployment = self.settings.deployment(require_sides=False)
        return self.deployment

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
    deployment = settings.deployment()
    tables = MappingTables.from_config(settings.mapping or None)
    node_id = settings.bridge.node_id or f"{socket.gethostname()}:{os.getpid()}"

    session = await stack.enter_async_context(aiohttp.ClientSession())
    store = await Store.connect(settings.store.url, clock=clock)
    stack.push_async_callback(store.aclose)
    await record_tables(store, tables)  # events name them by version; replays read them
    metrics = EngineMetrics()
    sides = {s: build_side(s, settings, session, tables, deployment) for s in settings.bridge.sides}
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
        settings,
        store,
        transport,
        sides,
        {},
        [],
        relay,
        node_id,
        supervisor,
        metrics=metrics,
        deployment=deployment,
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
        systems=deployment.names,
        routes=deployment.routes(),
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
            store=store,
            config=settings.sla,
            node_id=node_id,
            systems=set(sides),
            rules=deployment.deadline_rules(),
            clock=clock,
        )
        node.spawn("sla", node.sla.run)
    for side in sides.values():
        for feed in side.hotline.feeds:
            poller = Poller(
                store=store,
                hotline=side.hotline,
                feed=feed,
                policy=side.intake,
                topology=topology,
                interval_s=side.poll_interval_s or settings.bridge.poll_interval_s,
                busy_interval_s=settings.bridge.poll_busy_interval_s,
                max_backoff_s=settings.bridge.poll_max_backoff_s,
                on_recorded=relay.kick,
                metrics=metrics,
            )
            node.pollers.append(poller)
            node.spawn(poller.name, poller.run)
    node.admin_url = await serve_admin(node, stack)
    if len(deployment.partners) < 2:
        # a referral crosses between two partners: this node can route nothing anywhere
        log.warning("deployment.single_partner", partners=list(deployment.names))
    log.info(
        "node.started",
        node_id=node_id,
        sides=list(sides),
        partners=list(deployment.names),
        admin=node.admin_url,
    )
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
