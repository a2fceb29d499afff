"""A deep broker check: can this broker run the bridge's queues right now?

A broker can accept connections and still be unable to run quorum queues: seen
here with RabbitMQ 3.10.8 after `rabbitmqctl stop_app` / `start_app`, where
every quorum queue declared afterwards failed (`noproc` of the quorum queue's
dead-letter supervisor) until the node was restarted. `round_trip()` declares a
throwaway quorum queue with the work queues' own arguments, publishes one
persistent message with confirm, consumes it and deletes the queue.

    python -m bridge.transport.probe [AMQP_URL]     # exit 0: fine, 1: not, with why
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid

import aio_pika

from bridge.transport.topology import Topology

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"


PROBE_TARGETS = ("probe",)
"""The throwaway target of a probe's queue (no partner's)."""

class ProbeFailed(Exception):
    """The broker cannot run a quorum queue round trip; the message says where it failed."""


async def round_trip(
    url: str = DEFAULT_URL, *, timeout_s: float = 15.0, namespace: str | None = None
) -> None:
    """Declare, publish (confirmed), consume and delete a throwaway quorum queue (in
    `namespace`, default a fresh `hb-probe-…`)."""
    topology = Topology(namespace=namespace or new_namespace(), targets=PROBE_TARGETS)
    name = topology.work_queue(topology.targets[0], "normal", 0)
    step = "connect"
    try:
        async with asyncio.timeout(timeout_s):
            connection = await aio_pika.connect(url, timeout=timeout_s)
            try:
                step = "declare a quorum queue"
                channel = await connection.channel(publisher_confirms=True)
                # Its own parking exchange: a dead-letter exchange is what starts the
                # queue's dead-letter worker, the part seen failing after a restart.
                await channel.declare_exchange(topology.parking, aio_pika.ExchangeType.FANOUT)
                arguments = topology.work_queue_arguments()
                queue = await channel.declare_queue(name, durable=True, arguments=arguments)
                step = "publish with confirm"
                message = aio_pika.Message(b"probe", delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
                await channel.default_exchange.publish(message, routing_key=name)
                step = "consume it"
                await _consume_one(queue)
            finally:
                with contextlib.suppress(Exception):
                    await connection.close()
    except Exception as exc:
        raise ProbeFailed(f"{step}: {type(exc).__name__}: {exc}") from exc
    finally:
        if step != "connect":  # something may have been declared
            await _delete(url, topology)


def new_namespace() -> str:
    return f"hb-probe-{uuid.uuid4().hex[:10]}"


async def _consume_one(queue: aio_pika.abc.AbstractQueue) -> None:
    got: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await message.ack()
        if not got.done():
            got.set_result(None)

    tag = await queue.consume(on_message)
    try:
        await got
    finally:
        await queue.cancel(tag)


async def _delete(url: str, topology: Topology) -> None:
    """Delete the probe's queue and exchange on a connection of its own: the probe's
    may have been closed by the very failure it found."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(10):
            connection = await aio_pika.connect(url, timeout=5)
            try:
                channel = await connection.channel()
                await channel.queue_delete(topology.work_queue(topology.targets[0], "normal", 0))
                await channel.exchange_delete(topology.parking)
            finally:
                await connection.close()


async def restart_app_until_healthy(
    url: str = DEFAULT_URL, *, attempts: int = 3, rabbitmqctl: str = "rabbitmqctl"
) -> None:
    """`rabbitmqctl start_app` (idempotent), then probe; while the probe fails, restart
    the app (`stop_app` + `start_app`) and probe again. For tests and ops scripts that
    stop the local broker: they must leave it able to run quorum queues. Raises
    `ProbeFailed` after `attempts` restarts."""
    await _ctl(rabbitmqctl, "start_app")
    failed: list[str] = []  # probes that failed may have left their queue behind
    for attempt in range(attempts + 1):
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            namespace = new_namespace()
            try:
                await round_trip(url, timeout_s=10, namespace=namespace)
                for leftover in failed:  # the broker works again: now they can go
                    await _delete(url, Topology(namespace=leftover, targets=PROBE_TARGETS))
                return
            except ProbeFailed as exc:
                failure = exc
                failed.append(namespace)
                if "connect" not in str(exc).split(":")[0]:
                    break  # it answers but cannot run a quorum queue: restart the app
                if asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.5)  # still starting
        if attempt < attempts:
            await _ctl(rabbitmqctl, "stop_app")
            await _ctl(rabbitmqctl, "start_app")
    raise failure


async def _ctl(rabbitmqctl: str, *args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        rabbitmqctl, *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    if proc.returncode != 0:
        raise ProbeFailed(f"rabbitmqctl {' '.join(args)}: {err.decode(errors='replace')}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    url = args[0] if args else DEFAULT_URL
    try:
        asyncio.run(round_trip(url))
    except ProbeFailed as exc:
        print(f"RabbitMQ cannot run a quorum queue round trip: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
