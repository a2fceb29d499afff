"""End-to-end benchmark: the bridge against raw aio-pika, in one run, on one broker.

    .venv/bin/python bench/e2e.py --n 1000 [--direction both|12345|12351]

(a) Raw aio-pika (`bench.raw_amqp.run_raw`): N persistent messages of the canonical
    snapshot's size, published with confirms and consumed with acks, on a quorum queue
    with the bridge's work-queue arguments, with the bridge's own prefetch
    (`[amqp] prefetch` default) and confirm window (the outbox relay's batch, which it
    publishes concurrently). Run before and after (b); the better run is the baseline.
(b) N referrals end to end: both simulators (rate limits off) and one bridge node (its
    settings defaults; SQLite store in a temporary directory on the machine's disk) in
    this process, over real HTTP and the real broker, in a throwaway AMQP namespace that
    is deleted afterwards. `--direction both` splits N: N//2 orders dispatched by 12345
    to the union, the rest cases recorded by 12351 agents and transferred to 12345.
    All N are recorded at once (a burst) unless `--rate` spreads them out.
    - intake: `time.monotonic()` right after the source simulator recorded the record;
    - done: a 12345 order is done when 12351 holds the case created from it AND the
      order is signed at 12345; a transferred 12351 case is done when 12345 holds the
      order created from it. A watcher looks at the simulators' newly appended records
      (12351's change feed, 12345's action log) every `--watch-ms` (10 ms).
    referrals/s = N / (last done - first intake).

The last line is `e2e_ratio <(b) referrals/s / (a) msgs/s>`. Peak RSS is the whole
process (simulators, bridge node and the raw baseline included).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/e2e.py` from anywhere
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import inspect  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import AsyncIterator, Awaitable, Callable  # noqa: E402
from contextlib import AsyncExitStack  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from functools import partial  # noqa: E402
from typing import Any  # noqa: E402

import asyncpg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from adapters.hotline12345.adapter import Hotline12345  # noqa: E402
from adapters.hotline12351.adapter import Hotline12351  # noqa: E402
from adapters.hotline12351.sim.data import random_case  # noqa: E402
from bench.raw_amqp import DEFAULT_URL, run_raw  # noqa: E402
from bridge import runtime  # noqa: E402
from bridge.app import start_node, topology_of  # noqa: E402
from bridge.config import AmqpConfig, Settings, load_settings, settings_to_toml  # noqa: E402
from bridge.demo import Simulators  # noqa: E402
from bridge.engine.relay import OutboxRelay  # noqa: E402
from bridge.logging import configure_logging  # noqa: E402
from bridge.mapping import MappingTables, order_to_referral  # noqa: E402
from bridge.transport import Transport  # noqa: E402
from schemas.hotline12345 import Order  # noqa: E402

# --- the bridge's own transport settings, read from its code ---------------------------

PAIR = ("12345", "12351")
"""The partners this benchmark measures (the simulators of the others are not started)."""


def bridge_prefetch() -> int:
    return AmqpConfig().prefetch


def bridge_confirm_window() -> int:
    """The relay publishes a batch of outbox rows concurrently: that is its window."""
    return int(inspect.signature(OutboxRelay.__init__).parameters["batch"].default)


def snapshot_size(samples: int = 50) -> int:
    """Median length of the canonical snapshot JSON of random simulator orders."""
    from adapters.hotline12345.sim.server import Simulator12345

    sim = Simulator12345(rate_limit_per_s=None, seed=1)
    tables = MappingTables.from_config(None)
    sizes = []
    for _ in range(samples):
        no = sim.book.dispatch({})
        order = Order.model_validate(sim.book.orders[no])
        ref = order_to_referral(
            order, version=1, read_at=datetime.now(UTC), unit_code=sim.unit_code, tables=tables
        )
        sizes.append(len(ref.model_dump_json().encode()))
    return int(statistics.median(sizes))


# --- (b): intake and done ---------------------------------------------------------------


@dataclass
class Tracker:
    """Intake and done times (monotonic seconds) per referral, from the simulators."""

    sims: Simulators
    intake: dict[str, float] = field(default_factory=dict)  # key → intake time
    direction: dict[str, str] = field(default_factory=dict)  # key → "12345" | "12351"
    done: dict[str, float] = field(default_factory=dict)
    _case_at: dict[str, float] = field(default_factory=dict)  # order no → case created
    _signed_at: dict[str, float] = field(default_factory=dict)  # order no → signed
    _feed_i: int = 0
    _actions_i: int = 0

    def dispatch_order(self) -> None:
        no = self.sims.sim12345.book.dispatch({})
        self.intake[no] = time.monotonic()
        self.direction[no] = "12345"

    def transfer_case(self) -> None:
        # A random transferred case, redrawn until it has a district: 12345 needs an
        # areaCode, so one without is (rightly) parked by the bridge and never done.
        book = self.sims.sim12351.book
        fields = random_case(book.rng, 1.0)
        while not fields.get("district_code") or not fields.get("transfer"):
            fields = random_case(book.rng, 1.0)
        case = self.sims.sim12351.record_case(**fields)
        self.intake[case["case_no"]] = time.monotonic()
        self.direction[case["case_no"]] = "12351"

    def scan(self) -> None:
        """Look at what the simulators appended since the last scan."""
        now = time.monotonic()
        feed = self.sims.sim12351.book.feed
        for entry in feed[self._feed_i :]:
            origin = entry.get("origin")
            if entry["version"] == 1 and origin and origin.get("system") == "12345":
                no = origin["external_no"]
                self._case_at.setdefault(no, now)
                self._settle_order(no)
        self._feed_i = len(feed)
        book = self.sims.sim12345.book
        actions = book.actions
        for entry in actions[self._actions_i :]:
            no = entry["orderNo"]
            if entry["action"] == "sign":
                self._signed_at.setdefault(no, now)
                self._settle_order(no)
            elif entry["action"] == "create":
                case_no = book.orders[no]["sourceNo"]
                if case_no in self.intake:
                    self.done.setdefault(case_no, now)
        self._actions_i = len(actions)

    def _settle_order(self, no: str) -> None:
        if no in self.intake and no in self._case_at and no in self._signed_at:
            self.done.setdefault(no, max(self._case_at[no], self._signed_at[no]))


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def bench_settings(
    sims: Simulators, url: str, store_url: str, overrides: dict[str, Any]
) -> Settings:
    namespace = f"hb-bench-{uuid.uuid4().hex[:10]}"
    return load_settings(
        None,
        amqp={"url": url, "namespace": namespace},
        store={"url": store_url},
        admin={"listen": "127.0.0.1:0"},  # any free port: never collides with a real node
        bridge=overrides,
        **sims.config_sections(),
    )


@contextlib.asynccontextmanager
async def store_url(tmp: Path, postgres_admin_url: str | None) -> AsyncIterator[str]:
    """SQLite in `tmp` (the default), or a throwaway PostgreSQL database (`hb_bench_…`)
    created through `postgres_admin_url` and dropped afterwards."""
    if postgres_admin_url is None:
        yield f"sqlite:///{tmp / 'bridge.db'}"
        return
    admin = make_url(postgres_admin_url)
    name = f"hb_bench_{uuid.uuid4().hex[:10]}"
    await _pg_execute(postgres_admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        await _pg_execute(postgres_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _pg_execute(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def delete_namespace(settings: Settings) -> None:
    transport = await Transport.connect(settings.amqp.url, topology_of(settings))
    try:
        await transport.delete_topology()
    finally:
        await transport.aclose()


async def run_e2e(
    *,
    url: str,
    n_12345: int,
    n_12351: int,
    rate: float,
    timeout_s: float,
    watch_s: float,
    bridge_overrides: dict[str, Any],
    profiler: Any = None,
    node_process: bool = False,
    log_path: Path | None = None,
    log_level: str = "info",
    postgres_admin_url: str | None = None,
    limits: bool = False,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hb-bench-") as tmp:
        async with (
            store_url(Path(tmp), postgres_admin_url) as store,
            # limits off: neither the simulators nor the node's request budget limit the
            # rate (a benchmark of the bridge); on: 12345 at 20/s and the node under it
            Simulators(free_ports=True, names=PAIR, rate_limits=limits) as sims,
        ):
            settings = bench_settings(sims, url, store, bridge_overrides)
            measure = partial(
                _measure, Tracker(sims), n_12345, n_12351, rate, timeout_s, watch_s, settings
            )
            try:
                if node_process:
                    config = Path(tmp) / "bridge.toml"
                    config.write_text(settings_to_toml(settings), encoding="utf-8")
                    daemon_log = log_path or Path(tmp) / "node.log"
                    result = await _with_daemon(config, daemon_log, log_level, settings, measure)
                    return result | _answered_12345(sims)
                async with AsyncExitStack() as stack:
                    node = await start_node(settings, stack)
                    # Let every poller finish its first (empty) read: startup is not timed.
                    deadline = time.monotonic() + 30
                    while any(p.last_success is None for p in node.pollers):
                        if time.monotonic() > deadline:
                            raise RuntimeError("the pollers did not start")
                        await asyncio.sleep(0.02)
                    return await measure(profiler=profiler) | _answered_12345(sims)
            finally:
                await delete_namespace(settings)


def _answered_12345(sims: Simulators) -> dict[str, Any]:
    """What the 12345 simulator counted: every request, and those its limit answered 429."""
    counts = sims.sim12345.counts
    return {
        "requests_12345": sum(counts["requests"].values()),
        "rate_limited_12345": counts["rate_limited"],
    }


async def _with_daemon(
    config: Path,
    log_path: Path,
    log_level: str,
    settings: Settings,
    measure: Callable[..., Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """`hotline-bridge run --config` as its own process (as ops run it), measured from
    outside: its CPU is read from /proc (utime + stime of the process)."""
    with log_path.open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bridge.cli",
            "--log-level",
            log_level,
            "run",
            "--config",
            str(config),
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        # Started when every poller has read once: each feed has a position in the store
        # (whatever the daemon's log level).
        deadline = time.monotonic() + 30
        while await feeds_read(settings) < len(Hotline12345.feeds) + len(Hotline12351.feeds):
            if proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the daemon did not start; see {log_path}")
            await asyncio.sleep(0.05)
        cpu_before = process_cpu_s(proc.pid)
        result = await measure()
        result["node_cpu_ms_per_referral"] = (
            (process_cpu_s(proc.pid) - cpu_before) * 1000 / result["n"]
        )
        result["node_rss_mb"] = process_peak_rss_mb(proc.pid)
        return result
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def feeds_read(settings: Settings) -> int:
    """How many feeds have a position in the node's store (0 before it is migrated)."""
    query = "SELECT count(*) FROM feed_positions"
    url = settings.store.url
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
                return int(db.execute(query).fetchone()[0])
        except sqlite3.Error:  # not created or not migrated yet
            return 0
    try:
        conn = await asyncpg.connect(url)
    except (OSError, asyncpg.PostgresError):
        return 0
    try:
        return int(await conn.fetchval(query))
    except asyncpg.PostgresError:  # not migrated yet
        return 0
    finally:
        await conn.close()


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def process_peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _measure(
    tracker: Tracker,
    n_12345: int,
    n_12351: int,
    rate: float,
    timeout_s: float,
    watch_s: float,
    settings: Settings,
    *,
    profiler: Any = None,
) -> dict[str, Any]:
    n = n_12345 + n_12351
    plan: list[str] = []  # the two directions interleaved
    for i in range(max(n_12345, n_12351)):
        plan += ["12345"] * (i < n_12345) + ["12351"] * (i < n_12351)
    if profiler is not None:
        profiler.enable()
    started = time.monotonic()
    cpu_started = time.process_time()

    async def seed() -> None:
        for i, d in enumerate(plan):
            if rate > 0:
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            tracker.dispatch_order() if d == "12345" else tracker.transfer_case()

    seeding = asyncio.create_task(seed())
    deadline = started + timeout_s
    while len(tracker.done) < n:
        await asyncio.sleep(watch_s)
        tracker.scan()
        if time.monotonic() > deadline:
            break
    await seeding
    cpu_s = time.process_time() - cpu_started
    if profiler is not None:
        profiler.disable()
    if len(tracker.done) < n:
        missing = [k for k in tracker.intake if k not in tracker.done]
        raise SystemExit(
            f"timed out after {timeout_s:.0f}s: {len(tracker.done)}/{n} referrals done; "
            f"first missing {missing[:5]}"
        )
    first = min(tracker.intake.values())
    last = max(tracker.done.values())
    latencies = {d: [] for d in ("12345", "12351")}
    for key, at in tracker.done.items():
        latencies[tracker.direction[key]].append((at - tracker.intake[key]) * 1000)
    every = latencies["12345"] + latencies["12351"]
    return {
        "n": n,
        "wall_s": last - first,
        "referrals_per_s": n / (last - first),
        "p50_ms": pct(every, 50),
        "p99_ms": pct(every, 99),
        "by_direction": {d: (len(v), pct(v, 50), pct(v, 99)) for d, v in latencies.items() if v},
        "poll_interval_s": settings.bridge.poll_interval_s,
        "cpu_ms_per_referral": cpu_s * 1000 / n,
    }


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


