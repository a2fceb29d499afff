"""Reading a 12345 list feed (`/orders/dispatched`, `/orders/created`) so that no order
state is missed and none is yielded twice.

What 12345 gives: records ordered by (`updateTime`, `orderNo`), `updatedSince` inclusive,
one-second resolution, many orders in one second (possibly more than a page), and records
that move while a client pages (an order changed mid-scan jumps to the end, so everything
after it shifts one place earlier and a plain `pageNo` walk skips a record).

Why this reader is safe:

1. One response is one consistent snapshot. 12345 stamps every change with its current
   time, so once a record at second L exists no record can later get a time before L:
   in a response whose last record is at L, every second before L is *closed* and the
   response holds all of it.
2. So a read always re-queries from the mark with `pageNo=1`. If that page reaches past
   the mark's second, everything before its last second L is done: the mark moves to L and
   the position remembers which states at L were yielded (`seen`). No `pageNo` walk, so
   no shift can hurt, and the inclusive `updatedSince` only brings back `seen` states.
3. Only when a whole page sits in the mark's second does the reader walk deeper. Every
   deeper request is a (`pageNo`, `pageSize`) chosen to *start at or before* the last
   record already read, and its first record must sort at or before that record: then it
   continues the previous response without a gap however records moved in between;
   otherwise the walk starts again from page 1. A walk may move the mark past the second
   only if the second was already closed when the walk began (a later record had been
   seen), because until then new orders can still land in it behind the walk.

A state is the whole record (`updateTime` included): a changed order is yielded again.
The position is JSON text: `{"v": 1, "mark": "yyyy-MM-dd HH:mm:ss" | null, "seen":
{orderNo: state hash}, "closed": bool}`; `seen` holds only states at the mark's second, so
it is bounded by how many orders 12345 changes in one second.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from adapters.base import FeedPage
from schemas.hotline12345 import TIME_FORMAT, Order, Page

FetchPage = Callable[[datetime | None, int, int], Awaitable[Page[Order]]]
"""`fetch_page(updated_since, page_no, page_size)`: one list request."""

POSITION_VERSION: Final = 1


def state_hash(order: Order) -> str:
    """A short digest of the whole record: equal for the same state of an order."""
    raw = json.dumps(
        order.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass
class FeedPosition:
    """Where a feed read resumes: the mark second, the states at it already yielded, and
    whether the mark's second is known to be closed."""

    mark: datetime | None = None
    seen: dict[str, str] = field(default_factory=dict)
    closed: bool = False

    def encode(self) -> str:
        return json.dumps(
            {
                "v": POSITION_VERSION,
                "mark": self.mark.strftime(TIME_FORMAT) if self.mark else None,
                "seen": self.seen,
                "closed": self.closed,
            },
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, text: str | None) -> FeedPosition:
        """Raises `ValueError` on text this reader did not write."""
        if not text:
            return cls()
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("v") != POSITION_VERSION:
            raise ValueError(f"not a 12345 feed position: {text[:80]!r}")
        mark = datetime.strptime(data["mark"], TIME_FORMAT) if data.get("mark") else None
        return cls(mark, dict(data.get("seen") or {}), bool(data.get("closed")))


def window_position(since: datetime) -> str:
    """A position that reads the feed from `since` (12345's wall clock, naive) on, with
    nothing seen: every order updated at or after it comes back (a reconciliation's
    window; the inclusive `updatedSince` covers the second of `since` itself)."""
    return FeedPosition(mark=since.replace(microsecond=0)).encode()


def next_window(anchor: int, page_size: int) -> tuple[int, int] | None:
    """(`pageNo`, `pageSize`) of the request that starts at or before index `anchor` and
    reaches furthest past it, or None when none reaches past it (only when `anchor + 1` is
    a multiple of every size 2..page_size: never for page sizes of 20 or more)."""
    best: tuple[int, int, int] | None = None
    for size in range(page_size, 1, -1):
        page_no = anchor // size + 1
        end = page_no * size
        if end > anchor + 1 and (best is None or end > best[2]):
            best = (page_no, size, end)
    return (best[0], best[1]) if best else None


def _key(order: Order) -> tuple[datetime, str]:
    return (order.updateTime, order.orderNo)


