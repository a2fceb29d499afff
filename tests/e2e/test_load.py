"""Hundreds of referrals in flight, both directions, to their ends: under 12345's rate
limit the bridge stays a polite client, and under a mix of brief faults on both hotlines
every step follows the one before it within a minute. Large: SQLite only.

Each test prints its figures (run with `-s` to see them): requests, 429s, wall time,
the worst wait between two steps of one referral and the sign latency."""

from __future__ import annotations

import asyncio
import os
import random
import time
from email.utils import format_datetime
from pathlib import Path

import pytest
from harness import Flow, assert_exactly_once, latencies, running_node, wait_until
from sim_actions import refused_calls

from adapters.retry import RetryPolicy
from bridge.demo import Simulators

pytestmark = pytest.mark.large

REFERRALS = 300
LIMIT_RPS = 20  # 12345's published limit


def requests_and_429s(sims: Simulators) -> tuple[int, int]:
    counts = sims.sim12345.counts
    return sum(counts["requests"].values()), counts["rate_limited"]


@pytest.mark.timeout(600)
async def test_300_referrals_stay_under_12345s_rate_limit(sims: Simulators, tmp_path: Path) -> None:
    await sims.control("12345", "POST", "/faults", {"rate_limit_per_s": LIMIT_RPS})
    flow = Flow(sims, seed=3, rate_per_s=20, total=REFERRALS)
    started = time.monotonic()
    async with running_node(
        sims,
        tmp_path,
        amqp={"shards": 4},
        hotlines={"12345": {"rate_limit_rps": LIMIT_RPS}},
    ) as node:
        try:
            flow.start()
            await wait_until(lambda: not flow.producing, 60, what="all referrals produced")
            await wait_until(flow.done, 600, what=f"convergence: {flow.summary()}")
        finally:
            await flow.aclose()
        wall = time.monotonic() - started
        parked = await node.store.list_dead_letters(status="parked")
    total, limited = requests_and_429s(sims)
    print(
        f"\n{len(flow.orders) + len(flow.cases)} referrals under {LIMIT_RPS} requests/s: "
        f"{total} requests to 12345, {limited} answered 429 ({limited / total:.2%}), "
        f"wall time {wall:.0f}s; {latencies(sims, flow).describe()}"
    )
    assert len(flow.orders) + len(flow.cases) >= REFERRALS
    assert limited < 0.01 * total, f"{limited} of {total} requests to 12345 got 429"
    assert_exactly_once(sims, flow)
    assert parked == []


ALLOWED_REFUSALS = {("12345", "40101"), ("12351", "410")}
"""What the injected faults make a simulator refuse: tokens revoked (the client gets a new
one and calls again), cursors expired (the reader restarts from `changed_since`)."""


@pytest.mark.timeout(900)
@pytest.mark.refusals("revoked tokens (40101) and expired cursors (410) are injected")
async def test_every_step_follows_within_a_minute_under_a_fault_mix(
    sims: Simulators, tmp_path: Path
) -> None:
    seed = int(os.environ.get("HB_FAULT_SEED") or random.randrange(1_000_000))
    print(f"\nfault seed {seed} (HB_FAULT_SEED={seed} repeats this run)")
    sims.sim12345.faults._rng.seed(seed)
    sims.sim12345.faults.rng.seed(seed + 1)
    sims.sim12351.faults._rng.seed(seed + 2)
    await sims.control(
        "12345",
        "POST",
        "/faults",
        {
            "error_rate": 0.08,
            "error_status": 502,
            "busy_rate": 0.03,
            "lost_rate": 0.03,
            "rate_limit_per_s": LIMIT_RPS,
        },
    )
    await sims.control(
        "12351",
        "POST",
        "/faults",
        {"error_rate": 0.08, "error_status": 500, "lost_rate": 0.03, "lost_status": 502},
    )
    flow = Flow(sims, seed=seed, rate_per_s=2.5, total=REFERRALS)
    # the daemon's own defaults: polls, back-off, retry ladder, attempt deadline, budget
    async with running_node(
        sims,
        tmp_path,
        retry_policy=RetryPolicy(),
        amqp={"retry_delays_s": (2, 10, 60, 300, 900, 1800), "shards": 4},
        hotlines={"12345": {"rate_limit_rps": LIMIT_RPS}},
        poll_interval_s=2.0,
        poll_busy_interval_s=0.5,
        poll_max_backoff_s=10.0,
        attempt_timeout_s=30.0,
    ) as node:
        storm = asyncio.create_task(brief_faults(sims, random.Random(seed)))
        progress = asyncio.create_task(report(flow))
        try:
            flow.start()
            await wait_until(lambda: not flow.producing, 120, what="all referrals produced")
            await wait_until(flow.done, 900, what=f"convergence: {flow.summary()}")
        finally:
            storm.cancel()
            progress.cancel()
            await asyncio.gather(storm, progress, return_exceptions=True)
            await flow.aclose()
        parked = await node.store.list_dead_letters(status="parked")
    measured = latencies(sims, flow)
    print(f"{len(flow.orders) + len(flow.cases)} referrals, seed {seed}: {measured.describe()}")
    print(f"12345 {sims.sim12345.counts}\n12351 {sims.sim12351.counts}")
    assert_exactly_once(sims, flow)
    assert parked == [], [p.reason for p in parked]
    unexpected = [  # a line reads "<system> <method> <route> <code> ..."
        line
        for line in refused_calls(sims)
        if (line.split()[0], line.split()[3]) not in ALLOWED_REFUSALS
    ]
    assert unexpected == [], unexpected
    assert measured.worst_gap_s < 60, measured.describe()
    assert measured.median_sign_s < 15, measured.describe()


async def brief_faults(sims: Simulators, rng: random.Random) -> None:
    """Bursts of 429 (both Retry-After forms) every 20 s, token revocations every 30 s,
    cursor expiry every 40 s and one short 12351 maintenance window (5 to 8 s, 25 s in),
    while the flow runs."""
    tick = 0
    while True:
        await asyncio.sleep(1.0)
        tick += 1
        if tick % 20 == 0:
            await sims.control("12345", "POST", "/faults", {"burst_429": 3, "retry_after": "1"})
            when = format_datetime(sims.sim12351.clock.now(), usegmt=True)
            await sims.control("12351", "POST", "/faults", {"burst_429": 3, "retry_after": when})
        if tick % 30 == 15:
            await sims.control("12345", "POST", "/tokens/revoke", {})
        if tick % 40 == 7:
            await sims.control("12351", "POST", "/cursors/expire", {})
        if tick == 25:  # mid-run; orders dispatched during it wait for its end, of course
            await sims.control("12351", "POST", "/faults", {"maintenance_s": rng.uniform(5, 8)})


async def report(flow: Flow) -> None:
    last, stalled = "", 0
    while True:
        await asyncio.sleep(15)
        summary = flow.summary()
        print(f"progress: {summary}", flush=True)
        stalled = stalled + 1 if summary == last else 0
        last = summary
        if stalled == 3:  # no progress for 45 s: say where every task waits
            for task in asyncio.all_tasks():
                print(f"--- task {task.get_name()}", flush=True)
                task.print_stack(limit=30)