async def main(args: argparse.Namespace, log_path: Path) -> None:
    n = args.n
    if args.direction == "12345":
        n_12345, n_12351 = n, 0
    elif args.direction == "12351":
        n_12345, n_12351 = 0, n
    else:
        n_12345, n_12351 = n // 2, n - n // 2
    body_size = snapshot_size()
    prefetch, window = bridge_prefetch(), bridge_confirm_window()
    overrides: dict[str, Any] = {}
    if args.poll_interval is not None:
        overrides["poll_interval_s"] = args.poll_interval
    node_log_path = log_path.with_suffix(".node.log") if args.node_process else None
    logs = f"{log_path}" + (f", daemon {node_log_path}" if node_log_path else "")
    print(f"load average {load()} (1/5/15 min), {os.cpu_count()} cores; bridge logs {logs}")
    print(f"(a) raw aio-pika: n={n} body={body_size} B prefetch={prefetch} window={window}")
    raw_runs = [await run_raw(args.url, n, body_size, prefetch, window)]
    print(f"    run 1: {raw_runs[-1]['msgs_per_s']:.0f} msgs/s   (load {load()})")

    where = "the daemon in its own process" if args.node_process else "one process"
    where += ", PostgreSQL store" if args.postgres else ", SQLite store"
    print(
        f"(b) bridge end to end: n={n} ({n_12345} orders 12345→12351, {n_12351} transfers "
        f"12351→12345), {'burst' if args.rate <= 0 else f'{args.rate}/s'}, {where}"
    )
    if args.node_process and args.profile:
        raise SystemExit("--profile profiles this process: it cannot with --node-process")
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    e2e = await run_e2e(
        url=args.url,
        n_12345=n_12345,
        n_12351=n_12351,
        rate=args.rate,
        timeout_s=args.timeout,
        watch_s=args.watch_ms / 1000,
        bridge_overrides=overrides,
        profiler=profiler,
        node_process=args.node_process,
        log_path=node_log_path,
        log_level=args.log_level,
        postgres_admin_url=args.postgres,
        limits=args.limits,
    )
    print(f"    done                         (load {load()})")
    if profiler is not None:
        profiler.dump_stats(args.profile)
        print(f"    profile of (b) written to {args.profile}")

    raw_runs.append(await run_raw(args.url, n, body_size, prefetch, window))
    print(f"    (a) run 2: {raw_runs[-1]['msgs_per_s']:.0f} msgs/s   (load {load()})")
    raw = max(r["msgs_per_s"] for r in raw_runs)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"N                  {e2e['n']}")
    print(f"poll interval      {e2e['poll_interval_s']} s")
    print(f"wall time          {e2e['wall_s']:.3f} s (first intake → last done)")
    print(f"referrals/s        {e2e['referrals_per_s']:.1f}")
    print(f"latency p50        {e2e['p50_ms']:.0f} ms (intake → done)")
    print(f"latency p99        {e2e['p99_ms']:.0f} ms")
    for d, (count, p50, p99) in e2e["by_direction"].items():
        arrow = "12345→12351" if d == "12345" else "12351→12345"
        print(f"  {arrow}      n={count} p50 {p50:.0f} ms p99 {p99:.0f} ms")
    if args.node_process:
        print(f"CPU per referral   {e2e['node_cpu_ms_per_referral']:.1f} ms (the daemon)")
        print(f"                   {e2e['cpu_ms_per_referral']:.1f} ms (this process: sims)")
        print(f"peak RSS           {e2e['node_rss_mb']:.1f} MB (the daemon)")
    else:
        print(
            f"CPU per referral   {e2e['cpu_ms_per_referral']:.1f} ms (this process, all "
            "threads: simulators, node, watcher)"
        )
        print(f"peak RSS           {peak_rss_mb:.1f} MB (whole process: simulators, node, raw)")
    runs = ", ".join(f"{r['msgs_per_s']:.0f}" for r in raw_runs)
    print(f"raw msgs/s         {raw:.1f} (best of {len(raw_runs)}: {runs})")
    print(
        f"12345 requests     {e2e['requests_12345']} "
        f"({e2e['rate_limited_12345']} answered 429 by its rate limit)"
    )
    print(f"load average       {load()}")
    print(f"e2e_ratio {e2e['referrals_per_s'] / raw:.4f}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="referrals (and raw messages)")
    parser.add_argument("--direction", choices=("both", "12345", "12351"), default="both")
    parser.add_argument("--url", default=os.environ.get("HB_TEST_AMQP_URL", DEFAULT_URL))
    parser.add_argument(
        "--rate", type=float, default=0.0, help="referrals/s to record at (0: all at once)"
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=None,
        help="override [bridge] poll_interval_s (default: the setting's default)",
    )
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--watch-ms", type=float, default=10.0)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--profile", metavar="FILE", help="cProfile (b) into FILE")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const="postgresql://postgres@127.0.0.1:5432/postgres",
        metavar="ADMIN_URL",
        help="store on PostgreSQL: a throwaway database created through ADMIN_URL "
        "(default: %(const)s) and dropped afterwards; without it, SQLite",
    )
    parser.add_argument(
        "--limits",
        action="store_true",
        help="12345's published rate limit on (the simulator at 20 requests/s, the node's "
        "request budget under it): what the limit costs; off by default",
    )
    parser.add_argument(
        "--node-process",
        action="store_true",
        help="run the bridge as `hotline-bridge run` in its own process (the simulators "
        "and the watcher stay in this one)",
    )
    return parser.parse_args(argv)


def run(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    log_path = Path(tempfile.gettempdir()) / f"hb-bench-{os.getpid()}.log"
    with log_path.open("w", encoding="utf-8") as log_stream:
        configure_logging(args.log_level, stream=log_stream)
        runtime.run(main(args, log_path))


if __name__ == "__main__":
    run()
