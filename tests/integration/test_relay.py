"""The outbox relay against the real RabbitMQ on 127.0.0.1:5672 and a SQLite store.

Every test works in its own random namespace and deletes its topology (and any policy
it set) at the end. A broker that cannot be reached fails the tests; they never skip.
Transient failures are real ones: a broker policy of ``max-length: 1`` on one work queue
(declared with ``x-overflow: reject-publish``) makes the broker nack publishes to it
once it is full, until a consumer drains it. (RabbitMQ 3.10: a channel once rejected
stays rejected until the queue drops below its limit; clearing the policy alone does
not unblock it.)
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import pytest

from bridge.engine.relay import OutboxRelay, RelayPolicy
from bridge.engine.replay import replay_dead_letter
from bridge.store import OutboxMessage, Store
from bridge.transport import PublishError, Topology, Transport

AMQP_URL = os.environ.get("BRIDGE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
PERSONAL = "张三 13800138000 朝阳区建国路88号"  # must never reach a dead letter's reason


@pytest.fixture
async def topology() -> AsyncIterator[Topology]:
    return Topology(
        f"test-relay-{uuid.uuid4().hex[:10]}",
        targets=("12345", "12351"),
        shards=2,
        retry_delays_s=(1,),
    )


@pytest.fixture
async def transport(topology: Topology) -> AsyncIterator[Transport]:
    try:
        transport = await Transport.connect(AMQP_URL, topology, publish_timeout_s=5.0)
    except Exception as exc:
        pytest.fail(f"RabbitMQ is not reachable at {AMQP_URL} ({exc!r})", pytrace=False)
    await transport.declare()
    yield transport
    try:
        async with asyncio.timeout(30):
            await transport.delete_topology()
    finally:
        await transport.aclose()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.connect(f"sqlite:///{tmp_path}/bridge.db")
    yield store
    await store.aclose()


def rabbitmqctl(*args: str) -> None:
    done = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"rabbitmqctl {args} failed: {done.stderr}"


@pytest.fixture
def full_queue(topology: Topology, transport: Transport) -> Iterator[str]:
    """Shard 0 of the 12351 normal queues nacks every publish while the policy is set;
    yields the name of the policy (the test may clear it earlier)."""
    name = f"{topology.namespace}-full"
    queue = topology.work_queue("12351", "normal", 0).replace(".", r"\.")
    rabbitmqctl("set_policy", "--apply-to", "queues", name, f"^{queue}$", '{"max-length":1}')
    try:
        yield name
    finally:
        subprocess.run(["rabbitmqctl", "clear_policy", name], capture_output=True, timeout=60)


async def depth(topology: Topology, target: str = "12351") -> int:
    """Messages ready in a target's work queues, seen from a connection of its own."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        total = 0
        for name in topology.work_queues(target):
            queue = await channel.declare_queue(name, passive=True)
            total += queue.declaration_result.message_count or 0
        return total


