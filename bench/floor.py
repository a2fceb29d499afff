"""The interface floor: the least work the two hotline interfaces force on ANY bridge.

    .venv/bin/python bench/floor.py --n 1000 [--workers W] [--sims-process]

Whatever a bridge is built like, for each referral it has to read the record from its
source hotline, hand it over durably to whoever applies it (here: one persistent message
published with a confirm and consumed with an ack), and make the calls the target
hotline's interface requires. Phase (f) does only that: no store, no engine, no retries,
no logs. Its referrals/s is a ceiling for the bridge on this machine: if even the floor's
ratio to raw aio-pika is below the goal (0.5), no bridge reaches the goal here.

(a) Raw aio-pika, exactly as bench/e2e.py runs it (`bench.raw_amqp.run_raw` with the
    snapshot size, prefetch and confirm window read from the bridge's code), before and
    after (f); the better run is the baseline.
(f) The floor, with both simulators (rate limits off) and the real clients
    (`Client12345`, `Client12351`) on one aiohttp session, as the bridge builds them.
    N//2 orders dispatched by 12345 to the union and N - N//2 cases transferred by
    12351 agents to 12345 are recorded, then per referral:
    - read: the 12345 dispatched list / the 12351 case feed, in pages, through the
      adapters' own feed readers (as a poller reads; page costs are shared by a page's
      records), mapped to the canonical snapshot (`bridge.mapping`);
    - hand-over: the snapshot's JSON published persistent with a confirm (window: the
      outbox relay's batch) to one throwaway quorum queue with the bridge's work-queue
      arguments, consumed with one ack each (prefetch: the bridge's);
    - apply, by W concurrent workers (default: the bridge's consumers, shards × 2
      targets): an order → `POST /cases` at 12351 (body from `create_case_request`),
      then `sign` at 12345; a transferred case → `POST /orders` at 12345 (body from
      `create_order_request`), then the `external_ref` and `partner_update accepted`
      events at 12351.
    Clock: from the first record (in-process) or from the first read (`--sims-process`,
    where the records are made through the simulators' `/_sim` API beforehand) to the
    last target call of the last referral. Warm-up (12345 token, one call to each
    simulator) happens before the clock starts and is not counted.

`--sims-process` runs the simulators in a subprocess (`hotline-bridge simulate`) so that
their CPU is spent on the other core; the default runs them in this process, as e2e.py
does. The CPU time of this process during (f) is printed, and of the simulator
subprocess when there is one. The last line is `floor_ratio <(f) referrals/s / (a) msgs/s>`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/floor.py` from anywhere
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from types import SimpleNamespace  # noqa: E402
from typing import Any  # noqa: E402

import aio_pika  # noqa: E402
import aiohttp  # noqa: E402

from adapters.hotline12345.client import Client12345  # noqa: E402
from adapters.hotline12345.config import Hotline12345Config  # noqa: E402
from adapters.hotline12345.feed import FeedReader12345  # noqa: E402
from adapters.hotline12351.client import Client12351  # noqa: E402
from adapters.hotline12351.config import Hotline12351Config  # noqa: E402
from adapters.hotline12351.feed import CasesFeedReader  # noqa: E402
from adapters.hotline12351.sim.data import random_case  # noqa: E402
from bench.e2e import (  # noqa: E402
    Tracker,
    bridge_confirm_window,
    bridge_prefetch,
    load,
    process_cpu_s,
    snapshot_size,
)
from bench.raw_amqp import DEFAULT_URL, run_raw, throwaway_queue  # noqa: E402
from bridge.config import AmqpConfig  # noqa: E402
from bridge.demo import Simulators  # noqa: E402
from bridge.mapping import (  # noqa: E402
    MappingTables,
    case_to_referral,
    create_case_request,
    create_order_request,
    external_ref_for,
    order_to_referral,
    sign_request,
)
from bridge.transport.topology import Topology  # noqa: E402
from schemas.canonical import Referral  # noqa: E402
from schemas.hotline12345 import Order  # noqa: E402
from schemas.hotline12351 import Case, PartnerUpdateBody  # noqa: E402

# Credentials of the simulator subprocess (`--sims-process`).
CLIENT_ID, CLIENT_SECRET, API_KEY, UNIT_CODE = "floor-client", "floor-secret", "floor-key", "BJZGH"

PAIR = ("12345", "12351")
"""The partners this benchmark measures (the simulators of the others are not started)."""


def bridge_consumers() -> int:
    """The node consumes every shard of both targets, one message at a time per queue
    (`bridge.transport.consumer.Subscription`): shards × targets concurrent workers.
    The node's topology takes `[amqp] shards` (`bridge.app.topology_of`)."""
    return AmqpConfig().shards * len(Topology(targets=PAIR).targets)


