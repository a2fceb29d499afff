"""The 12345 simulator's own promises: strict paging, reopen semantics, realistic seed
data, the state dump, the workflow driver, and what the feeds miss in practice (changes
stamped by a server with a slow clock, hand fixes)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from fixtures_12345 import (  # noqa: F401  (fixtures imported for their registration)
    create_request,
    h12345_adapter_fixture,
    h12345_client_fixture,
    h12345_config_fixture,
    h12345_ctl_fixture,
    h12345_root_fixture,
    h12345_session_fixture,
    h12345_sim_fixture,
)

from adapters.errors import StatusNotAllowed
from adapters.hotline12345.sim.state import DEADLINES
from schemas.hotline12345 import (
    DISTRICTS,
    TIME_FORMAT,
    Order,
    ReplyRequest,
    SignRequest,
    is_valid_phone,
)

SIGN = SignRequest(handler="12351职工服务热线")


async def test_list_is_ordered_by_update_time_then_order_no_and_since_is_inclusive(
    h12345_client, h12345_ctl
):
    first = (await h12345_ctl.post("/_sim/orders", {"count": 3}))["orderNos"]
    await h12345_ctl.advance(5)
    second = (await h12345_ctl.post("/_sim/orders", {"count": 2}))["orderNos"]
    await h12345_ctl.advance(5)
    await h12345_client.sign(first[0], SIGN)  # moves to the end
    page = await h12345_client.list_dispatched(None, 1, 200)
    assert [o.orderNo for o in page.records] == [*first[1:], *second, first[0]]
    since = page.records[2].updateTime
    tail = await h12345_client.list_dispatched(since, 1, 200)
    assert [o.orderNo for o in tail.records] == [*second, first[0]]
    assert tail.total == 3


async def test_every_change_moves_update_time(h12345_client, h12345_ctl, h12345_sim):
    order_no = await h12345_ctl.dispatch()
    times = [h12345_sim.orders[order_no]["updateTime"]]
    for step in ("sign", "reply", "visit", "close"):
        await h12345_ctl.advance(1)
        if step == "sign":
            await h12345_client.sign(order_no, SIGN)
        elif step == "reply":
            reply = ReplyRequest(content="已处理。", handler="张敏", resolved=True)
            await h12345_client.reply(order_no, reply)
        else:
            await h12345_ctl.step(order_no, step, satisfaction="1")
        times.append(h12345_sim.orders[order_no]["updateTime"])
    assert times == sorted(set(times)) and len(times) == 5


async def test_reopen_needs_a_dissatisfied_visit_or_an_unresolved_reply(
    h12345_client, h12345_ctl, h12345_session, h12345_root
):
    order_no = await h12345_ctl.dispatch()
    await h12345_client.sign(order_no, SIGN)
    await h12345_client.reply(
        order_no, ReplyRequest(content="已处理。", handler="张敏", resolved=True)
    )
    await h12345_ctl.step(order_no, "visit", satisfaction="1")
    async with h12345_session.post(
        f"{h12345_root}/_sim/orders/{order_no}/reopen", json={"reason": "x"}
    ) as resp:
        assert resp.status == 409 and (await resp.json())["code"] == "40002"


async def test_unresolved_reply_can_be_reopened_and_the_next_reply_replaces_it(
    h12345_client, h12345_ctl
):
    order_no = await h12345_ctl.dispatch()
    await h12345_client.sign(order_no, SIGN)
    await h12345_client.reply(
        order_no, ReplyRequest(content="暂未解决。", handler="张敏", resolved=False)
    )
    reopened = await h12345_ctl.step(order_no, "reopen", reason="未解决")
    assert reopened["orderStatus"] == "20" and reopened["reply"] is None
    await h12345_client.reply(
        order_no, ReplyRequest(content="已解决。", handler="张敏", resolved=True)
    )
    order = await h12345_client.get_order(order_no)
    assert order.reply and order.reply.content == "已解决。" and order.reopenCount == 1


async def test_random_orders_look_like_12345_data(h12345_ctl, h12345_sim):
    await h12345_ctl.post("/_sim/orders", {"count": 200})
    orders = [Order.model_validate(o) for o in h12345_sim.orders.values()]
    phones = [o.callerPhone or "" for o in orders]
    assert all(is_valid_phone(p) for p in phones)
    assert "" in phones and any("-" in p for p in phones) and any(len(p) == 11 for p in phones)
    assert all(o.areaCode in DISTRICTS for o in orders)
    assert all(not o.streetCode or o.streetCode.startswith(o.areaCode or "-") for o in orders)
    assert {o.urgency for o in orders} == {"1", "2", "3"}
    assert any(o.category.startswith("02") for o in orders)


async def test_created_orders_are_invisible_to_other_partners_feeds_and_actions(
    h12345_client, h12345_ctl
):
    order_no, _ = await h12345_client.create_order(create_request("req-own"))
    page = await h12345_client.list_dispatched(None)
    assert order_no not in {o.orderNo for o in page.records}
    with pytest.raises(StatusNotAllowed):
        await h12345_client.sign(order_no, SIGN)


async def test_state_dump_holds_orders_request_ids_and_the_action_log(h12345_client, h12345_ctl):
    order_no = await h12345_ctl.dispatch()
    await h12345_client.sign(order_no, SIGN)
    created, _ = await h12345_client.create_order(create_request("req-state"))
    state = await h12345_ctl.state()
    assert {o["orderNo"] for o in state["orders"]} == {order_no, created}
    assert state["requestIds"] == {"req-state": created}
    assert [a["action"] for a in state["actions"]] == ["dispatch", "sign", "create"]


async def test_workflow_driver_dispatches_and_moves_orders_along(
    h12345_client, h12345_ctl, h12345_sim
):
    created, _ = await h12345_client.create_order(create_request("req-driver"))
    settings = await h12345_ctl.post(
        "/_sim/driver", {"dispatch_per_s": 40, "advance": True, "min_age_s": 1}
    )
    assert settings["running"]
    for _ in range(12):
        await asyncio.sleep(0.1)
        await h12345_ctl.advance(2)
    stopped = await h12345_ctl.post("/_sim/driver", {"stop": True})
    assert not stopped["running"]
    dispatched = [o for o in h12345_sim.orders.values() if o["unitCode"] == "BJZGH"]
    assert len(dispatched) >= 10
    replies = [a for a in h12345_sim.actions if a["action"] == "reply"]
    assert any(a["orderNo"] == created and a["by"].startswith("unit:QX") for a in replies)


# --- what the feeds miss in practice (issue 9): a slow server clock, a hand fix ---------


async def _drain(adapter, feed: str, position: str | None = None):
    records = []
    for _ in range(50):
        page = await adapter.read_feed(feed, position)
        records += page.records
        position = page.position
        if not page.more:
            return records, position
    raise AssertionError("the feed never ran dry")


async def test_a_dispatch_on_a_slow_clock_lands_below_the_feeds_mark_and_is_never_read(
    h12345_adapter, h12345_client, h12345_ctl, h12345_sim
):
    await h12345_ctl.dispatch()
    await h12345_ctl.advance(30)
    await h12345_ctl.dispatch()
    read, position = await _drain(h12345_adapter, "dispatched")
    assert len(read) == 2
    await h12345_ctl.advance(30)
    late = (await h12345_ctl.post("/_sim/orders", {"clock_behind_s": 3600}))["orderNos"][0]
    order = h12345_sim.orders[late]
    stamped = h12345_sim.book.clock.now_beijing().replace(tzinfo=None, microsecond=0)
    assert order["updateTime"] == order["dispatchTime"]
    assert order["updateTime"] <= (stamped - timedelta(seconds=3600)).strftime(TIME_FORMAT)
    assert order["deadline"] < (stamped + DEADLINES[order["urgency"]]).strftime(TIME_FORMAT)
    assert (await _drain(h12345_adapter, "dispatched", position))[0] == []  # below the mark
    page = await h12345_client.list_dispatched(None, 1, 200)
    assert page.records[0].orderNo == late  # a list from the start has it, first
    assert (await h12345_client.get_order(late)).orderStatus == "10"


async def test_a_step_on_a_slow_clock_sets_update_time_back_and_the_feed_misses_it(
    h12345_adapter, h12345_client, h12345_ctl, h12345_sim
):
    order_no = await h12345_ctl.dispatch()
    await h12345_client.sign(order_no, SIGN)
    await h12345_client.reply(
        order_no, ReplyRequest(content="已处理。", handler="张敏", resolved=True)
    )
    replied = h12345_sim.orders[order_no]["updateTime"]
    _, position = await _drain(h12345_adapter, "dispatched")
    await h12345_ctl.advance(60)
    visited = await h12345_ctl.step(order_no, "visit", satisfaction="2", clock_behind_s=600)
    assert visited["orderStatus"] == "40" and visited["updateTime"] < replied
    assert visited["visit"]["visitTime"] == visited["updateTime"]
    assert (await _drain(h12345_adapter, "dispatched", position))[0] == []
    assert (await h12345_client.get_order(order_no)).orderStatus == "40"
    assert h12345_sim.book.now().strftime(TIME_FORMAT) > replied  # the clock itself is fine


async def test_an_edit_is_a_hand_fix_that_never_moves_update_time_forward(
    h12345_ctl, h12345_sim, h12345_session, h12345_root
):
    order_no = await h12345_ctl.dispatch(content="长" * 4001)
    before = h12345_sim.orders[order_no]["updateTime"]
    await h12345_ctl.advance(60)
    fixed = await h12345_ctl.step(order_no, "edit", fields={"content": "来电人反映拖欠工资。"})
    assert fixed["content"] == "来电人反映拖欠工资。" and fixed["updateTime"] == before
    back = await h12345_ctl.step(
        order_no, "edit", fields={"urgency": "2"}, updateTime="2026-11-29 08:00:00"
    )
    assert (back["urgency"], back["updateTime"]) == ("2", "2026-11-29 08:00:00")
    assert h12345_sim.actions[-1] == h12345_sim.actions[-1] | {
        "orderNo": order_no,
        "action": "edit",
        "body": {"fields": ["urgency"]},
    }
    refused = [
        {"fields": {"orderNo": "BJ12345-x"}},
        {"fields": {"updateTime": "2026-11-29 08:00:00"}},
        {"fields": {"noSuchField": 1}},
        {"fields": {}},
        {"fields": {"urgency": "1"}, "updateTime": "2099-01-01 00:00:00"},  # past now
        {"fields": {"urgency": "1"}, "updateTime": "yesterday"},
        {"fields": {"urgency": "1"}, "clock_behind_s": -5},
    ]
    for body in refused:
        async with h12345_session.post(
            f"{h12345_root}/_sim/orders/{order_no}/edit", json=body
        ) as resp:
            assert resp.status == 400, body
    assert h12345_sim.orders[order_no]["updateTime"] == "2026-11-29 08:00:00"
    async with h12345_session.post(
        f"{h12345_root}/_sim/orders/BJ12345-none/edit", json={"fields": {"urgency": "1"}}
    ) as resp:
        assert resp.status == 404