async def message_ids(queue_name: str, settle_s: float = 1.0) -> list[str]:
    """The ids of the messages in a queue, read by a consumer that acks none of them
    (they go back when its connection closes; quorum queues with single active consumer
    allow no basic.get)."""
    ids: list[str] = []
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)

        async def take(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            ids.append(message.message_id or "")

        await queue.consume(take)
        await asyncio.sleep(settle_s)
    return ids


async def consume_all(queue_name: str, settle_s: float = 1.0) -> None:
    """Consume and ack whatever is in a queue."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)

        async def ack(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await message.ack()

        await queue.consume(ack)
        await asyncio.sleep(settle_s)


async def eventually(check, timeout_s: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"condition not met within {timeout_s}s"
        await asyncio.sleep(0.1)


async def wait_until_full(topology: Topology, transport: Transport, full: bool = True) -> None:
    """Probe the full queue until the broker nacks (or, ``full=False``, confirms): a
    policy takes a moment to reach the queue, and a quorum queue rejects only once it
    is over its limit."""

    async def probe() -> bool:
        try:
            key = topology.binding_key("12351", "normal", 0)
            await transport.publish(key, b"probe", message_id="probe", headers={})
        except PublishError:
            return full
        return not full

    await eventually(probe)


def snapshot(
    topology: Topology, referral_id: str, n: int, routing_key: str | None = None
) -> OutboxMessage:
    body = f'{{"referral_id": "{referral_id}", "n": {n}, "caller": "{PERSONAL}"}}'.encode()
    return OutboxMessage(
        referral_id=referral_id,
        routing_key=routing_key or topology.routing_key("12351", referral_id, False),
        body=body,
        headers={"message_id": f"{referral_id}:{n}"},
    )


def referral_on_shard(topology: Topology, shard: int, tag: str) -> str:
    return next(
        f"12345:{tag}{i}" for i in range(1000) if topology.shard_of(f"12345:{tag}{i}") == shard
    )


async def drain(relay: OutboxRelay, store: Store) -> None:
    """Relay until nothing is pending (messages in back-off are not pending)."""

    async def empty() -> bool:
        await relay.relay_once()
        return not await store.outbox_pending(1)

    await eventually(empty)


async def test_unroutable_message_is_parked_and_the_rows_behind_it_are_published(
    topology: Topology, transport: Transport, store: Store
) -> None:
    """200 unroutable messages (the relay's whole batch) no longer stall the 250 behind
    them; each is parked once with its routing key and why, and a replay delivers it."""
    unroutable = "to.12351.normal.99"  # no queue binds shard 99
    async with store.begin() as tx:
        for n in range(200):
            await tx.enqueue(snapshot(topology, f"12345:BAD{n}", n, unroutable))
        for n in range(250):
            await tx.enqueue(snapshot(topology, f"12345:OK{n}", n))
    relay = OutboxRelay(store=store, transport=transport, batch=200)

    await drain(relay, store)

    assert relay.published == 250
    await eventually(lambda: _equals(depth(topology), 250))
    letters = await store.list_dead_letters(stage="publish", limit=500)
    assert len(letters) == 200 == relay.parked
    first = letters[0]
    assert first.status == "parked" and first.system == "12351"
    assert first.referral_id == "12345:BAD0" and first.field == "routing_key"
    assert "unroutable" in first.reason and repr(unroutable) in first.reason
    assert all(PERSONAL not in d.reason and "caller" not in d.reason for d in letters)
    assert [e.kind for e in await store.timeline("12345:BAD0")] == ["parked"]

    outcome = await replay_dead_letter(store, first.id, intake={}, topology=topology)
    assert outcome == "message queued again"
    (again,) = await store.outbox_pending(10)
    assert again.routing_key == topology.routing_key("12351", "12345:BAD0", False)
    assert again.body == snapshot(topology, "12345:BAD0", 0).body
    assert again.headers == {"message_id": "12345:BAD0:0"}
    await drain(relay, store)
    await eventually(lambda: _equals(depth(topology), 251))
    assert (await store.get_dead_letter(first.id)).status == "replayed"  # type: ignore[union-attr]


async def test_nacked_message_backs_off_without_holding_up_others_then_is_published(
    topology: Topology, transport: Transport, store: Store, full_queue: str
) -> None:
    await wait_until_full(topology, transport)
    stuck, free = referral_on_shard(topology, 0, "S"), referral_on_shard(topology, 1, "F")
    async with store.begin() as tx:
        await tx.enqueue(snapshot(topology, stuck, 1))
        await tx.enqueue(snapshot(topology, free, 1))
    policy = RelayPolicy(max_attempts=20, retry_initial_s=0.3, retry_max_s=0.6)
    relay = OutboxRelay(store=store, transport=transport, batch=1, policy=policy)

    assert await relay.relay_once() == 0  # the stuck one, nacked: deferred
    assert await relay.relay_once() == 1  # the one behind it is not held up
    assert await store.outbox_pending(10) == []  # in back-off: not fetched
    await asyncio.sleep(0.35)
    (due,) = await store.outbox_pending(10)
    assert (due.referral_id, due.attempts) == (stuck, 1)

    await consume_all(topology.work_queue("12351", "normal", 0))  # its consumer caught up
    rabbitmqctl("clear_policy", full_queue)
    await wait_until_full(topology, transport, full=False)
    await drain(relay, store)
    assert f"{stuck}:1" in await message_ids(topology.work_queue("12351", "normal", 0))
    assert await message_ids(topology.work_queue("12351", "normal", 1)) == [f"{free}:1"]
    assert await store.list_dead_letters() == []


async def test_message_failing_past_the_bound_is_parked_with_its_reason(
    topology: Topology, transport: Transport, store: Store, full_queue: str
) -> None:
    await wait_until_full(topology, transport)
    stuck = referral_on_shard(topology, 0, "S")
    async with store.begin() as tx:
        row_id = await tx.enqueue(snapshot(topology, stuck, 1))
    policy = RelayPolicy(max_attempts=3, retry_initial_s=0.1, retry_max_s=0.2)
    relay = OutboxRelay(store=store, transport=transport, policy=policy)

    async def parked_once() -> bool:
        await relay.relay_once()
        return relay.parked == 1

    await eventually(parked_once)

    (parked,) = await store.list_dead_letters(stage="publish")
    assert (parked.referral_id, parked.attempts, parked.field) == (stuck, 3, None)
    assert parked.reason == (
        f"outbox message {row_id} to routing key "
        f"{topology.routing_key('12351', stuck, False)!r} was not confirmed in 3 attempts "
        "(last: nacked)"
    )
    assert (await store.stats())["outbox_backlog"] == 0


async def _equals(value, expected: int) -> bool:  # type: ignore[no-untyped-def]
    return await value == expected