# --- the simulators: in this process or in a subprocess -----------------------------------


class SimsInProcess:
    """Both simulators in this process (as e2e.py); records go straight into their books."""

    mode = "simulators in this process"

    def __init__(self) -> None:
        self.sims = Simulators(free_ports=True, names=PAIR, rate_limits=False)
        self.pid: int | None = None

    async def __aenter__(self) -> SimsInProcess:
        await self.sims.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.sims.__aexit__(*exc)

    def config_sections(self) -> dict[str, Any]:
        return self.sims.config_sections()

    async def record(self, n_12345: int, n_12351: int) -> tuple[set[str], set[str]]:
        """Order numbers and case numbers recorded, the same way e2e's Tracker does."""
        tracker = Tracker(self.sims)
        for _ in range(n_12345):
            tracker.dispatch_order()
        for _ in range(n_12351):
            tracker.transfer_case()
        orders = {key for key, d in tracker.direction.items() if d == "12345"}
        cases = {key for key, d in tracker.direction.items() if d == "12351"}
        return orders, cases


class SimsSubprocess:
    """Both simulators in `hotline-bridge simulate` (free ports); records are made
    through their `/_sim` control API."""

    mode = "simulators in a subprocess"

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.pid: int | None = None
        self.url_12345 = ""
        self.url_12351 = ""

    async def __aenter__(self) -> SimsSubprocess:
        command = [
            str(Path(sys.executable).with_name("hotline-bridge")),
            "--log-level",
            "warning",
            "simulate",
            "--port-12345",
            "0",
            "--port-12351",
            "0",
            "--port-12385",
            "0",
            "--no-rate-limits",
            "--client-id",
            CLIENT_ID,
            "--client-secret",
            CLIENT_SECRET,
            "--api-key",
            API_KEY,
            "--unit-code",
            UNIT_CODE,
        ]
        self.proc = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
        self.pid = self.proc.pid
        assert self.proc.stdout is not None
        # It prints "12345 simulator: <url>" and "12351 simulator: <url>" once serving.
        async with asyncio.timeout(30):
            for _ in range(2):
                line = (await self.proc.stdout.readline()).decode().strip()
                system, _, url = line.partition(" simulator: ")
                if system == "12345":
                    self.url_12345 = url
                elif system == "12351":
                    self.url_12351 = url
        if not self.url_12345 or not self.url_12351:
            raise RuntimeError("the simulator subprocess did not print its URLs")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()

    def config_sections(self) -> dict[str, Any]:
        return {
            "hotline12345": {
                "base_url": self.url_12345,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "unit_code": UNIT_CODE,
                "rate_limit_rps": 0,  # the simulators run without limits: so does the client
            },
            "hotline12351": {"base_url": self.url_12351, "api_key": API_KEY},
        }

    async def record(self, n_12345: int, n_12351: int) -> tuple[set[str], set[str]]:
        """`POST /_sim/orders` (dispatch) and `POST /_sim/cases` (an agent records a
        transferred case), as e2e's Tracker does in process."""
        root_12345 = self.url_12345.removesuffix("/api/v2")
        root_12351 = self.url_12351.removesuffix("/integration/v1")
        rng = random.Random(0)
        cases: set[str] = set()
        async with aiohttp.ClientSession() as session:
            orders: set[str] = set()
            if n_12345:
                async with session.post(
                    f"{root_12345}/_sim/orders", json={"count": n_12345}
                ) as resp:
                    resp.raise_for_status()
                    orders = set((await resp.json())["orderNos"])
            for _ in range(n_12351):
                # 12345 needs an areaCode: redraw until the case has a district.
                fields = random_case(rng, 1.0)
                while not fields.get("district_code") or not fields.get("transfer"):
                    fields = random_case(rng, 1.0)
                async with session.post(f"{root_12351}/_sim/cases", json=fields) as resp:
                    resp.raise_for_status()
                    cases.add((await resp.json())["items"][0]["case_no"])
        return orders, cases


