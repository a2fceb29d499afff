"""Both referral lifecycles end to end: real RabbitMQ, both simulators over HTTP, one
bridge node running both sides. Assertions on the simulators' state."""

from __future__ import annotations

from pathlib import Path

from harness import (
    cases_from,
    order,
    orders_from,
    partner_events,
    running_node,
    wait_until,
)
from sim_actions import agent, dispatch, order_action, unit_action

from bridge.demo import Simulators

CASE_FIELDS = {
    "subject": "宿舍暖气不热",
    "description": "职工反映宿舍暖气不热已一周。",
    "district_code": "110105",
    "service_type": "other",
    "priority": "normal",
    "worker": {"name": "李某", "phone": "138-1234-5678"},
}


async def test_12345_order_full_lifecycle_with_visit_and_reopen(
    sims: Simulators, tmp_path: Path
) -> None:
    """Dispatched order → case created, order signed → response → reply → visit →
    callback_result → reopen → reopened → second response → second reply."""
    async with running_node(sims, tmp_path):
        no = await dispatch(sims, urgency="1", category="0202", areaCode="110108")
        await wait_until(lambda: len(cases_from(sims, no)) == 1, what="case created")
        await wait_until(lambda: order(sims, no)["orderStatus"] == "20", what="signed")
        case = cases_from(sims, no)[0]
        assert case["service_type"] == "legal_aid" and case["district_code"] == "110108"
        assert case["origin"]["deadline"]

        await agent(sims, case["id"], "dispatch")
        await agent(sims, case["id"], "handle")
        await agent(sims, case["id"], "respond", text="已协调公司补发工资", resolved=True)
        await wait_until(lambda: order(sims, no)["orderStatus"] == "30", what="reply")
        assert order(sims, no)["reply"]["content"] == "已协调公司补发工资"

        await order_action(sims, no, "visit", satisfaction="3", remark="未补发")
        await wait_until(
            lambda: cases_from(sims, no)[0]["status"] == "callback_done", what="callback_result"
        )
        assert cases_from(sims, no)[0]["callback"]["satisfaction"] == "dissatisfied"

        await order_action(sims, no, "reopen", reason="来电人不满意")
        await wait_until(lambda: cases_from(sims, no)[0]["reopen_count"] == 1, what="reopened")
        assert cases_from(sims, no)[0]["status"] == "handling"
        await agent(sims, case["id"], "respond", text="已补发全部工资", resolved=True)
        await wait_until(
            lambda: order(sims, no)["orderStatus"] == "30" and order(sims, no)["reopenCount"] == 1,
            what="second reply",
        )
        assert order(sims, no)["reply"]["content"] == "已补发全部工资"
    assert len(cases_from(sims, no)) == 1


async def test_rejected_case_returns_the_order(sims: Simulators, tmp_path: Path) -> None:
    async with running_node(sims, tmp_path):
        no = await dispatch(sims, category="0101")
        await wait_until(lambda: len(cases_from(sims, no)) == 1, what="case created")
        await agent(sims, cases_from(sims, no)[0]["id"], "reject", reason="非工会职责")
        await wait_until(lambda: order(sims, no)["orderStatus"] == "60", what="returned")


async def test_extension_request_becomes_an_extension_and_is_told_back(
    sims: Simulators, tmp_path: Path
) -> None:
    async with running_node(sims, tmp_path):
        no = await dispatch(sims, urgency="1")
        await wait_until(lambda: len(cases_from(sims, no)) == 1, what="case created")
        await wait_until(lambda: order(sims, no)["orderStatus"] == "20", what="signed")
        case_id = cases_from(sims, no)[0]["id"]
        await agent(sims, case_id, "dispatch")
        new_deadline = "2027-01-20T09:00:00+08:00"
        await agent(
            sims, case_id, "request_extension", new_deadline=new_deadline, reason="需要调查取证"
        )
        await wait_until(lambda: order(sims, no)["orderStatus"] == "25", what="extension")
        assert order(sims, no)["deadline"] == "2027-01-20 09:00:00"
        await wait_until(
            lambda: any(
                e["body"].get("status") == "extended"
                for e in partner_events(sims, case_id, "partner_update")
            ),
            what="partner_update extended",
        )


