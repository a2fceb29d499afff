"""Baseline (a): what aio-pika alone does on the bridge's queue type.

N persistent messages are published with publisher confirms, pipelined with a
bounded window of outstanding confirms, to one quorum queue declared with the
bridge's own work-queue arguments (single active consumer, delivery limit,
at-least-once dead-lettering, reject-publish), and consumed with one ack per
message under the given prefetch. Publishing and consuming overlap, as in the
bridge. The queue and exchange live in a throwaway namespace, deleted after.

    .venv/bin/python -m bench.raw_amqp [--n 5000] [--body-size 2048]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aio_pika

from bridge.transport.topology import Topology

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"


async def delete_throwaway(url: str, queue: str, exchange: str) -> None:
    """Delete a run's queue and exchange on a connection of its own, even after a failed
    run (whose connections may be gone): a bench leaves nothing on the broker."""
    try:
        connection = await aio_pika.connect(url, timeout=10)
        try:
            channel = await connection.channel()
            await channel.queue_delete(queue)
            await channel.exchange_delete(exchange)
        finally:
            await connection.close()
    except Exception as exc:
        print(f"could not delete {queue} / {exchange}: {exc!r}; delete them by hand")


@dataclass(frozen=True)
class BenchQueue:
    """A throwaway quorum queue with the bridge's work-queue arguments, bound to a topic
    exchange; published to on a confirming channel, consumed on a channel with the
    given prefetch, each on a connection of its own (one socket each, as the bridge)."""

    exchange: aio_pika.abc.AbstractExchange
    queue: aio_pika.abc.AbstractQueue
    routing_key: str


@contextlib.asynccontextmanager
async def throwaway_queue(url: str, prefix: str, prefetch: int) -> AsyncIterator[BenchQueue]:
    """A `BenchQueue` in a namespace of its own, deleted at exit even after a failure."""
    topology = Topology(f"{prefix}-{uuid.uuid4().hex[:8]}", targets=("bench",), shards=1)
    queue_name = topology.work_queue("bench", "normal", 0)
    routing_key = topology.binding_key("bench", "normal", 0)
    connection = await aio_pika.connect_robust(url)
    consumer_connection = await aio_pika.connect_robust(url)
    try:
        publish_channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        consume_channel = await consumer_connection.channel(publisher_confirms=False)
        await consume_channel.set_qos(prefetch_count=prefetch)
        exchange = await publish_channel.declare_exchange(
            topology.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await consume_channel.declare_queue(
            queue_name, durable=True, arguments=topology.work_queue_arguments()
        )
        await queue.bind(topology.exchange, routing_key)
        yield BenchQueue(exchange, queue, routing_key)
    finally:
        await consumer_connection.close()
        await connection.close()
        await delete_throwaway(url, queue_name, topology.exchange)


async def run_raw(
    url: str, n: int, body_size: int, prefetch: int, confirm_window: int
) -> dict[str, float | int]:
    """Publish n messages (confirmed, window-bounded) and consume them with acks.

    Returns the settings and `msgs_per_s` (n / time from first publish to last ack).
    """
    async with throwaway_queue(url, "bench-raw", prefetch) as bench:
        exchange, queue, routing_key = bench.exchange, bench.queue, bench.routing_key
        body = (b"x" * body_size)[:body_size]
        received = 0
        all_received = asyncio.Event()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            await message.ack()
            received += 1
            if received >= n:
                all_received.set()

        consumer_tag = await queue.consume(on_message)
        window = asyncio.Semaphore(confirm_window)
        pending: set[asyncio.Task[object]] = set()

        async def publish_one(i: int) -> None:
            try:
                await exchange.publish(
                    aio_pika.Message(
                        body,
                        message_id=str(i),
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key,
                    mandatory=True,
                )
            finally:
                window.release()

        started = time.perf_counter()
        for i in range(n):
            await window.acquire()
            task = asyncio.create_task(publish_one(i))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
        published_s = time.perf_counter() - started
        async with asyncio.timeout(120):
            await all_received.wait()
        total_s = time.perf_counter() - started
        await queue.cancel(consumer_tag)
    return {
        "n": n,
        "body_size": body_size,
        "prefetch": prefetch,
        "confirm_window": confirm_window,
        "publish_s": round(published_s, 3),
        "total_s": round(total_s, 3),
        "publish_msgs_per_s": round(n / published_s, 1),
        "msgs_per_s": round(n / total_s, 1),
    }


async def _sweep(url: str, n: int, body_size: int) -> None:
    results = []
    for window, prefetch in itertools.product((1, 16, 64, 256, 1024), (16, 64, 256)):
        result = await run_raw(url, n, body_size, prefetch, window)
        results.append(result)
        print(
            f"window={window:5d} prefetch={prefetch:4d}  "
            f"publish {result['publish_msgs_per_s']:8.0f} msg/s  "
            f"end-to-end {result['msgs_per_s']:8.0f} msg/s"
        )
    best = max(results, key=lambda r: r["msgs_per_s"])
    print(f"best: {best}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--body-size", type=int, default=2048)
    args = parser.parse_args()
    asyncio.run(_sweep(args.url, args.n, args.body_size))
