"""The admin API of a running node over real HTTP: /readyz turns 503 naming 12351 while
the 12351 simulator is in maintenance and 200 again after it, /livez stays 200, and no
personal data reaches /metrics or /readyz."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
from harness import cases_from, running_node, wait_until
from prometheus_client.parser import text_string_to_metric_families
from sim_actions import dispatch

from bridge.demo import Simulators

NAME, PHONE = "测试张三", "13900001111"


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as resp:
        return resp.status, await resp.text()


async def test_readyz_follows_a_maintenance_window_and_livez_stays_up(
    sims: Simulators, tmp_path: Path
) -> None:
    async with running_node(sims, tmp_path) as node, aiohttp.ClientSession() as http:
        assert node.admin_url is not None
        base = node.admin_url
        seen: list[str] = []  # every /readyz and /metrics body, checked for personal data

        async def ready_is(status: int, check: Any = None) -> bool:
            code, text = await _get(http, base + "/readyz")
            seen.append(text)
            assert (await _get(http, base + "/livez"))[0] == 200
            return code == status and (check is None or check(text))

        await wait_until(lambda: ready_is(200), timeout=20, what="/readyz 200 at start")

        await sims.control("12351", "POST", "/faults", {"maintenance_s": 1800})
        order_no = await dispatch(sims, callerName=NAME, callerPhone=PHONE)
        await wait_until(
            lambda: ready_is(503, lambda t: '"hotline.12351": "ok"' not in t),
            timeout=30,
            what="/readyz 503 naming 12351 during maintenance",
        )
        async with http.get(base + "/readyz") as resp:
            assert (resp.status, resp.content_type) == (503, "application/problem+json")
            problem = await resp.json(content_type=None)
        assert problem["title"] == "not ready" and problem["status"] == 503
        assert problem["checks"]["hotline.12351"] != "ok"
        assert problem["checks"]["hotline.12345"] == "ok"
        assert problem["checks"]["store"] == "ok" and problem["checks"]["broker"] == "ok"

        sims.sim12351.clock.advance(1801)
        await wait_until(lambda: ready_is(200), timeout=30, what="/readyz 200 after maintenance")
        await wait_until(lambda: len(cases_from(sims, order_no)) == 1, what="the case")

        code, metrics = await _get(http, base + "/metrics")
        assert code == 200
        seen.append(metrics)
        families = {f.name: f for f in text_string_to_metric_families(metrics)}
        unavailable = [
            s.value
            for s in families["hotline_bridge_hotline_requests"].samples
            if s.labels == {"system": "12351", "outcome": "unavailable"}
        ]
        assert unavailable and unavailable[0] >= 1, "the maintenance 503s are counted"
        assert any(
            s.labels.get("direction") == "12345-12351"
            for s in families["hotline_bridge_referrals"].samples
        )
        for body in seen:
            assert NAME not in body and PHONE not in body and order_no not in body
