"""Broker trouble mid-stream: the node's AMQP connections are force-closed, or the
RabbitMQ app is stopped and started again, while a steady two-way flow runs through an
in-process node. The node reconnects by itself, its consumers come back (referrals that
start after the disruption complete too), and every effect happens exactly once."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import aio_pika
import pytest
from harness import (
    AMQP_URL,
    Flow,
    assert_exactly_once,
    delete_namespace,
    new_namespace,
    settings_for,
    start,
    wait_until,
)

from bridge.app import Node, topology_of
from bridge.demo import Simulators
from bridge.transport.probe import restart_app_until_healthy

PID = re.compile(r"<rabbit@[^>]+>")


async def rabbitmqctl(*args: str, timeout: float = 60.0) -> str:
    """Run `rabbitmqctl` without blocking the loop (the simulators and node run in it)."""
    proc = await asyncio.create_subprocess_exec(
        "rabbitmqctl",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"rabbitmqctl {' '.join(args)} timed out") from None
    if proc.returncode != 0:
        raise AssertionError(f"rabbitmqctl {' '.join(args)} failed: {err.decode()[:500]}")
    return out.decode()


async def node_connections(node_id: str) -> set[str]:
    """Pids of the broker connections this node opened (its connection_name)."""
    listing = await rabbitmqctl(
        "list_connections", "pid", "client_properties", "-q", "--no-table-headers"
    )
    name = f'"hotline-bridge {node_id}"'
    return {m.group(0) for line in listing.splitlines() if name in line if (m := PID.search(line))}


async def close_node_connections(node_id: str) -> set[str]:
    """Force-close this node's AMQP connections only (never other people's)."""
    pids = await node_connections(node_id)
    for pid in pids:
        await rabbitmqctl("close_connection", pid, "e2e: forced close")
    return pids


async def broker_answers() -> bool:
    try:
        connection = await aio_pika.connect(AMQP_URL, timeout=2)
    except Exception:
        return False
    await connection.close()
    return True


async def restore_broker() -> None:
    """`start_app` (idempotent), and the app restarted until it runs quorum queues again
    (`bridge.transport.probe`): RabbitMQ 3.10 has come back from `start_app` unable to."""
    await restart_app_until_healthy(AMQP_URL)
    await wait_until(broker_answers, 60, what="RabbitMQ answering on 5672")


async def consumers_back(node: Node) -> bool:
    """The node is connected and every work queue of its namespace has a consumer."""
    if not node.transport.connected:
        return False
    topology = topology_of(node.settings)
    wanted = {q for target in ("12345", "12351") for q in topology.work_queues(target)}
    try:
        listing = await rabbitmqctl("list_queues", "name", "consumers", "-q", "--no-table-headers")
    except AssertionError:
        return False
    consumers = dict(line.split("\t")[:2] for line in listing.splitlines() if "\t" in line)
    return all(int(consumers.get(q, "0")) >= 1 for q in wanted)


async def run_with_disruption(
    sims: Simulators, tmp_path: Path, disrupt: Callable[[Node], Awaitable[None]]
) -> None:
    """Flow through an in-process node; `disrupt(node)` mid-stream; then new referrals
    after it, convergence, exactly-once."""
    node_id = f"e2e-broker-{uuid.uuid4().hex[:8]}"
    settings = settings_for(sims, tmp_path, new_namespace(), node_id=node_id)
    flow = Flow(sims, seed=23)
    try:
        async with AsyncExitStack() as stack:
            node = await start(settings, stack)
            flow.start()
            await asyncio.sleep(2.5)
            await disrupt(node)
            await wait_until(lambda: consumers_back(node), 60, what="reconnected, consumers back")
            before = (len(flow.orders), len(flow.cases))
            await asyncio.sleep(2.5)  # new referrals after the disruption
            flow.producing = False
            assert len(flow.orders) > before[0] and len(flow.cases) > before[1], flow.summary()
            await wait_until(flow.done, 60, what=f"convergence: {flow.summary()}")
            assert_exactly_once(sims, flow)
            await flow.aclose()

            async def drained() -> bool:
                return (await node.store.stats())["outbox_backlog"] == 0

            await wait_until(drained, 10, what="the outbox published")
            stats = await node.store.stats()
            assert stats["dead_letters"]["parked"] == 0, stats  # nothing given up on
    finally:
        await flow.aclose()
        await delete_namespace(settings)


async def test_node_reconnects_after_its_connections_are_force_closed(
    sims: Simulators, tmp_path: Path
) -> None:
    async def force_close(node: Node) -> None:
        closed = await close_node_connections(node.node_id)
        assert closed, "the node's connection was not found on the broker"

        async def reconnected() -> bool:
            now = await node_connections(node.node_id)
            return bool(now) and not now & closed

        await wait_until(reconnected, 30, what="a new connection of the node")

    await run_with_disruption(sims, tmp_path, force_close)


@pytest.mark.broker_restart
async def test_node_rides_out_a_broker_restart(sims: Simulators, tmp_path: Path) -> None:
    async def restart(node: Node) -> None:
        try:
            await rabbitmqctl("stop_app", timeout=120)
            started = time.monotonic()
            await asyncio.sleep(4.0)  # the flow goes on at both hotlines meanwhile
            assert not node.transport.connected
        finally:
            await restore_broker()
        assert time.monotonic() - started >= 4.0

    await run_with_disruption(sims, tmp_path, restart)
