"""Split deployment: one node per side (each its own store and only its own
credentials) sharing one broker; both lifecycles complete as with one process."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from harness import (
    cases_from,
    delete_namespace,
    new_namespace,
    order,
    orders_from,
    partner_events,
    settings_for,
    start,
    wait_until,
)
from sim_actions import agent, dispatch, order_action, record_case, unit_action

from bridge.demo import Simulators

SPLIT_CASE = {
    "priority": "alert",
    "worker": {"name": "李某", "phone": "010 6234 5678", "confidential": True},
    "transfer": {"to": "12345", "reason": "城市管理", "category": "0302"},
}


async def test_one_node_per_side_completes_both_lifecycles(
    sims: Simulators, tmp_path: Path
) -> None:
    namespace = new_namespace()
    city = settings_for(sims, tmp_path, namespace, sides=["12345"], store_name="city.db")
    union = settings_for(sims, tmp_path, namespace, sides=["12351"], store_name="union.db")
    assert city.hotline12351 is None and union.hotline12345 is None  # own credentials only
    try:
        async with AsyncExitStack() as stack:
            city_node = await start(city, stack)
            union_node = await start(union, stack)

            no = await dispatch(sims, category="0211", urgency="2")
            case_no = record_case(sims, **SPLIT_CASE)["case_no"]
            case_id = next(c["id"] for c in sims.sim12351.cases.values() if c["case_no"] == case_no)

            # 12345 → 12351
            await wait_until(lambda: len(cases_from(sims, no)) == 1, what="case created")
            await wait_until(lambda: order(sims, no)["orderStatus"] == "20", what="signed")
            origin_case = cases_from(sims, no)[0]
            assert origin_case["service_type"] == "hardship_relief"
            await agent(sims, origin_case["id"], "dispatch")
            await agent(sims, origin_case["id"], "handle")
            await agent(sims, origin_case["id"], "respond", text="已发放帮扶金", resolved=True)
            await wait_until(lambda: order(sims, no)["orderStatus"] == "30", what="reply")
            await order_action(sims, no, "visit", satisfaction="1")
            await wait_until(
                lambda: cases_from(sims, no)[0]["status"] == "callback_done", what="callback"
            )

            # 12351 → 12345
            await wait_until(lambda: len(orders_from(sims, case_no)) == 1, what="order")
            created = orders_from(sims, case_no)[0]
            assert created["urgency"] == "3" and created["confidential"] is True
            assert created["callerPhone"] == "010-62345678"
            await wait_until(
                lambda: len(partner_events(sims, case_id, "external_ref")) == 1, what="external_ref"
            )
            await unit_action(sims, created["orderNo"], "reply", content="已修复", resolved=True)
            await wait_until(
                lambda: any(
                    e["body"]["status"] == "replied"
                    for e in partner_events(sims, case_id, "partner_update")
                ),
                what="replied",
            )

            # each node wrote only to its own system and holds its own ledger
            assert (await city_node.store.get_referral(f"12345:{no}")) is not None
            assert (await union_node.store.get_referral(f"12351:{case_no}")) is not None
            assert set(city_node.sides) == {"12345"} and set(union_node.sides) == {"12351"}
        assert len(cases_from(sims, no)) == 1 and len(orders_from(sims, case_no)) == 1
    finally:
        await delete_namespace(city)
