"""The 12385 (Open311) partner end to end: real RabbitMQ, the three simulators over HTTP,
a node running 12351 and 12385, with the 12385 simulator's rate limit on (its 10 calls
per window, the window shortened to `WINDOW_S` on both sides so that a lifecycle takes
seconds, not minutes). Assertions read what the simulators hold.

After each test: no simulator refused a call of the bridge, and fewer than 1 % of the
calls to 12385 met its rate limit (429).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Final

import aiohttp
import pytest
from harness import order, orders_from, replied_order, require_broker, running_node, wait_until
from sim_actions import agent, record_case, refused_calls

from bridge.demo import Simulators

pytestmark = pytest.mark.one_store  # its subject is the partner kind, not the store

NAME: Final = "12385"
WINDOW_S: Final = 4
"""The rate limit's window in these tests: 10 calls per 4 s instead of per 60 s."""
TIMEOUT: Final = 60.0


@pytest.fixture
async def sims385() -> AsyncIterator[Simulators]:
    await require_broker()
    async with Simulators(free_ports=True, rate_limits=True) as sims:
        await sims.control(NAME, "POST", "/ratelimit", {"per_min": 10, "window_s": WINDOW_S})
        yield sims
        counts = sims.sim(NAME).counts
        calls = sum(counts["requests"].values())
        log = sims.sim(NAME).calls.calls_to()
        seen = [(round(c.at - log[0].at, 2), c.route, c.answered_by) for c in log]
        assert counts["rate_limited"] * 100 < calls, f"429s at 12385: {counts}, calls: {seen}"
        refused = refused_calls(sims) + [
            f"12385 {r.route} {r.code} {r.message} ({r.client})" for r in sims.sim(NAME).refusals
        ]
        assert refused == [], "calls the simulators refused:\n" + "\n".join(refused)


def _node(sims: Simulators, tmp_path: Any) -> Any:
    return running_node(
        sims, tmp_path, sides=["12351", NAME], partners_sections={NAME: _section(sims)}
    )


def _section(sims: Simulators) -> dict[str, Any]:
    return {
        "kind": "open311",
        **sims.running[NAME].config,
        # the window as 12385's; the budget's own margin (`rate_margin_s`, 1 s) absorbs a
        # call that arrives later than it left (the node's first, in this loaded process)
        "rate_period_s": WINDOW_S,
        "poll_interval_s": 1.0,
        "overlap_s": 5,
        # the book is minutes old: 7 days of empty 24-hour windows would spend the
        # budget's first calls back to back, where one slow first connection of the
        # node is enough for 12385 to count 11 calls in a window
        "first_lookback_s": 600,
    }


def _made_from(sims: Simulators, case_no: str) -> list[str]:
    sim = sims.sim(NAME)
    return [
        i
        for i in sim.requests
        if (sim.private(i).get("attributes") or {}).get("external_ref") == case_no
    ]


def _updates(sims: Simulators, case_id: str) -> list[tuple[str, str | None]]:
    return [
        (e["body"]["status"], e["body"].get("text"))
        for e in sims.sim12351.events.get(case_id, [])
        if e["type"] == "partner_update"
    ]


def _posted(sims: Simulators, request_id: str) -> list[tuple[str, str]]:
    """What the union posted on a 12385 request: (status, description)."""
    return [
        (u.json["status"].lower(), u.json["description"])
        for u in sims.sim(NAME).book.updates
        if u.posted_by == "12351" and u.json["service_request_id"] == request_id
    ]


def _case_of(sims: Simulators, request_id: str) -> dict[str, Any] | None:
    for case in sims.sim12351.cases.values():
        origin = case.get("origin") or {}
        if origin.get("system") == NAME and origin.get("external_no") == request_id:
            return case
    return None


