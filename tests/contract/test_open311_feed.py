"""The Open311 `updates` feed against the 12385 simulator: rolling windows of at most
24 hours, the overlap, dedup by update_id, narrowing after 1,000, and the referral reads."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta

from fixtures_open311 import (  # noqa: F401  (the s385 fixture)
    START,
    Sim385,
    s385_fixture,
)

from adapters.base import FeedPage
from adapters.open311 import Hotline385
from schemas.open311 import PostUpdateForm, UpdateRecord, open311_time

WINDOWS = "GET /servicerequestupdates.{ext}"


async def drain(hotline: Hotline385, position: str | None) -> tuple[list[UpdateRecord], str, int]:
    """Read pages until `more` is false: every record, the last position, the pages."""
    records: list[UpdateRecord] = []
    pages = 0
    while True:
        page: FeedPage[UpdateRecord] = await hotline.read_feed("updates", position)
        records += page.records
        position, pages = page.position, pages + 1
        if not page.more:
            return records, position, pages


def ids(records: list[UpdateRecord]) -> list[str]:
    return [r.update.update_id for r in records]


def window_spans(s385: Sim385) -> list[timedelta]:
    spans = []
    for call in s385.sim.calls.calls_to(WINDOWS):
        start = datetime.fromisoformat(call.query["start_date"])
        spans.append(datetime.fromisoformat(call.query["end_date"]) - start)
    return spans


async def test_the_first_read_finds_the_referrals_to_us_with_their_private_fields(s385: Sim385):
    records, position, pages = await drain(s385.hotline, None)
    assert [r.update.status for r in records] == ["internal_referral"] * 3
    assert all(r.update.description == "转介至12351" for r in records)
    for record in records:
        assert record.request is not None and record.request.agency_responsible == "12351"
        assert record.request.phone and record.request.last_name  # private: referred to us
    assert pages in (7, 8)  # 7 days back in 24-hour windows (one more if a second ticked)
    assert all(span <= timedelta(hours=24) for span in window_spans(s385))
    assert json.loads(position)["v"] == 1


async def test_reading_the_same_position_again_yields_the_same_records(s385: Sim385):
    _, position, _ = await drain(s385.hotline, None)
    request_id = s385.referred_to_us()
    first = await s385.hotline.read_feed("updates", position)
    again = await s385.hotline.read_feed("updates", position)
    assert ids(first.records) == ids(again.records) and len(first.records) == 1
    assert first.records[0].update.service_request_id == request_id


async def test_each_update_is_yielded_once_across_overlapping_windows(s385: Sim385):
    records, position, _ = await drain(s385.hotline, None)
    request_id = records[0].update.service_request_id
    seen = ids(records)
    for status in ("cancelled", "reopen"):
        s385.clock.advance(20)
        s385.sim.staff_update(request_id, status, "来电人撤回" if status == "cancelled" else "")
        more, position, _ = await drain(s385.hotline, position)
        assert [r.update.status for r in more] == [status] and more[0].request is None
        seen += ids(more)
    s385.clock.advance(30)
    nothing, _, _ = await drain(s385.hotline, position)
    assert nothing == [] and len(seen) == len(set(seen))
    windows = [
        (datetime.fromisoformat(c.query["start_date"]), datetime.fromisoformat(c.query["end_date"]))
        for c in s385.sim.calls.calls_to(WINDOWS)
    ]
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(windows))


async def test_an_update_written_late_with_an_earlier_time_is_caught_by_the_overlap(
    s385: Sim385,
):
    request_id = s385.referred_to_us()
    blind = s385.adapter(overlap_s=0)
    _, position, _ = await drain(s385.hotline, None)
    _, blind_position, _ = await drain(blind, None)
    s385.clock.advance(30)
    # Our own update, stamped 60 s ago (our data's time), lands behind the last window end.
    form = PostUpdateForm(
        service_request_id=request_id,
        update_id="late-1",
        status="IN_PROGRESS",
        updated_datetime=s385.clock.now() - timedelta(seconds=60),
    )
    await s385.hotline.client.post_update(form)
    late, _, _ = await drain(s385.hotline, position)
    assert [r.update.status for r in late] == ["in_progress"]
    assert (await drain(blind, blind_position))[0] == []  # without the overlap: missed


async def test_windows_roll_forward_24_hours_at_a_time_until_now(s385: Sim385):
    _, position, _ = await drain(s385.hotline, None)
    s385.clock.advance(timedelta(days=3).total_seconds())
    request_id = s385.referred_to_us()
    s385.sim.calls.reset()
    records, _, pages = await drain(s385.hotline, position)
    assert [r.update.service_request_id for r in records] == [request_id]
    assert pages == 4 and all(span <= timedelta(hours=24) for span in window_spans(s385))


async def test_a_window_with_over_1000_updates_is_narrowed_and_read_on(s385: Sim385):
    request_id = s385.referred_to_us()
    _, position, _ = await drain(s385.hotline, s385.hotline.window_position("updates", START))
    for _ in range(1010):
        s385.clock.advance(1)
        s385.sim.staff_update(request_id, "reopen", "")
    records, _, pages = await drain(s385.hotline, position)
    assert len(records) == 1010 and len(set(ids(records))) == 1010
    # All 1,010 fall in one 24-hour window: only narrowing after 1,000 reads them all.
    assert pages >= 2 and s385.clock.now() - START < timedelta(hours=1)


async def test_a_page_stops_before_the_referral_over_its_read_budget(s385: Sim385):
    hotline = s385.adapter(max_referral_reads=2)
    since = hotline.window_position("updates", START - timedelta(hours=1))
    first = await hotline.read_feed("updates", since)
    assert len(first.records) == 2 and first.more
    rest, _, _ = await drain(hotline, first.position)
    assert len(rest) == 1 and rest[0].request is not None
    assert len(s385.sim.calls.calls_to("GET /requests/{id}.{ext}")) == 3


async def test_window_position_relists_and_read_up_to_is_the_next_start(s385: Sim385):
    records, position, _ = await drain(s385.hotline, None)
    since = s385.hotline.window_position("updates", START - timedelta(minutes=1))
    relisted, _, _ = await drain(s385.hotline, since)
    assert ids(relisted) == ids(records)
    up_to = s385.hotline.read_up_to("updates", position)
    assert up_to is not None and up_to <= s385.clock.now()
    assert s385.hotline.read_up_to("updates", None) is None


async def test_statuses_read_in_lower_case(s385: Sim385):
    request_id = s385.referred_to_us()
    form = PostUpdateForm(
        service_request_id=request_id,
        update_id="fixed-1",
        status="FIXED",
        updated_datetime=s385.clock.now(),
        description="已答复",
    )
    await s385.hotline.client.post_update(form)
    since = s385.hotline.window_position("updates", START - timedelta(minutes=1))
    records, _, _ = await drain(s385.hotline, since)
    assert records[-1].update.status == "fixed"
    assert open311_time(records[-1].update.updated_datetime).endswith("+08:00")
