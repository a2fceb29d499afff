"""The 12345 list feeds through the adapter over real HTTP: both feeds, crowded seconds
across page boundaries, records shifting between pages, reopen cycles, token loss."""

from __future__ import annotations

import json

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

from adapters.hotline12345.adapter import Hotline12345
from adapters.hotline12345.feed import state_hash
from schemas.hotline12345 import Order, ReplyRequest, SignRequest


async def drain(
    adapter: Hotline12345, feed: str, position: str | None = None
) -> tuple[list[Order], str | None]:
    """Read until the reader says there is nothing more."""
    records: list[Order] = []
    for _ in range(200):
        page = await adapter.read_feed(feed, position)
        records += page.records
        position = page.position
        if not page.more:
            return records, position
    raise AssertionError("the feed never ran dry")


def states(orders: list[Order]) -> list[tuple[str, str]]:
    return [(o.orderNo, state_hash(o)) for o in orders]


def final_states(sim, wanted) -> set[tuple[str, str]]:
    return {(no, state_hash(Order.model_validate(o))) for no, o in sim.orders.items() if wanted(o)}


async def test_dispatched_feed_yields_orders_of_our_unit_only(h12345_adapter, h12345_ctl):
    ours = (await h12345_ctl.post("/_sim/orders", {"count": 3}))["orderNos"]
    await h12345_ctl.post("/_sim/orders", {"count": 2, "unitCode": "QX110108"})
    records, position = await drain(h12345_adapter, "dispatched")
    assert sorted(o.orderNo for o in records) == sorted(ours)
    again, _ = await drain(h12345_adapter, "dispatched", position)
    assert again == []


async def test_created_feed_yields_our_created_orders_and_their_later_changes(
    h12345_adapter, h12345_client, h12345_ctl
):
    order_no, _ = await h12345_client.create_order(create_request("req-feed"))
    await h12345_ctl.dispatch()  # dispatched to us: not in the created feed
    first, position = await drain(h12345_adapter, "created")
    assert [(o.orderNo, o.orderStatus) for o in first] == [(order_no, "20")]
    await h12345_ctl.step(order_no, "reply", content="已处理", resolved=True)
    later, _ = await drain(h12345_adapter, "created", position)
    assert [(o.orderNo, o.orderStatus) for o in later] == [(order_no, "30")]
    assert later[0].reply and later[0].reply.content == "已处理"


async def test_450_orders_in_one_second_cross_page_boundaries_without_loss_or_repeat(
    h12345_adapter, h12345_ctl, h12345_sim
):
    await h12345_ctl.post("/_sim/orders", {"count": 450})
    assert len({o["updateTime"] for o in h12345_sim.orders.values()}) == 1
    records, position = await drain(h12345_adapter, "dispatched")
    assert len(records) == 450 and len(set(states(records))) == 450
    await h12345_ctl.advance(1)
    newcomer = await h12345_ctl.dispatch()
    more, _ = await drain(h12345_adapter, "dispatched", position)
    assert [o.orderNo for o in more] == [newcomer]


async def test_records_shifting_between_pages_are_neither_lost_nor_repeated(
    h12345_adapter, h12345_ctl, h12345_sim, h12345_client
):
    await h12345_ctl.post("/_sim/orders", {"count": 450})
    await h12345_ctl.advance(1)
    await h12345_ctl.post("/_sim/orders", {"count": 250})
    await h12345_ctl.faults(shift_between_pages=0.5)
    records, position = await drain(h12345_adapter, "dispatched")
    await h12345_ctl.post("/_sim/faults", {"shift_between_pages": 0})
    await h12345_ctl.advance(1)
    tail, _ = await drain(h12345_adapter, "dispatched", position)
    yielded = states(records + tail)
    assert len(yielded) == len(set(yielded)), "a state was yielded twice"
    touched = sum(a["action"] == "touch" for a in h12345_sim.actions)
    assert touched > 0, "the fault never moved a record"
    assert final_states(h12345_sim, lambda o: True) <= set(yielded)


async def test_a_naive_page_walk_skips_records_when_they_shift(h12345_client, h12345_ctl):
    """The quirk is real: walking pageNo while records move loses some."""
    await h12345_ctl.post("/_sim/orders", {"count": 600})
    await h12345_ctl.advance(1)
    await h12345_ctl.faults(shift_between_pages=1.0)
    seen: set[str] = set()
    for page_no in (1, 2, 3):
        page = await h12345_client.list_dispatched(None, page_no, 200)
        seen |= {o.orderNo for o in page.records}
    assert len(seen) < 600


async def test_reopen_cycle_is_seen_by_the_feed(h12345_adapter, h12345_client, h12345_ctl):
    order_no = await h12345_ctl.dispatch()
    _, position = await drain(h12345_adapter, "dispatched")
    await h12345_client.sign(order_no, SignRequest(handler="12351职工服务热线"))
    await h12345_client.reply(
        order_no, ReplyRequest(content="已处理。", handler="12351职工服务热线", resolved=True)
    )
    await h12345_ctl.step(order_no, "visit", satisfaction="3", remark="没解决")
    visited, position = await drain(h12345_adapter, "dispatched", position)
    assert visited[-1].orderStatus == "40" and visited[-1].visit
    await h12345_ctl.step(order_no, "reopen", reason="来电人不满意")
    reopened, _ = await drain(h12345_adapter, "dispatched", position)
    order = reopened[-1]
    assert (order.orderStatus, order.reopenCount, order.reopenReason) == ("20", 1, "来电人不满意")
    assert order.reply is None and order.visit is None
    assert order.deadline == visited[-1].deadline


async def test_token_revoked_mid_stream_the_feed_carries_on(h12345_adapter, h12345_ctl, h12345_sim):
    await h12345_ctl.post("/_sim/orders", {"count": 5})
    first, position = await drain(h12345_adapter, "dispatched")
    await h12345_ctl.post("/_sim/tokens/revoke")
    await h12345_ctl.advance(1)
    await h12345_ctl.post("/_sim/orders", {"count": 5})
    second, _ = await drain(h12345_adapter, "dispatched", position)
    assert len(first) == len(second) == 5 and h12345_sim.tokens.issued == 2


async def test_feed_position_is_json_with_the_mark_and_the_states_seen_at_it(
    h12345_adapter, h12345_ctl
):
    await h12345_ctl.post("/_sim/orders", {"count": 2})
    records, position = await drain(h12345_adapter, "dispatched")
    decoded = json.loads(position or "")
    assert decoded["mark"] == records[-1].updateTime.strftime("%Y-%m-%d %H:%M:%S")
    assert set(decoded["seen"]) == {o.orderNo for o in records}


async def test_unknown_feed_is_a_programming_error(h12345_adapter):
    with pytest.raises(ValueError):
        await h12345_adapter.read_feed("closed", None)
