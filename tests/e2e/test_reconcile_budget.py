"""A reconciliation run stays inside its share of 12345's rate budget while normal
traffic flows and an early warning comes in (issue 9), against the simulator's own rate
limit (20 requests/s, the published one) and a node budgeted under it.

The run has `QUIET` open referrals to read one by one: orders signed longer ago than
the run's window (`reconcile_window_s`), so no window list covers them. While it reads
them, a `Flow` keeps both hotlines busy and 12345 dispatches a critical order (urgency 3).
The reconciler's reads (`GET /orders/{orderNo}`: nothing else of the node reads an order
in a run without faults) are counted at the simulator, one by one with their times. Its
window lists (a page per feed over a window this short) cannot be told apart from the
pollers' and are left out; the reads are the bulk of its calls. Prints its figures (run
with `-s` to see them).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from harness import Flow, assert_exactly_once, cases_from, order, running_node, wait_until
from sim_actions import dispatch

from adapters.simkit import Call
from bridge.demo import Simulators

pytestmark = pytest.mark.one_store  # the subject is the rate budget, not the store

LIMIT_RPS = 20  # 12345's published limit, on at the simulator and in the node's budget
SHARE = 0.25  # the default `reconcile_rate_share`
WINDOW_S = 20.0
QUIET = 120
EARLY_WARNING_S = 5.0
READ = "GET /orders/{orderNo}"
READ_TOKEN, OPERATE_TOKEN = "e2e-read-token", "e2e-operate-token"


async def api(
    http: aiohttp.ClientSession, url: str, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    token = OPERATE_TOKEN if method == "POST" else READ_TOKEN
    headers = {"Authorization": f"Bearer {token}"}
    async with http.request(method, url + path, headers=headers, json=body) as resp:
        return resp.status, await resp.json(content_type=None)


def reads_between(sims: Simulators, start: float, end: float) -> list[Call]:
    return [c for c in sims.sim12345.calls.calls_to(READ) if start <= c.at <= end]


def busiest(calls: list[Call], span_s: float) -> int:
    """The most calls within any `span_s` seconds."""
    times = sorted(c.at for c in calls)
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] > span_s:
            first += 1
        most = max(most, last - first + 1)
    return most


@pytest.mark.timeout(600)
async def test_a_run_takes_at_most_its_share_and_an_early_warning_is_signed_at_once(
    sims: Simulators, tmp_path: Path
) -> None:
    await sims.control("12345", "POST", "/faults", {"rate_limit_per_s": LIMIT_RPS})
    quiet = (await sims.control("12345", "POST", "/orders", {"count": QUIET, "urgency": "1"}))[
        "orderNos"
    ]
    flow = Flow(sims, seed=11, rate_per_s=0.5, total=20)
    async with (
        running_node(
            sims,
            tmp_path,
            admin={"tokens": {READ_TOKEN: "read", OPERATE_TOKEN: "operate"}},
            hotlines={"12345": {"rate_limit_rps": LIMIT_RPS}},
            reconcile_interval_s=3600,
            reconcile_window_s=WINDOW_S,
            reconcile_rate_share=SHARE,
            poll_interval_s=0.5,
        ) as node,
        aiohttp.ClientSession() as http,
    ):
        assert node.admin_url is not None
        await wait_until(
            lambda: all(order(sims, no)["orderStatus"] == "20" for no in quiet),
            120,
            what=f"{QUIET} orders signed",
        )
        last_signed = max(order(sims, no)["updateTime"] for no in quiet)
        await asyncio.sleep(WINDOW_S + 2)  # every quiet order now lies before the window
        flow.start()
        try:
            await asyncio.sleep(3)  # traffic under way
            status, run = await api(http, node.admin_url, "POST", "/api/v1/reconciliations", {})
            assert status == 202, run
            posted = time.time()
            await wait_until(
                lambda: len(reads_between(sims, posted, time.time())) >= QUIET // 4,
                60,
                what="the run reading a quarter of the quiet orders",
            )
            warned_at = time.monotonic()
            alert = await dispatch(sims, urgency="3")
            await wait_until(
                lambda: order(sims, alert)["orderStatus"] == "20",
                EARLY_WARNING_S,
                what=f"the early warning signed within {EARLY_WARNING_S:.0f}s, mid-run",
            )
            signed_after_s = time.monotonic() - warned_at
            signed_at = time.time()
            final: dict[str, Any] = {}

            async def finished() -> bool:
                status, body = await api(
                    http, node.admin_url, "GET", f"/api/v1/reconciliations/{run['id']}"
                )
                assert status == 200, body
                final.update(body)
                return body["status"] != "running"

            await wait_until(finished, 180, what="the run's end")
            ended = time.time()
            flow.producing = False
            await wait_until(flow.done, 300, what=f"the flow's convergence: {flow.summary()}")
        finally:
            await flow.aclose()
    assert final["status"] == "done", final
    reads = reads_between(sims, posted, ended)
    span = reads[-1].at - reads[0].at
    allowed = SHARE * LIMIT_RPS
    rate = (len(reads) - 1) / span
    after_warning = [c for c in reads if c.at > signed_at]
    counts = sims.sim12345.counts
    total = sum(counts["requests"].values())
    print(
        f"\nrun {final['id']}: {len(reads)} reads of 12345 orders over {span:.1f}s = "
        f"{rate:.2f}/s (share {allowed:.1f}/s; busiest second {busiest(reads, 1.0)}); "
        f"counts {final['counts']}; early warning signed {signed_after_s:.2f}s after its "
        f"dispatch, {len(after_warning)} reads after it; 12345 answered {total} calls, "
        f"{counts['rate_limited']} with 429; the last quiet order signed at {last_signed}"
    )
    assert counts["rate_limited"] == 0, "12345 answered 429"
    assert len(reads) >= QUIET, f"{len(reads)} reads for {QUIET} open referrals"
    assert rate <= allowed, f"the run read at {rate:.2f}/s, over its share {allowed}/s"
    assert busiest(reads, 2.0) <= 2 * allowed + 1
    assert after_warning, "the run was over before the early warning was signed"
    assert signed_after_s < EARLY_WARNING_S
    sign = [a for a in sims.sim12345.actions if a["orderNo"] == alert and a["action"] == "sign"]
    dispatched = next(a for a in sims.sim12345.actions if a["orderNo"] == alert)["time"]
    assert len(sign) == 1 and _seconds(sign[0]["time"]) - _seconds(dispatched) < EARLY_WARNING_S
    assert len(cases_from(sims, alert)) == 1
    quiet_found = [i for i in final["report"]["items"] if i["numbers"]["12345"] in set(quiet)]
    assert quiet_found == [], f"findings about referrals nothing happened to: {quiet_found}"
    assert_exactly_once(sims, flow)


def _seconds(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").timestamp()