# --- HTTP call counting ---------------------------------------------------------------


def call_name(method: str, url: Any) -> str:
    """`POST /cases/{id}/events`: the call, with order numbers and case ids left out."""
    path = re.sub(r"/orders/(?!dispatched$|created$)[^/]+", "/orders/{no}", url.path)
    path = re.sub(r"/cases/[^/]+", "/cases/{id}", path)
    return f"{method} {path}"


def counting_trace(calls: Counter[str]) -> aiohttp.TraceConfig:
    async def on_request_start(
        session: aiohttp.ClientSession, context: SimpleNamespace, params: Any
    ) -> None:
        calls[call_name(params.method, params.url)] += 1

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    return trace


# --- (f) the floor --------------------------------------------------------------------


class Floor:
    """Reads, hands over and applies the recorded referrals; see the module docstring."""

    def __init__(
        self,
        client_12345: Client12345,
        client_12351: Client12351,
        config_12345: Hotline12345Config,
        config_12351: Hotline12351Config,
        exchange: aio_pika.abc.AbstractExchange,
        routing_key: str,
        confirm_window: int,
        n: int,
    ) -> None:
        self.client_12345 = client_12345
        self.client_12351 = client_12351
        self.config_12345 = config_12345
        self.config_12351 = config_12351
        self.tables = MappingTables.from_config(None)
        self.exchange = exchange
        self.routing_key = routing_key
        self.window = asyncio.Semaphore(confirm_window)
        self.publishing: set[asyncio.Task[None]] = set()
        self.n = n
        self.body_bytes = 0
        self.applied = 0
        self.last_done = 0.0
        self.all_done = asyncio.Event()
        self.errors: list[BaseException] = []

    # -- read and hand over ------------------------------------------------------------

    async def read(self, orders: set[str], cases: set[str]) -> None:
        """Both sources at once, as the bridge's two pollers; a failure ends the run."""
        try:
            await asyncio.gather(self.read_orders(orders), self.read_cases(cases))
        except Exception as exc:
            self.fail(exc)

    async def read_orders(self, wanted: set[str]) -> None:
        """The 12345 dispatched list, as the bridge's poller reads it."""
        wanted = set(wanted)
        reader = FeedReader12345(
            self.client_12345.list_dispatched,
            self.config_12345.page_size,
            max_pages=self.config_12345.feed_max_pages,
        )
        position = None
        while wanted:
            page = await reader.read(position)
            position = page.position
            for order in page.records:
                if order.orderNo in wanted:
                    wanted.discard(order.orderNo)
                    await self.publish(self.order_snapshot(order))

    async def read_cases(self, wanted: set[str]) -> None:
        """The 12351 case feed, as the bridge's poller reads it."""
        wanted = set(wanted)
        reader = CasesFeedReader(self.client_12351, self.config_12351.page_limit)
        position = None
        while wanted:
            page = await reader.read(position)
            position = page.position
            for case in page.records:
                if case.case_no in wanted and case.status == "transferred":
                    wanted.discard(case.case_no)
                    await self.publish(self.case_snapshot(case))

    def order_snapshot(self, order: Order) -> Referral:
        return order_to_referral(
            order,
            version=1,
            read_at=datetime.now(UTC),
            unit_code=self.config_12345.unit_code,
            tables=self.tables,
        )

    def case_snapshot(self, case: Case) -> Referral:
        return case_to_referral(case, read_at=datetime.now(UTC), tables=self.tables)

    async def publish(self, ref: Referral) -> None:
        """Publish the snapshot (persistent, confirmed), at most `window` unconfirmed."""
        body = ref.model_dump_json().encode()
        self.body_bytes += len(body)
        await self.window.acquire()
        task = asyncio.create_task(self._publish_one(body, ref.message_id))
        self.publishing.add(task)
        task.add_done_callback(self.publishing.discard)

    async def _publish_one(self, body: bytes, message_id: str) -> None:
        try:
            await self.exchange.publish(
                aio_pika.Message(
                    body, message_id=message_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
                ),
                self.routing_key,
                mandatory=True,
            )
        except Exception as exc:
            self.fail(exc)
        finally:
            self.window.release()

    # -- apply -------------------------------------------------------------------------

    async def work(self, inbox: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage]) -> None:
        """One consumer worker: apply a message's snapshot at its target, then ack."""
        while True:
            message = await inbox.get()
            try:
                ref = Referral.model_validate_json(message.body)
                if ref.origin == "12345":
                    await self.apply_order(ref)
                else:
                    await self.apply_transfer(ref)
                self.applied += 1
                if self.applied == self.n:
                    self.last_done = time.monotonic()
                    self.all_done.set()
                await message.ack()
            except Exception as exc:
                self.fail(exc)

    async def apply_order(self, ref: Referral) -> None:
        """A 12345 order: the case at 12351, then the order signed at 12345."""
        body = create_case_request(ref, self.tables)
        await self.client_12351.create_case(body, f"{ref.referral_id}:create_case")
        await self.client_12345.sign(ref.source_no, sign_request(self.config_12345.handler_name))

    async def apply_transfer(self, ref: Referral) -> None:
        """A transferred 12351 case: the order at 12345, then `external_ref` and
        `partner_update accepted` on the case."""
        body = create_order_request(ref, request_id=ref.referral_id, tables=self.tables)
        order_no, _ = await self.client_12345.create_order(body)
        case_id = ref.ids["12351"]
        await self.client_12351.post_event(
            case_id,
            "external_ref",
            external_ref_for(ref, order_no),
            f"{ref.referral_id}:external_ref",
        )
        accepted = PartnerUpdateBody(status="accepted", at=datetime.now(UTC))
        await self.client_12351.post_event(
            case_id, "partner_update", accepted, f"{ref.referral_id}:partner_update:accepted"
        )

    def fail(self, exc: BaseException) -> None:
        self.errors.append(exc)
        self.all_done.set()