async def test_a_case_transferred_to_12385_goes_through_its_lifecycle_and_back(
    sims385: Simulators, tmp_path: Any
) -> None:
    sims, sim = sims385, sims385.sim(NAME)
    async with _node(sims, tmp_path):
        case = record_case(
            sims, service_type="legal_aid", transfer={"to": NAME, "reason": "残联职责"}
        )
        await wait_until(lambda: _made_from(sims, case["case_no"]), TIMEOUT, what="the request")
        (request_id,) = _made_from(sims, case["case_no"])
        assert sim.requests[request_id]["service_code"] == "DP-RIGHTS"
        await wait_until(
            lambda: _updates(sims, case["id"]) == [("accepted", None)], TIMEOUT, what="accepted"
        )
        transfer = sims.sim12351.cases[case["id"]]["transfer"]
        assert transfer["external_no"] == request_id
        sim.staff_update(request_id, "in_progress", "已受理")
        await wait_until(lambda: len(_updates(sims, case["id"])) == 2, TIMEOUT, what="in_progress")
        sim.staff_update(request_id, "fixed", "已协调单位改造无障碍通道")
        await wait_until(lambda: len(_updates(sims, case["id"])) == 3, TIMEOUT, what="replied")
        sim.staff_update(request_id, "closed", "办结")
        await wait_until(lambda: len(_updates(sims, case["id"])) == 4, TIMEOUT, what="closed")
        assert _updates(sims, case["id"]) == [
            ("accepted", None),
            ("in_progress", None),
            ("replied", "已协调单位改造无障碍通道"),
            ("closed", "办结"),  # with the text (issue 11: `closed` → closed, with the text)
        ]
        assert _made_from(sims, case["case_no"]) == [request_id]  # created once


async def test_12385_sending_a_request_back_and_a_duplicate_reach_the_union(
    sims385: Simulators, tmp_path: Any
) -> None:
    sims, sim = sims385, sims385.sim(NAME)
    async with _node(sims, tmp_path):
        back = record_case(sims, transfer={"to": NAME, "reason": "残联职责"})
        dup = record_case(sims, transfer={"to": NAME, "reason": "残联职责"})
        for case in (back, dup):
            await wait_until(
                lambda c=case: _updates(sims, c["id"]) == [("accepted", None)],
                TIMEOUT,
                what="accepted",
            )
        sim.staff_update(
            _made_from(sims, back["case_no"])[0], "not_councils_responsibility", "不属残联职责"
        )
        sim.staff_update(_made_from(sims, dup["case_no"])[0], "duplicate", "与另一请求重复")
        await wait_until(lambda: len(_updates(sims, back["id"])) == 2, TIMEOUT, what="returned")
        await wait_until(lambda: len(_updates(sims, dup["id"])) == 2, TIMEOUT, what="closed")
        assert _updates(sims, back["id"])[1] == ("returned", "不属残联职责")
        assert _updates(sims, dup["id"])[1] == ("closed", "与另一请求重复")


def _referral(sims: Simulators, description: str, **fields: Any) -> str:
    sim = sims.sim(NAME)
    made = sim.staff_request(
        service_code="DP-RIGHTS",
        description=description,
        address_string="北京市海淀区",
        last_name="张",
        first_name="伟",
        phone="13900001111",
        **fields,
    )
    sim.refer(made["service_request_id"], "12351")
    return str(made["service_request_id"])


async def test_a_12385_referral_goes_through_its_lifecycle_at_the_union_and_back(
    sims385: Simulators, tmp_path: Any
) -> None:
    sims, sim = sims385, sims385.sim(NAME)
    async with _node(sims, tmp_path):
        request_id = _referral(sims, "残疾职工工资被拖欠\n单位拖欠三个月工资。")
        await wait_until(lambda: _case_of(sims, request_id), TIMEOUT, what="the 12351 case")
        case = _case_of(sims, request_id)
        assert case is not None
        assert case["worker"]["name"] == "张伟" and case["worker"]["phone"] == "13900001111"
        assert (case["subject"], case["service_type"]) == ("残疾职工工资被拖欠", "legal_aid")
        await agent(sims, case["id"], "dispatch")
        await agent(sims, case["id"], "handle")
        await wait_until(lambda: _posted(sims, request_id), TIMEOUT, what="IN_PROGRESS")
        await agent(sims, case["id"], "respond", text="已协调企业支付工资")
        await wait_until(lambda: len(_posted(sims, request_id)) == 2, TIMEOUT, what="FIXED")
        sim.staff_update(request_id, "reopen", "请求人不满意")
        await wait_until(
            lambda: sims.sim12351.cases[case["id"]]["reopen_count"] == 1, TIMEOUT, what="reopened"
        )
        await agent(sims, case["id"], "respond", text="企业已补发全部工资")
        await wait_until(lambda: len(_posted(sims, request_id)) == 3, TIMEOUT, what="FIXED again")
        await agent(sims, case["id"], "close")
        await wait_until(lambda: len(_posted(sims, request_id)) == 4, TIMEOUT, what="CLOSED")
        assert _posted(sims, request_id) == [
            ("in_progress", ""),
            ("fixed", "已协调企业支付工资"),
            ("fixed", "企业已补发全部工资"),
            ("closed", ""),
        ]
        assert sim.requests[request_id]["status"] == "closed"


