"""Faults on both simulators — 10 % 5xx, 429 bursts (both Retry-After forms), a
maintenance window, token revocation, cursor expiry, 12345's rate limit — and still
everything converges, exactly once."""

from __future__ import annotations

import asyncio
from email.utils import format_datetime
from pathlib import Path

import pytest
from harness import (
    cases_from,
    order,
    orders_from,
    partner_events,
    running_node,
    wait_until,
)
from sim_actions import agent, dispatch, record_case

from bridge.demo import Simulators

pytestmark = pytest.mark.refusals(
    "injected faults: 12345 refuses revoked tokens (40101), 12351 expired cursors (410)"
)


async def test_everything_converges_under_faults(sims: Simulators, tmp_path: Path) -> None:
    async with running_node(sims, tmp_path) as node:
        await sims.control(
            "12345",
            "POST",
            "/faults",
            {
                "error_rate": 0.1,
                "error_status": 502,
                "rate_limit_per_s": 20,
                "burst_429": 3,
                "retry_after": "1",
            },
        )
        http_date = format_datetime(sims.sim12351.clock.now() + _seconds(1), usegmt=True)
        await sims.control(
            "12351",
            "POST",
            "/faults",
            {"error_rate": 0.1, "burst_429": 3, "retry_after": http_date},
        )
        orders = [await dispatch(sims) for _ in range(8)]
        cases = [record_case(sims)["case_no"] for _ in range(8)]

        await asyncio.sleep(1.0)
        await sims.control("12345", "POST", "/tokens/revoke", {})
        await sims.control("12351", "POST", "/cursors/expire", {})
        # a 30-minute maintenance window on 12351 while work is in flight
        await sims.control("12351", "POST", "/faults", {"maintenance_s": 1800})
        orders += [await dispatch(sims) for _ in range(4)]
        await asyncio.sleep(3.0)
        assert "12351" in node.paused or any(p.failing for p in node.pollers), (
            "the maintenance window was not noticed"
        )
        sims.sim12351.clock.advance(1801)
        cases += [record_case(sims)["case_no"] for _ in range(4)]
        await sims.control("12345", "POST", "/tokens/revoke", {})

        await wait_until(
            lambda: all(len(cases_from(sims, no)) == 1 for no in orders),
            timeout=90,
            what="a case for every order",
        )
        await wait_until(
            lambda: all(order(sims, no)["orderStatus"] == "20" for no in orders),
            timeout=60,
            what="all signed",
        )
        await wait_until(
            lambda: all(len(orders_from(sims, no)) == 1 for no in cases),
            timeout=60,
            what="an order for every transferred case",
        )
        ids = {c["case_no"]: c["id"] for c in sims.sim12351.cases.values()}
        await wait_until(
            lambda: all(len(partner_events(sims, ids[no], "external_ref")) == 1 for no in cases),
            timeout=60,
            what="external_ref on every case",
        )
        # respond to a few created cases through the storm; replies must arrive once
        for no in orders[:3]:
            case_id = cases_from(sims, no)[0]["id"]
            await agent(sims, case_id, "dispatch")
            await agent(sims, case_id, "handle")
            await agent(sims, case_id, "respond", text="已处理", resolved=True)
        await wait_until(
            lambda: all(order(sims, no)["orderStatus"] == "30" for no in orders[:3]),
            timeout=60,
            what="replies",
        )

        assert all(len(cases_from(sims, no)) == 1 for no in orders)
        assert all(len(orders_from(sims, no)) == 1 for no in cases)
        signs = [a for a in sims.sim12345.actions if a.get("action") == "sign"]
        assert sorted(a["orderNo"] for a in signs) == sorted(orders)
        assert await node.store.list_dead_letters(status="parked") == []


def _seconds(n: float):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    return timedelta(seconds=n)
