"""The admin API of a running node over real HTTP: /readyz turns 503 naming the hotline
while its simulator is in maintenance (12351, and separately 12345) and 200 again after
it, within a bound, /livez stays 200 throughout, and no personal data reaches /metrics
or /readyz.

Readiness learns of the maintenance from what the node does anyway (a feed poll that
fails, a target paused after a 503), never from a call of its own: how long that takes
both ways is measured and printed (`-s` shows it)."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest
from harness import cases_from, orders_from, running_node, wait_until
from prometheus_client.parser import text_string_to_metric_families
from sim_actions import dispatch, record_case

from bridge.demo import Simulators

NAME, PHONE = "测试张三", "13900001111"
OTHER = {"12345": "12351", "12351": "12345"}

TURNS_503_WITHIN_S = 10.0
"""With the test's polls (every 0.2 s, fast retry policy) the first failed feed read
comes within about a second; the bound leaves room for a loaded machine."""
TURNS_200_WITHIN_S = 10.0
"""The failing feed is read again after at most `poll_max_backoff_s` (2 s here) and a
paused target is pinged on the same scale."""


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as resp:
        return resp.status, await resp.text()


async def _send_to(sims: Simulators, system: str) -> str:
    """A referral whose delivery needs `system` (so its target pauses during the
    maintenance), with a known caller; returns its source number."""
    if system == "12351":
        return await dispatch(sims, callerName=NAME, callerPhone=PHONE)
    return record_case(sims, worker={"name": NAME, "phone": PHONE})["case_no"]


def _delivered(sims: Simulators, system: str, number: str) -> bool:
    made = cases_from(sims, number) if system == "12351" else orders_from(sims, number)
    return len(made) == 1


@pytest.mark.parametrize("system", ["12351", "12345"])
async def test_readyz_follows_a_maintenance_window_and_livez_stays_up(
    sims: Simulators, tmp_path: Path, system: str
) -> None:
    async with running_node(sims, tmp_path) as node, aiohttp.ClientSession() as http:
        assert node.admin_url is not None
        base = node.admin_url
        seen: list[str] = []  # every /readyz and /metrics body, checked for personal data
        check = f'"hotline.{system}": "ok"'

        async def ready_is(status: int, named: bool | None = None) -> bool:
            code, text = await _get(http, base + "/readyz")
            seen.append(text)
            assert (await _get(http, base + "/livez"))[0] == 200
            return code == status and (named is None or (check not in text) == named)

        await wait_until(lambda: ready_is(200), timeout=20, what="/readyz 200 at start")

        await sims.control(system, "POST", "/faults", {"maintenance_s": 1800})
        began = time.monotonic()
        number = await _send_to(sims, system)
        await wait_until(
            lambda: ready_is(503, named=True),
            timeout=TURNS_503_WITHIN_S,
            what=f"/readyz 503 naming {system} during maintenance",
        )
        went_down_s = time.monotonic() - began
        async with http.get(base + "/readyz") as resp:
            assert (resp.status, resp.content_type) == (503, "application/problem+json")
            problem = await resp.json(content_type=None)
        assert problem["title"] == "not ready" and problem["status"] == 503
        assert problem["checks"][f"hotline.{system}"] != "ok"
        assert problem["checks"][f"hotline.{OTHER[system]}"] == "ok"
        assert problem["checks"]["store"] == "ok" and problem["checks"]["broker"] == "ok"
        await wait_until(lambda: system in node.paused, timeout=30, what=f"{system} paused")

        (sims.sim12351 if system == "12351" else sims.sim12345).clock.advance(1801)
        ended = time.monotonic()
        await wait_until(
            lambda: ready_is(200),
            timeout=TURNS_200_WITHIN_S,
            what="/readyz 200 after maintenance",
        )
        came_back_s = time.monotonic() - ended
        print(
            f"\nreadiness, {system} maintenance: 503 after {went_down_s:.2f}s, "
            f"200 again {came_back_s:.2f}s after it ended"
        )
        await wait_until(lambda: _delivered(sims, system, number), what="the referral")

        code, metrics = await _get(http, base + "/metrics")
        assert code == 200
        seen.append(metrics)
        families = {f.name: f for f in text_string_to_metric_families(metrics)}
        unavailable = [
            s.value
            for s in families["hotline_bridge_hotline_requests"].samples
            if s.labels == {"system": system, "outcome": "unavailable"}
        ]
        assert unavailable and unavailable[0] >= 1, "the maintenance 503s are counted"
        assert any(
            s.labels.get("direction") == f"{OTHER[system]}-{system}"
            for s in families["hotline_bridge_referrals"].samples
        )
        for body in seen:
            assert NAME not in body and PHONE not in body and number not in body
