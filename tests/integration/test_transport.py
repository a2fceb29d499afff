"""The AMQP transport against the real RabbitMQ on 127.0.0.1:5672.

Every test works in its own random namespace and deletes its topology at the
end. A broker that cannot be reached fails the tests; they never skip.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable

import aio_pika
import pytest
from structlog.testing import capture_logs

from bridge.transport import (
    Delivery,
    Outcome,
    PublishError,
    PublishFailure,
    Topology,
    TopologyError,
    Transport,
    Verdict,
)
from bridge.transport.probe import ProbeFailed, restart_app_until_healthy, round_trip

AMQP_URL = os.environ.get("BRIDGE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
TransportFactory = Callable[..., Awaitable[Transport]]


def new_topology(**overrides: object) -> Topology:
    settings: dict = {
        "targets": ("12345", "12351"),
        "shards": 4,
        "retry_delays_s": (1,),
        "delivery_limit": 20,
        "version": "v1",
    }
    settings.update(overrides)
    return Topology(f"test-{uuid.uuid4().hex[:10]}", **settings)


async def eventually(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.02)


async def queue_depth(name: str) -> int:
    """Messages ready in a queue, seen from a connection of its own."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        return queue.declaration_result.message_count or 0


def rabbitmqctl(*args: str, timeout_s: float = 60) -> str:
    done = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=timeout_s, check=False
    )
    assert done.returncode == 0, f"rabbitmqctl {args} failed: {done.stderr}"
    return done.stdout


def close_connections(connection_name: str) -> int:
    """Force-close (server side, like `close_all_connections "test"`) our connections only.

    Other engineers' tests may share this broker, so we do not close all of them.
    """
    listing = rabbitmqctl("list_connections", "pid", "client_properties", "-q")
    pids = [line.split("\t")[0] for line in listing.splitlines() if connection_name in line]
    for pid in pids:
        rabbitmqctl("close_connection", pid, "test")
    return len(pids)


@pytest.fixture
async def broker() -> str:
    try:
        connection = await asyncio.wait_for(aio_pika.connect(AMQP_URL), 5)
    except Exception as exc:
        pytest.fail(
            f"RabbitMQ is not reachable at {AMQP_URL} ({exc!r}); these integration "
            "tests need a running broker (set BRIDGE_TEST_AMQP_URL to point elsewhere)",
            pytrace=False,
        )
    await connection.close()
    return AMQP_URL


@pytest.fixture
async def connect(broker: str) -> AsyncIterator[TransportFactory]:
    """Connect and declare transports; delete their topology and close them at the end."""
    made: list[Transport] = []

    async def make(
        topology: Topology | None = None, *, declare: bool = True, **options: object
    ) -> Transport:
        settings: dict = {
            "prefetch": 16,
            "publish_timeout_s": 5.0,
            "reconnect_interval_s": 0.5,
            "shutdown_timeout_s": 2.0,
        }
        settings.update(options)
        transport = await Transport.connect(broker, topology or new_topology(), **settings)
        made.append(transport)
        if declare:
            await transport.declare()
        return transport

    yield make
    for transport in reversed(made):
        try:
            async with asyncio.timeout(30):
                await transport.delete_topology()
        finally:
            await transport.aclose()


def recorder() -> tuple[list[Delivery], Callable[[Delivery], Awaitable[Outcome]]]:
    seen: list[Delivery] = []

    async def handler(delivery: Delivery) -> Outcome:
        seen.append(delivery)
        return Outcome.ACK

    return seen, handler


async def test_declare_is_idempotent_and_refuses_changed_arguments(
    connect: TransportFactory,
) -> None:
    topology = new_topology()
    transport = await connect(topology)
    await transport.declare()
    again = await connect(topology)  # a second replica declaring the same layout
    assert await again.ping()
    changed = Topology(
        topology.namespace, targets=topology.targets, delivery_limit=5, retry_delays_s=(1,)
    )
    other_replica = await connect(changed, declare=False)
    with pytest.raises(TopologyError):  # queue arguments are fixed once declared
        await other_replica.declare()