async def test_a_rejected_and_a_withdrawn_12385_referral(
    sims385: Simulators, tmp_path: Any
) -> None:
    sims, sim = sims385, sims385.sim(NAME)
    async with _node(sims, tmp_path):
        rejected = _referral(sims, "咨询残疾人补贴\n请求人咨询补贴标准。")
        withdrawn = _referral(sims, "无障碍设施损坏\n小区坡道损坏。")
        for request_id in (rejected, withdrawn):
            await wait_until(lambda r=request_id: _case_of(sims, r), TIMEOUT, what="the case")
        case = _case_of(sims, rejected)
        assert case is not None
        await agent(sims, case["id"], "reject", reason="不属于工会职责")
        await wait_until(lambda: _posted(sims, rejected), TIMEOUT, what="NO_FURTHER_ACTION")
        assert _posted(sims, rejected) == [("no_further_action", "不属于工会职责")]
        assert sim.requests[rejected]["agency_responsible"] == NAME
        other = _case_of(sims, withdrawn)
        assert other is not None
        sim.staff_update(withdrawn, "cancelled", "请求人撤回")
        await wait_until(
            lambda: sims.sim12351.cases[other["id"]]["status"] == "closed", TIMEOUT, what="closed"
        )
        events = [e["type"] for e in sims.sim12351.events.get(other["id"], [])]
        assert "withdrawn" in events
        assert _posted(sims, withdrawn) == []  # nothing posted on a cancelled request


async def test_a_confidential_workers_case_is_not_readable_through_get_requests(
    sims385: Simulators, tmp_path: Any
) -> None:
    sims = sims385
    worker = {"name": "赵秘密", "phone": "13700007777", "confidential": True}
    async with _node(sims, tmp_path):
        case = record_case(
            sims,
            worker=worker,
            subject="赵秘密反映华光公司拒绝安排残疾职工岗位",
            description="赵秘密（13700007777）在华光公司工作，要求保密。",
            transfer={"to": NAME, "reason": "残联职责", "category": "DP-EMPLOY"},  # batch
        )
        await wait_until(lambda: _made_from(sims, case["case_no"]), TIMEOUT, what="the request")
        (request_id,) = _made_from(sims, case["case_no"])
        await wait_until(lambda: _updates(sims, case["id"]), TIMEOUT, what="accepted")
        listed = await _get_requests(sims, request_id)
        assert [r["service_request_id"] for r in listed] == [request_id]
        public = repr(listed)
        for secret in ("赵秘密", "13700007777", "华光"):
            assert secret not in public
        private = sims.sim(NAME).private(request_id)
        assert (private["last_name"], private["phone"]) == ("赵秘密", "13700007777")
        assert private["attributes"]["confidential"] == "true"


async def _get_requests(sims: Simulators, request_id: str) -> list[dict[str, Any]]:
    """`GET requests.json` as anyone with a key reads it (the public listing)."""
    params = {"api_key": sims.running[NAME].config["api_key"], "service_request_id": request_id}
    async with aiohttp.ClientSession() as session:
        for _ in range(WINDOW_S * 4):  # the key's budget is the node's too: wait for room
            async with session.get(f"{sims.url(NAME)}/requests.json", params=params) as resp:
                if resp.status != 429:
                    assert resp.status == 200
                    return list(await resp.json())
            await asyncio.sleep(0.5)
    raise AssertionError("12385 kept answering 429")


async def test_the_12345_lifecycles_run_beside_12385_in_one_node(
    sims385: Simulators, tmp_path: Any
) -> None:
    """One node running all three partners, 12385's rate limit on: an order answered
    through the union and a case transferred to 12345 complete as without 12385, while
    a 12385 referral reaches the union."""
    sims = sims385
    async with running_node(
        sims, tmp_path, sides=["12345", "12351", NAME], partners_sections={NAME: _section(sims)}
    ):
        request_id = _referral(sims, "残疾职工咨询工伤认定\n单位不予申报工伤。")
        case_no = record_case(sims)["case_no"]  # transferred to 12345
        no, _ = await replied_order(sims)
        await wait_until(lambda: orders_from(sims, case_no), TIMEOUT, what="the 12345 order")
        await wait_until(lambda: _case_of(sims, request_id), TIMEOUT, what="the 12385 case")
        assert order(sims, no)["orderStatus"] == "30"
        assert len(orders_from(sims, case_no)) == 1
