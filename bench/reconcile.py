"""Reconciliation benchmark: one full pass over a large ledger (issue 9).

    .venv/bin/python bench/reconcile.py --store sqlite --n 100000 --open-fraction 0.02 \
        --discrepancies 70 [--dry-run] [--no-limits] [--profile FILE]

Three processes besides this one, so that each figure is its own:

- the simulators (`bridge.demo.Simulators`, rate limits as configured: 12345 at 20
  requests/s unless `--no-limits`), filled directly with the world of
  `bench.recon_world` (every record of the ledger as the hotlines hold it, plus the
  seeded discrepancies), served over HTTP on free ports;
- the generator: writes the same world's ledger into the store (bulk inserts in large
  transactions, COPY on PostgreSQL); timed apart;
- the daemon: builds the reconciler as `bridge.app.start_node` does (the node's sides,
  its settings, no broker: re-published snapshots go to the outbox) and runs ONE pass
  (`Reconciler.run_once`). Its wall time, its peak RSS (`ru_maxrss`, and RSS sampled
  every 0.25 s) and the HTTP requests it sent (per hotline and kind) are measured in it;
  the simulators' memory and CPU are not counted.

Printed: generation and loading times, the pass's wall time, the daemon's peak RSS, the
requests per hotline (as the daemon sent them and as the simulators counted them, 429s
included), the run's counts by finding kind next to what was seeded, the rate floor
(12345 reads ÷ the rate the run may use), and the load average before, during and after.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/reconcile.py` from anywhere
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import AsyncIterator, Iterator  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.recon_world import (  # noqa: E402
    EXPECTED_FINDING,
    KINDS,
    Item,
    Snapshots,
    Spec,
    case_hash,
    check_order_hash,
    feed_positions,
    items,
    load_simulators,
    order_hash,
)

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
BATCH = 20_000


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def rss_mb() -> float:
    """Resident set size of this process now (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- role: the simulators ----------------------------------------------------------------


async def serve_simulators(spec: Spec, limits: bool) -> None:
    """Fill both simulators with the world and serve them until stdin closes."""
    from bridge.demo import Simulators

    sims = Simulators(
        free_ports=True,
        names=("12345", "12351"),  # the pair this bench measures
        rate_limits=limits,
        client_id=spec.client_id,
        unit_code=spec.unit_code,
    )
    async with sims:  # serving; the bench waits for the line below before it reads
        started = time.monotonic()
        gc.disable()
        stats = load_simulators(sims.sim12345, sims.sim12351, spec)
        gc.freeze()  # millions of long-lived dicts: keep them out of every collection
        gc.enable()
        loaded_s = time.monotonic() - started
        ready = {"ports": sims.ports, "load_s": loaded_s, "rss_mb": rss_mb(), **stats}
        print(json.dumps(ready), flush=True)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_reader(sys.stdin.fileno(), stop.set)  # the bench went away
        await stop.wait()


# --- role: the generator -----------------------------------------------------------------


def ledger_rows(spec: Spec) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """The ledger's rows of the world, a batch of referrals at a time, per table."""
    snapshots = Snapshots(spec)
    batch: dict[str, list[dict[str, Any]]] = _empty()
    batch["feed_positions"] = feed_positions(spec)
    count = 0
    for item in items(spec):
        if not item.in_ledger:
            continue
        _rows_of(item, spec, snapshots, batch)
        count += 1
        if count % BATCH == 0:
            yield batch
            batch = _empty()
    if batch["referrals"]:
        yield batch


def _empty() -> dict[str, list[dict[str, Any]]]:
    return {
        t: []
        for t in (
            "referrals",
            "referral_numbers",
            "feed_seen",
            "created_index",
            "source_versions",
            "actions",
            "events",
            "dead_letters",
            "feed_positions",
        )
    }


def _rows_of(
    item: Item, spec: Spec, snapshots: Snapshots, out: dict[str, list[dict[str, Any]]]
) -> None:
    order, case = item.order_seen, item.case_seen
    assert order is not None and case is not None
    rid, at, created = item.referral_id, item.updated, item.created
    snap = snapshots.of(item)
    numbers = {"12345": order["orderNo"], "12351": case["case_no"]}
    out["referrals"].append(
        {
            "referral_id": rid,
            "origin_system": item.origin,
            "ids": {"12345": order["orderNo"], "12351": case["id"]},
            "numbers": numbers,
            "early_warning": item.early_warning,
            "state": item.state,
            "last_snapshot": snap,
            "created_at": created,
            "updated_at": at,
        }
    )
    out["referral_numbers"] += [
        {"referral_id": rid, "system": system, "number": number}
        for system, number in numbers.items()
    ]
    if item.index < 1000 or item.kind is not None:
        check_order_hash(order)
    out["feed_seen"].append(
        {
            "system": "12345",
            "native_id": order["orderNo"],
            "content_hash": order_hash(order),
            "seq": item.seq_12345,
            "updated_at": at,
        }
    )
    out["feed_seen"].append(
        {
            "system": "12351",
            "native_id": case["id"],
            "content_hash": case_hash(case),
            "seq": case["version"],
            "updated_at": at,
        }
    )
    if item.origin == "12345":
        made = {"system": "12351", "origin_ref": order["orderNo"], "native_id": case["id"]}
    else:
        made = {"system": "12345", "origin_ref": case["case_no"], "native_id": order["orderNo"]}
    out["created_index"].append(made | {"created_at": created})
    for system, version in (("12345", item.seq_12345), ("12351", case["version"])):
        out["source_versions"].append(
            {"referral_id": rid, "system": system, "version": version, "updated_at": at}
        )
    if not item.active:
        return
    tables = snapshots.tables
    mapping = tables.version
    order_state = tables.order_lifecycle(order["orderStatus"], order["reopenCount"])
    case_state = tables.case_lifecycle(case["status"], case["reopen_count"])
    for system, version, status, state in (
        ("12345", item.seq_12345, order["orderStatus"], order_state),
        ("12351", case["version"], case["status"], case_state),
    ):
        # As `record_intake` writes it: the last one per system is what a run compares.
        detail = {"version": version, "status": status, "state": state.value, "mapping": mapping}
        out["events"].append(
            {
                "referral_id": rid,
                "system": system,
                "kind": "snapshot.read",
                "detail": detail,
                "at": at,
            }
        )
    for system, key, kind, outcome in item.actions:
        detail = {"mapping": mapping, "attempt": 1}
        out["actions"].append(
            {
                "referral_id": rid,
                "system": system,
                "key": key,
                "kind": kind,
                "outcome": outcome,
                "detail": detail,
                "at": created,
            }
        )
        out["events"].append(
            {
                "referral_id": rid,
                "system": system,
                "kind": kind,
                "detail": detail | {"key": key, "outcome": outcome},
                "at": created,
            }
        )
    if item.kind == "parked_unresolved":
        out["dead_letters"].append(
            {
                "referral_id": rid,
                "system": "12345",
                "stage": "apply",
                "reason": f"12345 refused reply for {rid}: business_error",
                "field": None,
                "payload": {"snapshot": snap, "mapping": mapping},
                "status": "parked",
                "attempts": 1,
                "created_at": at,
                "updated_at": at,
            }
        )


async def generate(spec: Spec, url: str) -> dict[str, Any]:
    """Migrate the store and write the world's ledger into it; returns timings."""
    from bridge.engine.versions import record_tables
    from bridge.mapping import MappingTables
    from bridge.store import Store

    started = time.monotonic()
    store = await Store.connect(url)
    await record_tables(store, MappingTables.from_config(None))
    dialect = store.dialect
    await store.aclose()
    gc.disable()
    rows = Counter[str]()
    if dialect == "sqlite":
        await asyncio.to_thread(_write_sqlite, spec, url, rows)
    else:
        await _write_postgres(spec, url, rows)
    return {"generate_s": time.monotonic() - started, "rows": dict(rows)}


def _write_sqlite(spec: Spec, url: str, rows: Counter[str]) -> None:
    import sqlalchemy as sa

    from bridge.store import tables

    engine = sa.create_engine(make_url(url).set(drivername="sqlite+pysqlite"))
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        conn.commit()
        for batch in ledger_rows(spec):
            with conn.begin():
                for name, values in batch.items():
                    if values:
                        conn.execute(tables.metadata.tables[name].insert(), values)
                        rows[name] += len(values)
    engine.dispose()


async def _write_postgres(spec: Spec, url: str, rows: Counter[str]) -> None:
    from bridge.store import tables

    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    try:
        json_columns = {"ids", "numbers", "last_snapshot", "detail", "payload"}
        for batch in ledger_rows(spec):
            async with conn.transaction():
                for name, values in batch.items():
                    if not values:
                        continue
                    columns = list(values[0])
                    records = [
                        tuple(
                            json.dumps(v[c], ensure_ascii=False) if c in json_columns else v[c]
                            for c in columns
                        )
                        for v in values
                    ]
                    await conn.copy_records_to_table(name, records=records, columns=columns)
                    rows[name] += len(values)
        for name in tables.metadata.tables:
            await conn.execute(f'ANALYZE "{name}"')
    finally:
        await conn.close()


# --- role: the daemon (the measured process) --------------------------------------------


def request_kind(method: str, path: str) -> str:
    """What a hotline request was, from its path: list/feed, fetch, token, write."""
    if path.endswith("/oauth/token"):
        return "token"
    if path.endswith("/orders/dispatched"):
        return "list dispatched"
    if path.endswith("/orders/created"):
        return "list created"
    if path.endswith("/cases"):
        return "feed" if method == "GET" else "write"
    if method == "GET" and ("/orders/" in path or "/cases/" in path):
        return "fetch"
    return f"{method} other"


def _reconciler(settings: Any, store: Any, sides: dict[str, Any]) -> Any:
    """The node's reconciler, as `bridge.app.start_node` builds it; any of its fields
    named after a `[bridge] reconcile_<field>` setting gets that setting."""
    from bridge.app import topology_of
    from bridge.engine.metrics import EngineMetrics
    from bridge.reconcile import Reconciler

    extra = {
        f.name: getattr(settings.bridge, f"reconcile_{f.name}")
        for f in dataclasses.fields(Reconciler)
        if f.name != "interval_s" and hasattr(settings.bridge, f"reconcile_{f.name}")
    }
    return Reconciler(
        store=store,
        sides=sides,
        topology=topology_of(settings),
        systems=("12345", "12351"),
        node_id="bench-daemon",
        interval_s=settings.bridge.reconcile_interval_s,
        metrics=EngineMetrics(),
        **extra,
    )


async def run_pass(config: dict[str, Any], dry_run: bool, profile: str | None) -> dict[str, Any]:
    """One reconciliation pass over every side of the node; what it cost and found."""
    from bridge.app import build_side
    from bridge.config import load_settings
    from bridge.mapping import MappingTables
    from bridge.store import Store

    settings = load_settings(None, **config)
    settings.check()
    ports = {
        urlsplit(settings.hotline12345.base_url).port: "12345",  # type: ignore[union-attr]
        urlsplit(settings.hotline12351.base_url).port: "12351",  # type: ignore[union-attr]
    }
    sent: Counter[tuple[str, str, int]] = Counter()

    async def on_end(_: Any, __: Any, params: aiohttp.TraceRequestEndParams) -> None:
        system = ports.get(params.url.port, "?")
        sent[(system, request_kind(params.method, params.url.path), params.response.status)] += 1

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_end)
    samples: list[tuple[float, float]] = []
    store = await Store.connect(settings.store.url)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        tables = MappingTables.from_config(settings.mapping or None)
        sides = {s: build_side(s, settings, session, tables) for s in settings.bridge.sides}
        reconciler = _reconciler(settings, store, sides)
        started = time.monotonic()

        async def sample() -> None:
            while True:
                samples.append((time.monotonic() - started, rss_mb()))
                await asyncio.sleep(0.25)

        sampler = asyncio.create_task(sample())
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        rss_before = rss_mb()
        t0 = time.monotonic()
        try:
            run_id = await reconciler.run_once("on_demand", dry_run=dry_run)
        finally:
            wall = time.monotonic() - t0
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(profile)
            sampler.cancel()
        run = await store.get_reconciliation(run_id)
        for side in sides.values():
            await side.hotline.aclose()
    await store.aclose()
    assert run is not None
    report = run.report or {}
    listed = Counter(
        str(i.get("kind")) for i in report.get("items", []) if isinstance(i, dict)
    ) or Counter({k: len(v) for k, v in report.items() if isinstance(v, list)})
    return {
        "wall_s": wall,
        "status": run.status,
        "counts": run.counts,
        "report_items": dict(listed),
        "truncated": report.get("truncated"),
        "ru_maxrss_mb": peak_rss_mb(),
        "rss_before_mb": rss_before,
        "rss_samples": samples,
        "sent": [[s, k, st, n] for (s, k, st), n in sorted(sent.items())],
    }


