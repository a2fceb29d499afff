"""The 12351 change feed over real HTTP: cursors, the empty page, the 7-day expiry and the
reader's restart from `changed_since`, query rules (limit, RFC 3339 offsets)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from fixtures_12351 import (  # noqa: F401  (fixtures imported for their registration)
    START,
    Sim12351,
    s12351_fixture,
    s12351_frozen_fixture,
)

from adapters.hotline12351 import CasesPosition, CursorExpired, Hotline12351
from adapters.hotline12351.sim.requests import Problem
from schemas.hotline12351 import Case, WithdrawnBody

WEEK = timedelta(days=7).total_seconds()


async def drain(hotline: Hotline12351, position: str | None) -> tuple[list[Case], str]:
    """Read pages until the reader says there is nothing more."""
    records: list[Case] = []
    for _ in range(1000):
        page = await hotline.read_feed("cases", position)
        records += page.records
        position = page.position
        if not page.more:
            return records, position
    raise AssertionError("the feed never ran dry")


def changes(cases: list[Case]) -> list[tuple[str, int]]:
    return [(c.id, c.version) for c in cases]


def feed_changes(s: Sim12351) -> list[tuple[str, int]]:
    return [(e["id"], e["version"]) for e in s.sim.book.feed]


async def test_feed_holds_one_entry_per_change_as_the_case_stood_then(s12351: Sim12351):
    case = await s12351.partner_case()
    s12351.sim.agent(case["id"], "dispatch")
    s12351.sim.agent(case["id"], "handle")
    page = await s12351.client.list_cases()
    assert [(c.version, c.status) for c in page.items] == [
        (1, "received"),
        (2, "dispatched"),
        (3, "handling"),
    ]
    current, _ = await s12351.client.get_case(case["id"])
    assert current.version == 3  # the first entry is older than what GET shows


async def test_a_partners_own_event_comes_back_in_the_feed(s12351: Sim12351):
    case = await s12351.partner_case()
    first, position = await drain(s12351.hotline, None)
    await s12351.client.post_event(case["id"], "withdrawn", WithdrawnBody(reason="撤回"), "w-1")
    again, _ = await drain(s12351.hotline, position)
    assert changes(first) == [(case["id"], 1)]
    assert [(c.id, c.version, c.status) for c in again] == [(case["id"], 2, "closed")]


async def test_empty_page_returns_the_same_cursor_and_means_nothing_new(s12351: Sim12351):
    await s12351.partner_case()
    page = await s12351.client.list_cases()
    empty = await s12351.client.list_cases(page.next_cursor)
    assert empty.items == [] and empty.next_cursor == page.next_cursor
    _, position = await drain(s12351.hotline, None)
    idle = await s12351.hotline.read_feed("cases", position)
    assert idle.records == [] and idle.more is False
    assert CasesPosition.decode(idle.position).cursor == CasesPosition.decode(position).cursor


async def test_empty_feed_from_the_start_gives_a_cursor(s12351: Sim12351):
    page = await s12351.client.list_cases()
    assert page.items == [] and page.next_cursor
    await s12351.partner_case()
    assert len((await s12351.client.list_cases(page.next_cursor)).items) == 1


async def test_cursor_is_valid_for_7_days_from_first_issue_then_410(s12351: Sim12351):
    await s12351.partner_case()
    cursor = (await s12351.client.list_cases()).next_cursor
    s12351.clock.advance(WEEK - 60)
    assert (await s12351.client.list_cases(cursor)).next_cursor == cursor  # idle, same cursor
    s12351.clock.advance(61)
    with pytest.raises(CursorExpired):
        await s12351.client.list_cases(cursor)


async def test_unknown_cursor_is_400(s12351: Sim12351):
    status, _, problem = await s12351.raw("GET", "/cases", query="cursor=forged")
    assert status == 400 and problem["errors"][0]["pointer"] == "/cursor"


async def test_reader_restarts_after_expiry_without_losing_or_repeating_a_change(
    s12351_frozen: Sim12351,
):
    """Changes before, at and after the mark, around the cursor's expiry; the clock is
    frozen so that several changes share the mark's exact `updated_at`."""
    s = s12351_frozen
    a = await s.partner_case("a")
    b = s.sim.record_case(subject="咨询如何加入工会", service_type="union_membership")
    c = s.sim.record_case(subject="家庭困难申请帮扶", service_type="hardship_relief")
    read, position = await drain(s.hotline, None)
    assert changes(read) == [(a["id"], 1), (b["id"], 1), (c["id"], 1)]
    mark = CasesPosition.decode(position)
    assert mark.mark == START and len(mark.seen) == 3

    d = s.sim.record_case(subject="单位未签订劳动合同", service_type="legal_aid")  # at the mark
    s.clock.advance(WEEK + 1)
    s.sim.agent(a["id"], "dispatch")  # after the mark, after the expiry
    s.sim.agent(b["id"], "dispatch")

    with pytest.raises(CursorExpired):
        await s.client.list_cases(mark.cursor)
    after, position = await drain(s.hotline, position)
    assert changes(after) == [(d["id"], 1), (a["id"], 2), (b["id"], 2)]
    assert changes(read + after) == feed_changes(s)