async def test_publish_then_consume_acks(connect: TransportFactory) -> None:
    transport = await connect()
    seen, handler = recorder()
    await transport.consume("12351", handler)
    await transport.publish_snapshot(
        "12351", "R-1", False, b'{"v": 1}', "m-1", headers={"x-schema": "referral/1"}
    )
    await eventually(lambda: len(seen) == 1)
    delivery = seen[0]
    assert delivery.body == b'{"v": 1}'
    assert delivery.message_id == "m-1"
    assert delivery.routing_key == transport.topology.routing_key("12351", "R-1", False)
    assert (delivery.target, delivery.early_warning, delivery.referral_id) == (
        "12351",
        False,
        "R-1",
    )
    assert delivery.attempt == 0 and not delivery.redelivered
    assert delivery.headers["x-schema"] == "referral/1"
    shard = transport.topology.shard_of("R-1")
    await asyncio.sleep(0.2)
    assert await queue_depth(transport.topology.work_queue("12351", "normal", shard)) == 0


async def test_unroutable_publish_raises_publish_error(connect: TransportFactory) -> None:
    transport = await connect()
    with pytest.raises(PublishError) as raised:
        await transport.publish("to.nowhere.normal.0", b"{}", message_id="m-x")
    assert raised.value.reason is PublishFailure.RETURNED
    # The channel is still usable afterwards.
    await transport.publish_snapshot("12345", "R-2", False, b"{}", "m-2")


async def test_retry_goes_through_retry_queue_back_to_its_shard(connect: TransportFactory) -> None:
    transport = await connect()
    shard = transport.topology.shard_of("R-retry")
    seen: list[tuple[float, Delivery]] = []

    async def handler(delivery: Delivery) -> Outcome | Verdict:
        seen.append((time.monotonic(), delivery))
        return Verdict.retry("upstream 503") if delivery.attempt == 0 else Outcome.ACK

    with capture_logs() as logs:
        await transport.consume("12345", handler, shards=(shard,))  # only that shard's queues
        await transport.publish_snapshot("12345", "R-retry", False, b"{}", "m-r")
        await eventually(lambda: len(seen) == 2, timeout_s=10)
    (t0, first), (t1, second) = seen
    assert second.attempt == 1
    assert second.routing_key == first.routing_key
    assert second.message_id == "m-r"
    assert second.headers["x-bridge-retry-reason"] == "upstream 503"
    assert t1 - t0 >= 0.9
    assert any(e["event"] == "retry.scheduled" and e["delay_s"] == 1 for e in logs)


async def test_exhausted_ladder_parks_and_exception_counts_as_retry(
    connect: TransportFactory,
) -> None:
    transport = await connect()
    attempts: list[int] = []
    parked: list[Delivery] = []

    async def failing(delivery: Delivery) -> Outcome:
        attempts.append(delivery.attempt)
        raise RuntimeError("adapter blew up")

    async def store(delivery: Delivery) -> None:
        parked.append(delivery)

    await transport.consume("12351", failing)
    await transport.drain_parking(store)
    await transport.publish_snapshot("12351", "R-doomed", False, b"{}", "m-d")
    await eventually(lambda: len(parked) == 1, timeout_s=10)
    assert attempts == [0, 1]
    assert parked[0].message_id == "m-d"
    assert parked[0].park_reason == (
        "retry ladder exhausted after 1 retries: RuntimeError: adapter blew up"
    )
    await asyncio.sleep(0.2)
    assert await queue_depth(transport.topology.parking) == 0  # acked once stored


async def test_park_lands_in_parking_with_reason(connect: TransportFactory) -> None:
    transport = await connect()
    parked: list[Delivery] = []

    async def refuse(delivery: Delivery) -> Verdict:
        return Verdict.park("loop: sourceSystem 12351 dispatched to the union")

    async def store(delivery: Delivery) -> None:
        parked.append(delivery)

    await transport.consume("12345", refuse)
    await transport.publish_snapshot("12345", "R-loop", True, b'{"x": 1}', "m-p")
    await transport.drain_parking(store)
    await eventually(lambda: len(parked) == 1)
    assert parked[0].park_reason == "loop: sourceSystem 12351 dispatched to the union"
    assert parked[0].body == b'{"x": 1}'
    assert parked[0].early_warning and parked[0].referral_id == "R-loop"