# --- the bench -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def store_url(kind: str, tmp: Path, admin_url: str) -> AsyncIterator[str]:
    """SQLite in `tmp`, or a throwaway PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'bridge.db'}"
        return
    name = f"hb_bench_recon_{uuid.uuid4().hex[:8]}"
    await _pg(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await _pg(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _pg(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _role(role: str, *argv: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--role", role, *argv]


async def _json_line(proc: asyncio.subprocess.Process, what: str) -> dict[str, Any]:
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    if not line:
        raise RuntimeError(f"the {what} process ended without answering (exit {proc.returncode})")
    return json.loads(line)


async def store_size(url: str) -> str:
    if url.startswith("sqlite"):
        path = Path(make_url(url).database or "")
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    else:
        conn = await asyncpg.connect(url)
        try:
            size = await conn.fetchval("SELECT pg_database_size(current_database())")
        finally:
            await conn.close()
    return f"{size / 2**20:.0f} MB"


async def main(args: argparse.Namespace) -> None:
    spec = Spec(
        n=args.n,
        open_fraction=args.open_fraction,
        discrepancies=args.discrepancies,
        now=datetime.now(UTC).replace(microsecond=0),
        window_s=args.window_s,
        seed=args.seed,
    )
    print(
        f"reconcile bench: n={spec.n} store={args.store} open_fraction={spec.open_fraction} "
        f"discrepancies={spec.discrepancies} window={spec.window_s:.0f}s "
        f"run_window={args.run_window_s or spec.window_s:.0f}s dry_run={args.dry_run} "
        f"limits={'on' if args.limits else 'off'}"
    )
    print(f"load average       {load()} (1/5/15 min), {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="hb-recon-") as tmp:
        async with store_url(args.store, Path(tmp), args.pg_admin) as url:
            sims = await asyncio.create_subprocess_exec(
                *_role(
                    "sims", "--spec", spec.to_json(), "--sim-limits", "on" if args.limits else "off"
                ),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            try:
                await _bench(args, spec, url, sims)
            finally:
                assert sims.stdin is not None
                sims.stdin.close()
                with contextlib.suppress(ProcessLookupError):
                    sims.terminate()
                await sims.wait()


async def _bench(
    args: argparse.Namespace, spec: Spec, url: str, sims: asyncio.subprocess.Process
) -> None:
    gen = await asyncio.create_subprocess_exec(
        *_role("generate", "--spec", spec.to_json(), "--store-url", url),
        stdout=subprocess.PIPE,
    )
    ready, generated = await asyncio.gather(_json_line(sims, "simulators"), _json_line(gen, "gen"))
    await gen.wait()
    print(
        f"simulators         {ready['orders']} orders, {ready['cases']} cases, 12351 feed "
        f"{ready['feed']} entries, loaded in {ready['load_s']:.1f} s "
        f"(their own process, RSS {ready['rss_mb']:.0f} MB)"
    )
    rows = generated["rows"]
    print(
        f"ledger             {rows.get('referrals', 0)} referrals generated in "
        f"{generated['generate_s']:.1f} s ({', '.join(f'{k} {v}' for k, v in rows.items())}); "
        f"store {await store_size(url)}"
    )
    root = {s: f"http://127.0.0.1:{p}" for s, p in ready["ports"].items()}
    async with aiohttp.ClientSession() as session:
        for system in root:
            async with session.post(f"{root[system]}/_sim/counters/reset") as resp:
                resp.raise_for_status()
    config = {
        "store": {"url": url},
        "bridge": {"node_id": "bench-daemon"}
        | {"reconcile_window_s": args.run_window_s or spec.window_s},
        "hotline12345": {
            "base_url": f"{root['12345']}/api/v2",
            "client_id": spec.client_id,
            "client_secret": "demo-secret",
            "unit_code": spec.unit_code,
            **({} if args.limits else {"rate_limit_rps": 0}),
        },
        "hotline12351": {"base_url": f"{root['12351']}/integration/v1", "api_key": "demo-key"},
    }
    config["bridge"] = _known_bridge_keys(config["bridge"])
    load_before = load()
    daemon_argv = ["--config", json.dumps(config)]
    daemon_argv += ["--dry-run"] if args.dry_run else []
    daemon_argv += ["--profile", args.profile] if args.profile else []
    daemon = await asyncio.create_subprocess_exec(
        *_role("daemon", *daemon_argv), stdout=subprocess.PIPE
    )
    result = await asyncio.wait_for(_json_line(daemon, "daemon"), timeout=args.timeout)
    await daemon.wait()
    load_after = load()
    counted: dict[str, Any] = {}
    async with aiohttp.ClientSession() as session:
        for system in root:
            async with session.get(f"{root[system]}/_sim/counters") as resp:
                counted[system] = (await resp.json())["counts"]
    report(args, spec, result, counted, load_before, load_after)


def _known_bridge_keys(section: dict[str, Any]) -> dict[str, Any]:
    """The `[bridge]` keys this checkout knows (`reconcile_window_s` came with issue 9)."""
    from bridge.config import BridgeSection

    return {k: v for k, v in section.items() if k in BridgeSection.model_fields}


def report(
    args: argparse.Namespace,
    spec: Spec,
    result: dict[str, Any],
    counted: dict[str, Any],
    load_before: str,
    load_after: str,
) -> None:
    samples = result["rss_samples"]
    sampled_max = max((r for _, r in samples), default=0.0)
    print(f"pass               {result['status']} in {result['wall_s']:.1f} s (wall)")
    print(
        f"daemon peak RSS    {result['ru_maxrss_mb']:.0f} MB (ru_maxrss); sampled max "
        f"{sampled_max:.0f} MB, {result['rss_before_mb']:.0f} MB before the pass"
    )
    if samples:
        every = max(1, len(samples) // 8)
        trail = ", ".join(f"{t:.1f}s {r:.0f}" for t, r in samples[::every])
        print(f"  RSS over time    {trail} (MB)")
    by_system: dict[str, Counter[str]] = {}
    for system, kind, status, n in result["sent"]:
        c = by_system.setdefault(system, Counter())
        c[kind] += n
        if status == 429:
            c["answered 429"] += n
    for system in ("12345", "12351"):
        c = by_system.get(system, Counter())
        total = sum(v for k, v in c.items() if k != "answered 429")
        detail = ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
        seen = counted.get(system, {})
        sim_total = sum(seen.get("requests", {}).values())
        print(
            f"requests {system}     {total} sent ({detail or 'none'}); the simulator counted "
            f"{sim_total}, {seen.get('rate_limited', 0)} answered by its rate limit"
        )
    counts = result["counts"]
    nonzero = {k: v for k, v in counts.items() if v}
    print(f"run counts         {json.dumps(nonzero, sort_keys=True)}")
    print(
        f"report items       {json.dumps(result['report_items'])} truncated={result['truncated']}"
    )
    seeded = spec.seeded()
    expected = Counter[str]()
    for kind in KINDS:
        expected[EXPECTED_FINDING[kind]] += seeded[kind]
    line = ", ".join(f"{k} {n} seeded / {counts.get(k, 0)} found" for k, n in expected.items())
    print(f"discrepancies      {line}")
    sent_12345 = sum(v for k, v in by_system.get("12345", Counter()).items() if k != "answered 429")
    share = _setting("reconcile_rate_share")
    if args.limits and sent_12345:
        rate = 20.0 * (share or 1.0)
        print(
            f"rate floor 12345   {sent_12345} requests ÷ {rate:g}/s = {sent_12345 / rate:.0f} s "
            f"(12345's 20/s × share {share if share is not None else 'none: the whole budget'})"
        )
    print(f"load average       before the pass {load_before}, after {load_after}")


def _setting(name: str) -> Any:
    from bridge.config import BridgeSection

    field = BridgeSection.model_fields.get(name)
    return field.default if field is not None else None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-admin", default=PG_ADMIN, help="where to create the throwaway db")
    parser.add_argument("--n", type=int, default=10_000, help="referrals in the ledger")
    parser.add_argument(
        "--open-fraction", type=float, default=0.02, help="share of referrals not settled"
    )
    parser.add_argument(
        "--discrepancies", type=int, default=14, help="seeded, round-robin over the kinds"
    )
    parser.add_argument("--dry-run", action="store_true", help="a dry-run pass")
    parser.add_argument(
        "--no-limits",
        dest="limits",
        action="store_false",
        help="no rate limits (the simulators' and the node's off): the pass's own cost",
    )
    parser.add_argument(
        "--window-s",
        type=float,
        default=86_400.0,
        help="the world's window: what changed within it is what a day's lists see; "
        "the seeded discrepancies sit outside it (default: 24 h)",
    )
    parser.add_argument(
        "--run-window-s",
        type=float,
        help="the run's reconcile_window_s, when it is not the world's window (a wider "
        "one lists what it would otherwise read one by one)",
    )
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--timeout", type=float, default=7200.0, help="seconds for the pass")
    parser.add_argument("--profile", metavar="FILE", help="cProfile of the pass into FILE")
    parser.add_argument("--role", choices=("sims", "generate", "daemon"), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--store-url", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--sim-limits", choices=("on", "off"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run(argv: list[str] | None = None) -> None:
    from bridge import runtime
    from bridge.logging import configure_logging

    args = parse_args(argv)
    configure_logging("warning", stream=sys.stderr)
    if args.role == "sims":
        runtime.run(serve_simulators(Spec.from_json(args.spec), args.sim_limits == "on"))
    elif args.role == "generate":
        print(json.dumps(runtime.run(generate(Spec.from_json(args.spec), args.store_url))))
    elif args.role == "daemon":
        result = runtime.run(run_pass(json.loads(args.config), args.dry_run, args.profile))
        print(json.dumps(result), flush=True)
    else:
        runtime.run(main(args))


if __name__ == "__main__":
    run()
