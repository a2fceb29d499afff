"""Poison: records that do not map and actions the other side refuses for good are
parked with a reason naming the field and the case, and good traffic still converges."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import (
    cases_from,
    order,
    orders_from,
    running_node,
    wait_until,
)
from sim_actions import agent, dispatch, record_case

from bridge.demo import Simulators

pytestmark = pytest.mark.refusals("poison records: 12345 and 12351 refuse what no retry can fix")


async def test_poison_is_parked_and_good_traffic_converges(
    sims: Simulators, tmp_path: Path
) -> None:
    async with running_node(sims, tmp_path) as node:
        # the one to return late: created and signed first, then 25 h pass
        late = await dispatch(sims, category="0101")
        await wait_until(lambda: len(cases_from(sims, late)) == 1, what="case created")
        await wait_until(lambda: order(sims, late)["orderStatus"] == "20", what="signed")

        bad_district = await dispatch(sims, areaCode="11010")  # not 6 digits
        too_long = await dispatch(sims, content="长" * 4001)  # over 12345's own limit
        unknown = record_case(sims, transfer={"to": "12366", "reason": "税务问题"})
        long_case = record_case(
            sims,
            description="详" * 6000,
            transfer={"to": "12345", "reason": "城市管理", "category": "0101"},
        )
        good_orders = [await dispatch(sims) for _ in range(5)]
        good_cases = [record_case(sims)["case_no"] for _ in range(5)]

        sims.sim12345.clock.advance(25 * 3600)
        await agent(sims, cases_from(sims, late)[0]["id"], "reject", reason="非工会职责")

        await wait_until(
            lambda: (
                all(len(cases_from(sims, no)) == 1 for no in good_orders)
                and all(order(sims, no)["orderStatus"] == "20" for no in good_orders)
            ),
            what="good orders",
        )
        await wait_until(
            lambda: all(len(orders_from(sims, no)) == 1 for no in good_cases), what="good cases"
        )
        await wait_until(
            lambda: len(orders_from(sims, long_case["case_no"])) == 1,
            what="long case mapped with a cut",
        )

        async def parked() -> list:
            return await node.store.list_dead_letters(status="parked")

        await wait_until(lambda: _count(parked, 4), what="four dead letters")
        letters = {d.reason: d for d in await parked()}
        text = "\n".join(letters)
        assert bad_district in text and "areaCode" in text
        assert too_long in text and "content" in text
        assert unknown["case_no"] in text and "transfer.to" in text
        assert any(late in r and "return" in r for r in letters)
        # nothing personal in a reason
        assert "长长长" not in text and "李某" not in text

        created = orders_from(sims, long_case["case_no"])[0]
        assert len(created["content"]) == 4000
        assert created["content"].endswith(f"…（全文见12351 {long_case['case_no']}）")
        assert order(sims, late)["orderStatus"] == "20"  # 12345 refused the return
        assert not cases_from(sims, bad_district) and not cases_from(sims, too_long)


async def _count(fetch, n: int) -> bool:  # type: ignore[no-untyped-def]
    return len(await fetch()) >= n