class FeedReader12345:
    """Reads one 12345 list feed through `fetch_page`; see the module docstring."""

    def __init__(self, fetch_page: FetchPage, page_size: int = 200, *, max_pages: int = 50):
        if page_size < 2 or max_pages < 2:
            raise ValueError("page_size and max_pages must be at least 2")
        self._fetch_page = fetch_page
        self._page_size = page_size
        self._max_pages = max_pages

    async def read(self, position: str | None) -> FeedPage[Order]:
        """The states changed since `position` and the position after them. Raises what
        `fetch_page` raises (the position is then unchanged) and `ValueError` on a
        position it did not write."""
        return await _Read(self, FeedPosition.decode(position)).run()


class _Read:
    """One `read()`: its page budget and what it has yielded so far."""

    def __init__(self, reader: FeedReader12345, start: FeedPosition) -> None:
        self.fetch_page = reader._fetch_page
        self.size = reader._page_size
        self.budget = reader._max_pages
        self.start = start
        self.mark = start.mark
        self.seen = dict(start.seen)
        self.out: list[Order] = []
        self._out_keys: set[tuple[str, str]] = set()

    async def fetch(self, page_no: int, page_size: int) -> list[Order]:
        self.budget -= 1
        page = await self.fetch_page(self.mark, page_no, page_size)
        return page.records

    def take(self, order: Order) -> None:
        digest = state_hash(order)
        at_mark = order.updateTime == self.mark
        if at_mark and self.seen.get(order.orderNo) == digest:
            return
        if (order.orderNo, digest) in self._out_keys:
            return
        self._out_keys.add((order.orderNo, digest))
        self.out.append(order)
        if at_mark:
            self.seen[order.orderNo] = digest

    def done(self, position: FeedPosition, more: bool) -> FeedPage[Order]:
        return FeedPage(self.out, position.encode(), more)

    async def run(self) -> FeedPage[Order]:
        raw = await self.fetch(1, self.size)
        records = [r for r in raw if self.mark is None or r.updateTime >= self.mark]
        if not records:
            return self.done(self.start, more=False)
        if self.mark is None:
            self.mark = records[0].updateTime
        last, full = records[-1].updateTime, len(raw) >= self.size
        if last > self.mark or not full:
            for order in records:
                self.take(order)
            seen = {r.orderNo: state_hash(r) for r in records if r.updateTime == last}
            closed = self.start.closed and last == self.mark
            return self.done(FeedPosition(last, seen, closed), more=full)
        return await self.crowded_second(raw)

    async def crowded_second(self, first: list[Order] | None) -> FeedPage[Order]:
        """More than a page of records sits at the mark's second: walk it (see 3.)."""
        assert self.mark is not None
        closed = self.start.closed
        while True:
            was_closed = closed
            outcome, past = await self.walk(first)
            first = None
            closed = closed or past is not None
            if outcome == "past" and was_closed and past:
                for order in past:
                    self.take(order)
                last = past[-1].updateTime
                seen = {r.orderNo: state_hash(r) for r in past if r.updateTime == last}
                return self.done(FeedPosition(last, seen), more=True)
            if outcome == "end":
                return self.done(FeedPosition(self.mark, self.seen, closed), more=False)
            if self.budget <= 0:
                return self.done(FeedPosition(self.mark, self.seen, closed), more=True)

    async def walk(self, first: list[Order] | None) -> tuple[str, list[Order] | None]:
        """One gap-free walk from page 1 through the mark's second: ("past", the records
        after the second in the response that reached them), ("end", None) when the feed
        ended inside the second, ("gap", None) or ("budget", None) when it stopped."""
        mark = self.mark
        assert mark is not None
        response = first if first is not None else await self.fetch(1, self.size)
        offset, size = 0, self.size
        new = [r for r in response if r.updateTime >= mark]
        while True:
            for order in new:
                if order.updateTime == mark:
                    self.take(order)
            past = [r for r in new if r.updateTime > mark]
            if past:
                return "past", past
            if len(response) < size:
                return "end", None
            anchor, anchor_key = offset + len(response) - 1, _key(response[-1])
            window = next_window(anchor, self.size)
            if window is None:
                return "gap", None
            if self.budget <= 0:
                return "budget", None
            page_no, size = window
            offset = (page_no - 1) * size
            response = await self.fetch(page_no, size)
            if not response or _key(response[0]) > anchor_key:
                return "gap", None
            new = [r for r in response if _key(r) > anchor_key]