async def run_floor(
    *,
    url: str,
    n_12345: int,
    n_12351: int,
    workers: int,
    prefetch: int,
    confirm_window: int,
    sims_process: bool,
    timeout_s: float,
) -> dict[str, Any]:
    n = n_12345 + n_12351
    sims: SimsInProcess | SimsSubprocess = SimsSubprocess() if sims_process else SimsInProcess()
    calls: Counter[str] = Counter()
    async with throwaway_queue(url, "bench-floor", prefetch) as bench:
        exchange, queue, routing_key = bench.exchange, bench.queue, bench.routing_key
        async with (
            sims,
            aiohttp.ClientSession(trace_configs=[counting_trace(calls)]) as session,
        ):
            sections = sims.config_sections()
            config_12345 = Hotline12345Config(**sections["hotline12345"])
            config_12351 = Hotline12351Config(**sections["hotline12351"])
            client_12345 = Client12345(session, config_12345)
            client_12351 = Client12351(session, config_12351)
            floor = Floor(
                client_12345,
                client_12351,
                config_12345,
                config_12351,
                exchange,
                routing_key,
                confirm_window,
                n,
            )
            inbox: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage] = asyncio.Queue()
            worker_tasks = [asyncio.create_task(floor.work(inbox)) for _ in range(workers)]
            consumer_tag = await queue.consume(inbox.put)
            # Warm-up, not timed: the 12345 token and a connection to each simulator.
            await client_12345.token()
            await client_12351.find_by_case_no("warm-up")
            calls.clear()

            if sims_process:
                orders, cases = await sims.record(n_12345, n_12351)
                started = time.monotonic()
                cpu_started = time.process_time()
                sims_cpu_started = process_cpu_s(sims.pid) if sims.pid else 0.0
            else:
                started = time.monotonic()
                cpu_started = time.process_time()
                sims_cpu_started = 0.0
                orders, cases = await sims.record(n_12345, n_12351)
            reading = asyncio.create_task(floor.read(orders, cases))
            try:
                async with asyncio.timeout(timeout_s):
                    await floor.all_done.wait()
            except TimeoutError:
                raise SystemExit(
                    f"timed out after {timeout_s:.0f}s: {floor.applied}/{n} referrals done"
                ) from None
            cpu_s = time.process_time() - cpu_started
            sims_cpu_s = (process_cpu_s(sims.pid) if sims.pid else 0.0) - sims_cpu_started
            if floor.errors:
                raise floor.errors[0]
            await asyncio.gather(reading, *floor.publishing)
            await queue.cancel(consumer_tag)
            for task in worker_tasks:
                task.cancel()
            await asyncio.gather(*worker_tasks, return_exceptions=True)
    wall_s = floor.last_done - started
    return {
        "n": n,
        "mode": sims.mode,
        "sims_pid": sims.pid,
        "workers": workers,
        "wall_s": wall_s,
        "referrals_per_s": n / wall_s,
        "calls": calls,
        "mean_body": floor.body_bytes / n,
        "cpu_s": cpu_s,
        "sims_cpu_s": sims_cpu_s,
    }