async def test_over_delivery_limit_is_dead_lettered_to_parking(connect: TransportFactory) -> None:
    """The broker itself parks a message returned more often than x-delivery-limit."""
    transport = await connect(new_topology(delivery_limit=1))
    parked: list[Delivery] = []

    async def store(delivery: Delivery) -> None:
        parked.append(delivery)

    await transport.drain_parking(store)
    await transport.publish_snapshot("12345", "R-poison", False, b"{}", "m-poison")
    name = transport.topology.work_queue("12345", "normal", transport.topology.shard_of("R-poison"))
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:  # a misbehaving consumer: requeues, which the bridge never does
        queue = await (await connection.channel()).get_queue(name)

        async def requeue(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await message.nack(requeue=True)

        await queue.consume(requeue)
        await eventually(lambda: len(parked) == 1)
    assert parked[0].park_reason == "dead-lettered by the broker: delivery_limit"


async def test_per_shard_order_is_preserved(connect: TransportFactory) -> None:
    transport = await connect()
    by_shard: dict[int, list[str]] = defaultdict(list)

    async def handler(delivery: Delivery) -> Outcome:
        await asyncio.sleep(0.001 * (hash(delivery.message_id) % 3))
        by_shard[int(delivery.routing_key.rsplit(".", 1)[1])].append(delivery.message_id)
        return Outcome.ACK

    await transport.consume("12351", handler)
    published: dict[int, list[str]] = defaultdict(list)
    for i in range(200):
        referral = f"R-{i % 13}"
        await transport.publish_snapshot("12351", referral, False, b"{}", f"m-{i}")
        published[transport.topology.shard_of(referral)].append(f"m-{i}")
    await eventually(lambda: sum(map(len, by_shard.values())) == 200)
    assert dict(by_shard) == dict(published)
    assert len(published) > 1


async def test_with_concurrency_one_referral_in_order_and_a_slow_one_blocks_no_other(
    connect: TransportFactory,
) -> None:
    """The node's setting: referrals of one shard side by side, each in its order."""
    transport = await connect(new_topology(shards=1), concurrency=8)
    release = asyncio.Event()
    by_referral: dict[str, list[str]] = defaultdict(list)

    async def handler(delivery: Delivery) -> Outcome:
        if delivery.referral_id == "R-slow":
            await release.wait()
        await asyncio.sleep(0.001 * (hash(delivery.message_id) % 3))
        by_referral[delivery.referral_id or ""].append(delivery.message_id)
        return Outcome.ACK

    await transport.consume("12351", handler)
    published: dict[str, list[str]] = defaultdict(list)
    await transport.publish_snapshot("12351", "R-slow", False, b"{}", "m-slow")
    published["R-slow"].append("m-slow")
    for i in range(120):
        referral = f"R-{i % 7}"
        await transport.publish_snapshot("12351", referral, False, b"{}", f"m-{i}")
        published[referral].append(f"m-{i}")
    # everything but the slow referral goes through while it is held up
    await eventually(lambda: sum(map(len, by_referral.values())) == 120)
    assert "R-slow" not in by_referral
    release.set()
    await eventually(lambda: sum(map(len, by_referral.values())) == 121)
    assert dict(by_referral) == dict(published)


async def test_alert_traffic_flows_while_normal_handler_is_blocked(
    connect: TransportFactory,
) -> None:
    transport = await connect()
    release = asyncio.Event()
    handled: list[str] = []

    async def handler(delivery: Delivery) -> Outcome:
        if not delivery.early_warning:
            await release.wait()
        handled.append(delivery.message_id)
        return Outcome.ACK

    await transport.consume("12345", handler)
    await transport.publish_snapshot("12345", "R-7", False, b"{}", "normal-1")
    await transport.publish_snapshot("12345", "R-7", True, b"{}", "alert-1")
    await eventually(lambda: handled == ["alert-1"])
    release.set()
    await eventually(lambda: handled == ["alert-1", "normal-1"])


async def test_pause_spends_no_attempts_and_resume_delivers(connect: TransportFactory) -> None:
    transport = await connect()
    blocker = asyncio.Event()
    seen: list[Delivery] = []

    async def handler(delivery: Delivery) -> Outcome:
        seen.append(delivery)
        if delivery.message_id == "m-0":
            await blocker.wait()
        return Outcome.ACK

    await transport.consume("12351", handler, shards=(transport.topology.shard_of("R-p"),))
    for i in range(5):  # the first blocks; the others wait in the prefetch buffer
        await transport.publish_snapshot("12351", "R-p", False, b"{}", f"m-{i}")
    await eventually(lambda: len(seen) == 1)
    await transport.pause("12351")
    blocker.set()
    for i in range(5, 8):  # published while paused
        await transport.publish_snapshot("12351", "R-p", False, b"{}", f"m-{i}")
    await asyncio.sleep(0.5)
    assert [d.message_id for d in seen] == ["m-0"]
    await transport.resume("12351")
    await eventually(lambda: len(seen) == 8)
    assert [d.message_id for d in seen] == [f"m-{i}" for i in range(8)]
    assert all(d.attempt == 0 and "x-delivery-count" not in d.headers for d in seen)


async def test_server_side_consumer_cancel_resubscribes(connect: TransportFactory) -> None:
    """Deleting a consumed queue makes the broker send basic.cancel; the consumer comes back."""
    transport = await connect()
    seen, handler = recorder()
    await transport.consume("12345", handler)
    shard = transport.topology.shard_of("R-c")
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(transport.topology.work_queue("12345", "normal", shard))
    await asyncio.sleep(1.5)  # the queue is re-declared and re-bound, then consumed again
    await transport.publish_snapshot("12345", "R-c", False, b"{}", "after-cancel")
    await eventually(lambda: [d.message_id for d in seen] == ["after-cancel"], timeout_s=10)


async def test_consumers_restored_after_connections_closed_midstream(
    connect: TransportFactory,
) -> None:
    """At-least-once across a forced close with handlers in flight: no loss, duplicates counted."""
    name = f"test-transport-{uuid.uuid4().hex[:8]}"
    transport = await connect(connection_name=name)
    counts: Counter[str] = Counter()
    killed = asyncio.Event()

    async def handler(delivery: Delivery) -> Outcome:
        counts[delivery.message_id] += 1
        if len(counts) >= 50:
            await killed.wait()  # in flight, and more unacked behind, when the connection dies
        return Outcome.ACK

    await transport.consume("12351", handler)
    await transport.consume("12345", handler)
    publish_failures = 0

    async def publish(numbers: range) -> None:
        nonlocal publish_failures
        for i in numbers:
            target = ("12345", "12351")[i % 2]
            while True:
                try:
                    await transport.publish_snapshot(
                        target, f"R-{i % 17}", i % 5 == 0, b"{}", f"m-{i}"
                    )
                    break
                except PublishError:
                    publish_failures += 1

    with capture_logs() as logs:
        await publish(range(200))
        await eventually(lambda: len(counts) >= 50)
        assert await asyncio.to_thread(close_connections, name) == 1
        killed.set()
        await publish(range(200, 400))  # across the reconnect
        await eventually(lambda: set(counts) == {f"m-{i}" for i in range(400)}, timeout_s=30)
        await eventually(lambda: any(e["event"] == "amqp.reconnected" for e in logs))
    assert transport.connected
    duplicates = sum(counts.values()) - 400
    print(f"forced close: duplicates={duplicates} publish_failures={publish_failures}")
    assert any(e["event"] == "ack.failed" for e in logs)


async def test_ack_failing_after_reconnect_is_harmless(connect: TransportFactory) -> None:
    name = f"test-transport-{uuid.uuid4().hex[:8]}"
    transport = await connect(connection_name=name)
    release = asyncio.Event()
    seen: list[Delivery] = []

    async def handler(delivery: Delivery) -> Outcome:
        seen.append(delivery)
        if len(seen) == 1:
            await release.wait()  # in flight while the connection is killed
        return Outcome.ACK

    await transport.consume("12345", handler)
    with capture_logs() as logs:
        await transport.publish_snapshot("12345", "R-a", False, b"{}", "m-a")
        await eventually(lambda: len(seen) == 1)
        await asyncio.to_thread(close_connections, name)
        await eventually(
            lambda: transport.connected and any(e["event"] == "amqp.reconnected" for e in logs)
        )
        release.set()
        await eventually(lambda: len(seen) == 2)
    assert seen[1].message_id == "m-a" and seen[1].redelivered
    assert any(e["event"] == "ack.failed" for e in logs)


async def test_probe_round_trips_a_quorum_queue_and_leaves_nothing() -> None:
    """Nothing of this round trip stays behind (a probe that failed while the broker was
    broken is cleaned up by `restart_app_until_healthy` once it works again)."""
    namespace = f"hb-probe-{uuid.uuid4().hex[:10]}"

    def probe_queues() -> list[str]:
        listing = rabbitmqctl("list_queues", "name", "-q", "--no-table-headers")
        return [q for q in listing.split() if q.startswith(namespace)]

    await round_trip(AMQP_URL, namespace=namespace)
    assert probe_queues() == []


async def test_probe_says_which_step_failed() -> None:
    with pytest.raises(ProbeFailed, match=r"^connect: "):
        await round_trip("amqp://guest:guest@127.0.0.1:1/", timeout_s=5)


async def test_a_settle_that_raises_ends_in_parking_not_a_hung_message(
    connect: TransportFactory,
) -> None:
    """The retry exchange is gone (deleted under us): the retry copy cannot be published
    and settling fails. The message is given back, counted by the broker, and parked past
    the delivery limit: never left unacked until its channel closes."""
    transport = await connect(new_topology(delivery_limit=2))
    parked: list[Delivery] = []
    attempts: list[int] = []

    async def flaky(delivery: Delivery) -> Verdict:
        attempts.append(delivery.attempt)
        return Verdict.retry("upstream 500")

    async def store(delivery: Delivery) -> None:
        parked.append(delivery)

    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.exchange_delete(transport.topology.retry_name(1))
    await transport.drain_parking(store)
    await transport.consume("12345", flaky)
    await transport.publish_snapshot("12345", "R-unsettled", False, b"{}", "m-u")
    await eventually(lambda: len(parked) == 1, timeout_s=60)
    assert parked[0].message_id == "m-u"
    assert parked[0].park_reason == "dead-lettered by the broker: delivery_limit"
    assert len(attempts) == 3  # delivered, given back twice, then parked by the broker
    name = transport.topology.work_queue("12345", "normal", transport.topology.shard_of("R-u"))
    assert await queue_depth(name) == 0


# Last in this module: it stops the broker (the tests after it in the run are unit tests).
@pytest.mark.broker_restart
async def test_broker_restart_loses_nothing(connect: TransportFactory) -> None:
    transport = await connect()
    counts: Counter[str] = Counter()

    async def handler(delivery: Delivery) -> Outcome:
        counts[delivery.message_id] += 1
        return Outcome.ACK

    await transport.consume("12351", handler)
    for i in range(20):
        await transport.publish_snapshot("12351", f"R-{i}", False, b"{}", f"before-{i}")
    await eventually(lambda: len(counts) == 20)
    try:
        await asyncio.to_thread(rabbitmqctl, "stop_app")
        await eventually(lambda: not transport.connected, timeout_s=10)
        assert not await transport.ping()
    finally:
        # start_app, and restarted until it runs quorum queues again (bridge.transport.probe)
        await restart_app_until_healthy(AMQP_URL)
    await eventually(lambda: transport.connected, timeout_s=30)
    for i in range(20):
        await transport.publish_snapshot("12351", f"R-{i}", i % 2 == 0, b"{}", f"after-{i}")
    await eventually(lambda: len(counts) == 40, timeout_s=20)
    assert await transport.ping()


async def test_queue_depths_sum_a_targets_work_queues_and_none_without_them(
    connect: TransportFactory,
) -> None:
    transport = await connect()
    for n, early in enumerate((False, False, True)):
        await transport.publish_snapshot("12351", f"12345:BJ{n}", early, b"{}", f"m{n}")
    for _ in range(200):  # the broker counts a quorum queue's messages a moment later
        if await transport.queue_depths("12351") == 3:
            break
        await asyncio.sleep(0.05)
    assert await transport.queue_depths("12351") == 3
    assert await transport.queue_depths("12345") == 0
    undeclared = await connect(declare=False)
    assert await undeclared.queue_depths("12351") is None
    assert undeclared.connected  # a failed passive declaration closes only its own channel
