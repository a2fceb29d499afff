"""A record that does not map is parked with its field and number; the rest of its page
is recorded and the feed position moves on (one bad record blocks nothing)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from adapters.base import FeedPage
from bridge.engine.poller import Poller
from bridge.mapping import MappingTables
from bridge.partners.hotline12345.side import Intake12345
from bridge.store import Store
from bridge.transport import Topology
from schemas.hotline12345 import Order


def order(no: str, **changes: Any) -> Order:
    data: dict[str, Any] = {
        "orderNo": no,
        "title": "拖欠工资",
        "content": "来电人反映拖欠工资。",
        "category": "0202",
        "areaCode": "110108",
        "urgency": "1",
        "orderStatus": "10",
        "dispatchTime": "2026-11-29 09:20:03",
        "deadline": "2026-12-06 09:20:03",
        "unitCode": "BJZGH",
        "updateTime": "2026-11-29 10:00:00",
    }
    return Order.model_validate({**data, **changes})


class OnePage:
    system = "12345"
    feeds = ("dispatched",)

    def __init__(self, records: list[Order]) -> None:
        self.records = records

    async def read_feed(self, feed: str, position: str | None) -> FeedPage[Order]:
        return FeedPage(self.records, "after-page-1")


def dispatched_poller(store: Store | None, hotline: OnePage, **options: Any) -> Poller:
    """A poller of the 12345 `dispatched` feed (the union's unit) for these tests."""
    return Poller(
        store=store,  # type: ignore[arg-type]
        hotline=hotline,  # type: ignore[arg-type]
        feed="dispatched",
        policy=Intake12345(unit_code="BJZGH", tables=MappingTables.default()),
        topology=Topology("unit", targets=("12345", "12351")),
        **{"interval_s": 1, **options},
    )


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        pytest.param({"urgency": "9"}, "urgency", id="unknown-urgency"),
        pytest.param({"orderStatus": "99"}, "orderStatus", id="unknown-status"),
        pytest.param({"category": "02A2"}, "category", id="malformed-category"),
        pytest.param({"areaCode": "11010"}, "areaCode", id="district-not-6-digits"),
    ],
)
async def test_a_bad_record_is_parked_and_the_page_goes_on(
    tmp_path: Path, bad: dict[str, Any], field: str
) -> None:
    store = await Store.connect(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        hotline = OnePage([order("BJ-BAD", **bad), order("BJ-GOOD")])
        poller = Poller(
            store=store,
            hotline=hotline,
            feed="dispatched",  # type: ignore[arg-type]
            policy=Intake12345(unit_code="BJZGH", tables=MappingTables.default()),
            topology=Topology("unit", targets=("12345", "12351")),
            interval_s=1,
        )
        forwarded, _ = await poller.poll_once()
        assert forwarded == 1
        [letter] = await store.list_dead_letters(status="parked")
        assert "BJ-BAD" in letter.reason and field in (letter.field or "") + letter.reason
        assert await store.get_position("12345", "dispatched") == "after-page-1"
        assert [r.referral_id for r in await store.outbox_pending()] == ["12345:BJ-GOOD"]
    finally:
        await store.aclose()


def test_odd_12351_codes_are_mapping_errors_naming_the_field() -> None:
    from datetime import UTC, datetime

    from bridge.errors import MappingError
    from bridge.mapping import case_to_referral
    from schemas.hotline12351 import Case

    base = {
        "id": "c1",
        "case_no": "12351-2026-0000009",
        "created_at": "2026-11-29T09:30:00+08:00",
        "updated_at": "2026-11-29T10:00:00+08:00",
        "version": 1,
        "service_type": "legal_aid",
        "priority": "normal",
        "subject": "拖欠工资",
        "status": "transferred",
        "transfer": {"to": "12345", "reason": "x"},
    }
    for field, value in (("service_type", "tax"), ("priority", "urgent"), ("status", "lost")):
        case = Case.model_validate({**base, field: value})
        with pytest.raises(MappingError) as caught:
            case_to_referral(case, read_at=datetime.now(UTC), tables=MappingTables.default())
        assert caught.value.field == field


class Trickle:
    """A feed with news on its first read only; remembers when it was read."""

    system = "12345"
    feeds = ("dispatched",)

    def __init__(self) -> None:
        self.reads: list[float] = []
        self.third_read = asyncio.Event()

    async def read_feed(self, feed: str, position: str | None) -> FeedPage[Order]:
        self.reads.append(asyncio.get_running_loop().time())
        if len(self.reads) == 3:
            self.third_read.set()
        records = [order("BJ-1")] if len(self.reads) == 1 else []
        return FeedPage(records, f"after-read-{len(self.reads)}")


async def test_after_news_the_next_read_comes_sooner(tmp_path: Path) -> None:
    store = await Store.connect(f"sqlite:///{tmp_path / 'ledger.db'}")
    hotline = Trickle()
    poller = Poller(
        store=store,
        hotline=hotline,  # type: ignore[arg-type]
        feed="dispatched",
        policy=Intake12345(unit_code="BJZGH", tables=MappingTables.default()),
        topology=Topology("unit", targets=("12345", "12351")),
        interval_s=0.6,
        busy_interval_s=0.05,
    )
    task = asyncio.create_task(poller.run())
    try:
        await asyncio.wait_for(hotline.third_read.wait(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.aclose()
    first, second, third = hotline.reads[:3]
    assert second - first < 0.3  # news on the first read: the busy interval
    assert third - second >= 0.55  # nothing new on the second: the quiet interval


class Quiet:
    """A feed with nothing new: the same position back every time."""

    system = "12345"
    feeds = ("dispatched",)

    async def read_feed(self, feed: str, position: str | None) -> FeedPage[Order]:
        return FeedPage([], "mark-1")


async def test_a_quiet_read_writes_nothing(tmp_path: Path) -> None:
    store = await Store.connect(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        poller = Poller(
            store=store,
            hotline=Quiet(),  # type: ignore[arg-type]
            feed="dispatched",
            policy=Intake12345(unit_code="BJZGH", tables=MappingTables.default()),
            topology=Topology("unit", targets=("12345", "12351")),
            interval_s=1,
        )
        await poller.poll_once()  # the first read moves the position: one commit
        assert await store.get_position("12345", "dispatched") == "mark-1"
        commits = store._engine.commits  # type: ignore[union-attr]
        for _ in range(3):
            assert await poller.poll_once() == (0, False)
        assert store._engine.commits == commits  # type: ignore[union-attr]
    finally:
        await store.aclose()


def test_a_failing_feed_is_read_again_soon_and_backs_off_to_a_bound() -> None:
    """One transient error costs half a second; a long outage is probed every 10 s."""
    poller = dispatched_poller(
        None, OnePage([]), interval_s=2.0, busy_interval_s=0.5, max_backoff_s=10.0
    )
    assert [poller.retry_delay(n) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]


class Hanging(OnePage):
    async def read_feed(self, feed: str, position: str | None) -> FeedPage[Order]:
        await asyncio.Event().wait()  # never answers
        raise AssertionError


async def test_a_read_that_never_ends_ends_the_task_for_the_supervisor(tmp_path: Path) -> None:
    store = await Store.connect(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        poller = dispatched_poller(store, Hanging([]), read_timeout_s=0.05)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(poller.run(), 5)
    finally:
        await store.aclose()
