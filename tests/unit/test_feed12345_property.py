"""Property: the 12345 feed reader misses no order state and repeats none, although orders
share seconds (more than a page of them), `updatedSince` is inclusive and records move
between page requests (an order changed mid-scan jumps to the end of the list)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.base import FeedPage
from adapters.hotline12345.feed import FeedPosition, FeedReader12345, next_window, state_hash
from schemas.hotline12345 import Order, Page

BASE = datetime(2026, 11, 29, 9, 0, 0)
MAX_ORDERS = 45  # below lcm(2..5) = 60, the depth at which page size 5 cannot overlap

op = st.one_of(
    st.tuples(st.just("new"), st.integers(1, 12)),
    st.tuples(st.just("touch"), st.integers(0, 10**6)),
    st.tuples(st.just("touch"), st.integers(0, 10**6)),
    st.tuples(st.just("tick"), st.just(0)),
)
# A plan: periods of mutation batches; one batch is applied before each page request.
plans = st.lists(st.lists(st.lists(op, max_size=3), min_size=1, max_size=10), max_size=4)
# Crowded seconds hit by bursts of changes: several shifts between two page requests.
burst = st.one_of(
    st.tuples(st.just("new"), st.integers(5, 15)),
    *[st.tuples(st.just("touch"), st.integers(0, 10**6))] * 4,
    st.tuples(st.just("tick"), st.just(0)),
)
crowded_plans = st.lists(
    st.lists(st.lists(burst, max_size=5), min_size=2, max_size=10), min_size=1, max_size=3
)


class ListSource:
    """12345's list call over an in-memory table; one response is one snapshot."""

    def __init__(self) -> None:
        self.now = 0
        self.orders: dict[str, tuple[int, int]] = {}  # orderNo -> (second, version)
        self.pending: list[list[tuple[str, int]]] = []
        self.ever: set[tuple[str, str]] = set()

    def order(self, no: str) -> Order:
        second, version = self.orders[no]
        return Order(
            orderNo=no,
            title=f"v{version}",
            category="0202",
            urgency="1",
            orderStatus="10",
            updateTime=BASE + timedelta(seconds=second),
        )

    def apply(self, batch: list[tuple[str, int]]) -> None:
        for kind, arg in batch:
            if kind == "tick":
                self.now += 1
            elif kind == "new":
                for _ in range(min(arg, MAX_ORDERS - len(self.orders))):
                    self.orders[f"BJ12345-{len(self.orders):06d}"] = (self.now, 0)
            elif self.orders:
                no = sorted(self.orders)[arg % len(self.orders)]
                self.orders[no] = (self.now, self.orders[no][1] + 1)
            self.ever |= self.current_states()

    def current_states(self) -> set[tuple[str, str]]:
        return {(no, state_hash(self.order(no))) for no in self.orders}

    async def fetch_page(self, since: datetime | None, page_no: int, page_size: int) -> Page:
        if self.pending:
            self.apply(self.pending.pop(0))
        rows = sorted(
            (self.order(no) for no in self.orders),
            key=lambda o: (o.updateTime, o.orderNo),
        )
        rows = [o for o in rows if since is None or o.updateTime >= since]
        start = (page_no - 1) * page_size
        return Page(
            total=len(rows), pageNo=page_no, pageSize=page_size, records=rows[start:][:page_size]
        )


class NaiveReader:
    """Mark + states at the mark, but walks `pageNo` from the mark: skips on shifts."""

    def __init__(self, fetch_page, page_size: int) -> None:
        self.fetch_page, self.size = fetch_page, page_size

    async def read(self, position: str | None) -> FeedPage[Order]:
        pos = FeedPosition.decode(position)
        out, page_no, records = [], 1, []
        while True:
            page = await self.fetch_page(pos.mark, page_no, self.size)
            for r in page.records:
                if not (r.updateTime == pos.mark and pos.seen.get(r.orderNo) == state_hash(r)):
                    out.append(r)
            records += page.records
            if len(page.records) < self.size:
                break
            page_no += 1
        if not records:
            return FeedPage(out, position or "", False)
        last = records[-1].updateTime
        seen = {r.orderNo: state_hash(r) for r in records if r.updateTime == last}
        if last == pos.mark:
            seen = pos.seen | seen
        return FeedPage(out, FeedPosition(last, seen).encode(), False)