async def test_withdrawn_order_closes_the_case(sims: Simulators, tmp_path: Path) -> None:
    async with running_node(sims, tmp_path):
        no = await dispatch(sims)
        await wait_until(lambda: len(cases_from(sims, no)) == 1, what="case created")
        # withdrawn once signed: a withdrawal in the very instant of signing races the
        # sign (12345 refuses it; test_no_needless_calls covers the other stages)
        await wait_until(lambda: order(sims, no)["orderStatus"] == "20", what="signed")
        await order_action(sims, no, "withdraw")
        await wait_until(lambda: cases_from(sims, no)[0]["status"] == "closed", what="withdrawn")


async def test_early_warning_and_confidentiality_cross_over(
    sims: Simulators, tmp_path: Path
) -> None:
    async with running_node(sims, tmp_path) as node:
        no = await dispatch(sims, urgency="3", confidential=True, category="0202")
        case_no = await agent_case(sims, priority="alert", confidential=True)
        await wait_until(lambda: len(cases_from(sims, no)) == 1, what="case created")
        case = cases_from(sims, no)[0]
        assert case["priority"] == "alert" and case["worker"]["confidential"] is True
        await wait_until(lambda: len(orders_from(sims, case_no)) == 1, what="order")
        created = orders_from(sims, case_no)[0]
        assert created["urgency"] == "3" and created["confidential"] is True
        stats = await node.store.stats()
        assert stats["early_warning"] >= 2


async def agent_case(sims: Simulators, **changes: object) -> str:
    worker = dict(CASE_FIELDS["worker"])  # type: ignore[arg-type]
    if "confidential" in changes:
        worker["confidential"] = changes.pop("confidential")
    fields = {
        **CASE_FIELDS,
        **changes,
        "worker": worker,
        "transfer": {"to": "12345", "reason": "非工会事项", "category": "0302"},
    }
    case = sims.sim12351.record_case(**fields)
    return case["case_no"]


async def test_transferred_case_full_lifecycle(sims: Simulators, tmp_path: Path) -> None:
    """Transferred case → order created → external_ref + accepted → reply text →
    satisfaction → closed, each as a partner event on the 12351 case."""
    async with running_node(sims, tmp_path):
        case_no = await agent_case(sims)
        case_id = next(c["id"] for c in sims.sim12351.cases.values() if c["case_no"] == case_no)
        await wait_until(lambda: len(orders_from(sims, case_no)) == 1, what="order")
        created = orders_from(sims, case_no)[0]
        no = created["orderNo"]
        assert created["category"] == "0302" and created["areaCode"] == "110105"
        assert created["callerPhone"] == "13812345678"
        await wait_until(
            lambda: sims.sim12351.cases[case_id]["transfer"]["external_no"] == no,
            what="external_ref",
        )

        def statuses() -> list[str]:
            return [e["body"]["status"] for e in partner_events(sims, case_id, "partner_update")]

        await wait_until(lambda: "accepted" in statuses(), what="accepted")

        await unit_action(sims, no, "reply", content="已联系物业修复暖气", resolved=True)
        await wait_until(lambda: "replied" in statuses(), what="replied")
        replied = next(
            e
            for e in partner_events(sims, case_id, "partner_update")
            if e["body"]["status"] == "replied"
        )
        assert replied["body"]["text"] == "已联系物业修复暖气"
        await order_action(sims, no, "visit", satisfaction="1")
        await wait_until(
            lambda: any(
                e["body"].get("satisfaction") == "satisfied"
                for e in partner_events(sims, case_id, "partner_update")
            ),
            what="satisfaction",
        )
        await order_action(sims, no, "close")
        await wait_until(lambda: "closed" in statuses(), what="closed")
        assert statuses().count("accepted") == 1
        assert len(partner_events(sims, case_id, "external_ref")) == 1
    assert len(orders_from(sims, case_no)) == 1