async def main(args: argparse.Namespace) -> None:
    n = args.n
    n_12345, n_12351 = n // 2, n - n // 2
    body_size = snapshot_size()
    prefetch, window = bridge_prefetch(), bridge_confirm_window()
    workers = args.workers or bridge_consumers()
    print(f"load average {load()} (1/5/15 min), {os.cpu_count()} cores")
    print(f"(a) raw aio-pika: n={n} body={body_size} B prefetch={prefetch} window={window}")
    raw_runs = [await run_raw(args.url, n, body_size, prefetch, window)]
    print(f"    run 1: {raw_runs[-1]['msgs_per_s']:.0f} msgs/s   (load {load()})")

    mode = "simulators in a subprocess" if args.sims_process else "simulators in this process"
    print(
        f"(f) interface floor, {mode}: n={n} ({n_12345} orders 12345→12351, "
        f"{n_12351} transfers 12351→12345), workers={workers}"
    )
    floor = await run_floor(
        url=args.url,
        n_12345=n_12345,
        n_12351=n_12351,
        workers=workers,
        prefetch=prefetch,
        confirm_window=window,
        sims_process=args.sims_process,
        timeout_s=args.timeout,
    )
    print(f"    done                         (load {load()})")
    raw_runs.append(await run_raw(args.url, n, body_size, prefetch, window))
    print(f"    (a) run 2: {raw_runs[-1]['msgs_per_s']:.0f} msgs/s   (load {load()})")
    raw = max(r["msgs_per_s"] for r in raw_runs)

    calls: Counter[str] = floor["calls"]
    reads = sum(count for name, count in calls.items() if name.startswith("GET "))
    writes = sum(count for name, count in calls.items() if not name.startswith("GET "))
    print(f"mode               {floor['mode']}")
    print(f"N                  {floor['n']}")
    print(f"workers            {floor['workers']} (bridge consumers: {bridge_consumers()})")
    start = "first read" if args.sims_process else "first record"
    print(f"wall time          {floor['wall_s']:.3f} s ({start} → last target call)")
    print(f"floor referrals/s  {floor['referrals_per_s']:.1f}")
    print(
        f"HTTP calls         {reads + writes} ({(reads + writes) / n:.2f} per referral): "
        f"{reads} reads, {writes} writes"
    )
    for name, count in sorted(calls.items()):
        print(f"  {count:6d}  {name}")
    print(f"messages           {n} published with confirm, consumed with ack; ", end="")
    print(f"mean body {floor['mean_body']:.0f} B")
    cpu_s = floor["cpu_s"]
    where = "(simulators included)" if not args.sims_process else "(simulators not included)"
    print(f"CPU this process   {cpu_s:.2f} s, {cpu_s / n * 1000:.2f} ms per referral {where}")
    if args.sims_process:
        sims_cpu_s = floor["sims_cpu_s"]
        print(
            f"CPU simulators     {sims_cpu_s:.2f} s, {sims_cpu_s / n * 1000:.2f} ms per referral "
            f"(subprocess pid {floor['sims_pid']})"
        )
    runs = ", ".join(f"{r['msgs_per_s']:.0f}" for r in raw_runs)
    print(f"raw msgs/s         {raw:.1f} (best of {len(raw_runs)}: {runs})")
    print(f"load average       {load()}")
    print(f"floor_ratio {floor['referrals_per_s'] / raw:.4f}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="referrals (and raw messages)")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="concurrent consumer workers (default: the bridge's, shards × 2 targets)",
    )
    parser.add_argument(
        "--sims-process",
        action="store_true",
        help="run the simulators in a subprocess (`hotline-bridge simulate`)",
    )
    parser.add_argument("--url", default=os.environ.get("HB_TEST_AMQP_URL", DEFAULT_URL))
    parser.add_argument("--timeout", type=float, default=300.0)
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