async def run_plan(reader_cls, plan, page_size: int) -> str | None:
    """Drive a reader through the plan; the first violated promise, or None."""
    source = ListSource()
    reader = reader_cls(source.fetch_page, page_size)
    position: str | None = None
    yielded: set[tuple[str, str]] = set()
    for period in [*plan, []]:
        source.pending = [list(batch) for batch in period]
        reads = 0
        while True:  # busy while mutations are pending, then until a quiet read ends it
            quiet = not source.pending
            page = await reader.read(position)
            position = page.position or position
            for order in page.records:
                state = (order.orderNo, state_hash(order))
                if state in yielded:
                    return f"repeated {state}"
                yielded.add(state)
            reads += 1
            if quiet and not page.more:
                break
            if reads > 200:
                return "never caught up"
        if missed := source.current_states() - yielded:
            return f"missed {sorted(missed)[:3]}"
        if invented := yielded - source.ever - source.current_states():
            return f"yielded states that never existed {sorted(invented)[:3]}"
    return None


def holds(reader_cls, plan, page_size: int) -> bool:
    return asyncio.run(run_plan(reader_cls, plan, page_size)) is None


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans, page_size=st.integers(5, 7))
def test_reader_misses_no_state_and_repeats_none_under_page_shifts(plan, page_size):
    assert asyncio.run(run_plan(FeedReader12345, plan, page_size)) is None


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=crowded_plans, page_size=st.integers(5, 7))
def test_reader_survives_bursts_of_shifts_inside_a_crowded_second(plan, page_size):
    assert asyncio.run(run_plan(FeedReader12345, plan, page_size)) is None


# 12 orders in one second, page size 5; before page 2 the first order changes a second
# later, so the list shifts one place back under the walker.
SHIFT_UNDER_PAGE_2 = [[[("new", 12)], [("tick", 0), ("touch", 0)]]]


def test_property_catches_a_naive_page_walker():
    """The property can fail: a `pageNo` walker skips the record a shift moves back."""
    failure = asyncio.run(run_plan(NaiveReader, SHIFT_UNDER_PAGE_2, 5))
    assert failure is not None and failure.startswith("missed")
    assert asyncio.run(run_plan(FeedReader12345, SHIFT_UNDER_PAGE_2, 5)) is None


def test_a_gap_between_two_page_requests_makes_the_walk_start_again():
    """Two orders before the walk's anchor move away between requests: the next request
    begins after the anchor, which the reader notices instead of skipping order 5."""
    source = ListSource()
    source.orders = {f"BJ12345-{i:06d}": (0, 0) for i in range(12)} | {"BJ12345-000099": (1, 0)}
    source.now = 2
    first_five = [source.order(f"BJ12345-{i:06d}") for i in range(5)]
    position = FeedPosition(BASE, {o.orderNo: state_hash(o) for o in first_five}, closed=True)
    source.pending = [[], [("touch", 0), ("touch", 1)]]
    page = asyncio.run(FeedReader12345(source.fetch_page, 5).read(position.encode()))
    assert "BJ12345-000005" in {o.orderNo for o in page.records}


def test_an_order_changed_behind_the_walk_in_the_open_second_is_not_lost():
    """While the reader walks the current (still open) second, an old order changes in it
    and sorts before the walk's place; the second then closes. The walk that saw the
    second close must not certify it: the reader walks again and finds the order."""
    source = ListSource()
    source.orders = {"BJ12345-000000": (0, 0)} | {f"BJ12345-{i:06d}": (1, 0) for i in range(1, 13)}
    source.now = 1
    source.pending = [[], [("touch", 0)], [("tick", 0), ("touch", 12)]]
    start = FeedPosition(BASE + timedelta(seconds=1)).encode()
    page = asyncio.run(FeedReader12345(source.fetch_page, 5).read(start))
    assert (source.order("BJ12345-000000")) in page.records


def test_450_orders_in_one_second_are_read_once_with_page_size_200():
    source = ListSource()
    source.orders = {f"BJ12345-{i:06d}": (0, 0) for i in range(450)}
    reader = FeedReader12345(source.fetch_page, 200)
    first = asyncio.run(reader.read(None))
    assert len(first.records) == 450
    assert len({o.orderNo for o in first.records}) == 450
    again = asyncio.run(reader.read(first.position))
    assert again.records == []


@pytest.mark.parametrize(
    ("anchor", "size", "expected"),
    [
        pytest.param(199, 200, (2, 199), id="after-a-full-first-page"),
        pytest.param(397, 200, (3, 198), id="third-request-overlaps"),
        pytest.param(59, 5, None, id="no-overlap-possible-when-anchor+1-is-lcm"),
    ],
)
def test_next_window_starts_at_or_before_the_anchor(anchor, size, expected):
    window = next_window(anchor, size)
    assert window == expected
    if window:
        page_no, page_size = window
        assert (page_no - 1) * page_size <= anchor < page_no * page_size - 1