async def test_expiring_all_cursors_by_control_route_makes_the_reader_restart(s12351: Sim12351):
    await s12351.partner_case()
    _, position = await drain(s12351.hotline, None)
    status, body = await s12351.control("POST", "/cursors/expire")
    assert status == 200 and body["expired"] >= 1
    case = await s12351.partner_case("second")
    after, _ = await drain(s12351.hotline, position)
    assert changes(after) == [(case["id"], 1)]


async def test_reader_from_a_position_that_never_read_restarts_from_the_beginning(
    s12351: Sim12351,
):
    page = await s12351.hotline.read_feed("cases", None)  # empty feed: a cursor, no mark
    await s12351.partner_case()
    s12351.sim.expire_cursors()
    after, _ = await drain(s12351.hotline, page.position)
    assert changes(after) == feed_changes(s12351)


@pytest.mark.parametrize("seed", range(12))
async def test_reader_sees_every_change_exactly_once_through_random_expiries(
    s12351_frozen: Sim12351, seed: int
):
    s, rng = s12351_frozen, random.Random(seed)
    position: str | None = None
    read: list[Case] = []
    for step in range(40):
        roll = rng.random()
        ids = list(s.sim.cases)
        if roll < 0.25 or not ids:
            await s.partner_case(f"k{step}", priority=rng.choice(["normal", "high"]))
        elif roll < 0.45:
            s.sim.record_random_cases(1, transfer_share=0.5)
        elif roll < 0.65:
            _agent_step(s, rng.choice(ids), rng)
        elif roll < 0.75:
            s.clock.advance(rng.choice([0.001, 1, WEEK + 1]))
        elif roll < 0.8:
            s.sim.expire_cursors()
        else:
            page = await s.hotline.read_feed("cases", position)
            read += page.records
            position = page.position
    rest, _ = await drain(s.hotline, position)
    assert changes(read + rest) == feed_changes(s)


def _agent_step(s: Sim12351, case_id: str, rng: random.Random) -> None:
    action = rng.choice(["dispatch", "handle", "respond", "close"])
    params: dict[str, Any] = {"text": "已处理"} if action == "respond" else {}
    try:
        s.sim.agent(case_id, action, **params)
    except Problem:
        pass  # the case's status does not allow it: nothing changed


async def test_changed_since_is_inclusive_on_updated_at(s12351_frozen: Sim12351):
    s = s12351_frozen
    await s.partner_case()
    s.clock.advance(10)
    later = await s.partner_case("later")
    at = Case.model_validate(later).updated_at
    assert changes((await s.client.changed_since(at)).items) == [(later["id"], 1)]
    assert (await s.client.changed_since(at + timedelta(milliseconds=1))).items == []
    assert len((await s.client.changed_since(START)).items) == 2


async def test_changed_since_without_an_offset_is_400(s12351: Sim12351):
    status, _, problem = await s12351.raw(
        "GET", "/cases", query="changed_since=2026-11-29T10:00:00"
    )
    assert status == 400 and problem["errors"][0]["pointer"] == "/changed_since"


async def test_changed_since_with_an_unencoded_plus_is_400(s12351: Sim12351):
    unencoded = "changed_since=2026-11-29T10:00:00+08:00"
    encoded = "changed_since=2026-11-29T10:00:00%2B08:00"
    assert (await s12351.raw("GET", "/cases", query=unencoded))[0] == 400
    assert (await s12351.raw("GET", "/cases", query=encoded))[0] == 200


@pytest.mark.parametrize(
    ("limit", "status"), [("0", 400), ("501", 400), ("-1", 400), ("ten", 400), ("500", 200)]
)
async def test_limit_outside_1_to_500_is_400(s12351: Sim12351, limit: str, status: int):
    assert (await s12351.raw("GET", "/cases", query=f"limit={limit}"))[0] == status


async def test_limit_defaults_to_100(s12351: Sim12351):
    s12351.sim.record_random_cases(101, transfer_share=0)
    status, _, page = await s12351.raw("GET", "/cases")
    assert status == 200 and len(page["items"]) == 100


async def test_cursor_and_changed_since_together_is_400(s12351: Sim12351):
    cursor = (await s12351.client.list_cases()).next_cursor
    query = f"cursor={cursor}&changed_since=2026-11-29T10:00:00Z"
    assert (await s12351.raw("GET", "/cases", query=query))[0] == 400


async def test_position_survives_a_text_round_trip(s12351: Sim12351):
    await s12351.partner_case()
    _, position = await drain(s12351.hotline, None)
    assert CasesPosition.decode(position).encode() == position
