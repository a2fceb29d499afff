"""The `updates` feed: rolling `servicerequestupdates` windows with an overlap, deduplicated
by `update_id`, so that each update is yielded once.

12385 has no cursor: `GET servicerequestupdates` takes a window `[start, end]` of at most
24 hours (inclusive, on `updated_datetime`), answers oldest first and at most 1,000. The
reader asks for `[start, min(start + 24 h, now)]`, then:

- the window was read whole: the next one starts `overlap_s` before its end (a clock
  skewed between us and 12385, or an update written late with an earlier time, still
  falls in the next window), never earlier than this one started;
- the page stopped early (1,000 answered, or the `max_referral_reads` budget was spent
  before the next referral): the next window starts at the time of the first update not
  yet taken, exactly (no overlap: that narrows the window and reads on).

`seen` keeps the ids (with their times) of the updates taken at or after the next start,
and drops them when they are read again. The position is opaque JSON text:

    {"v": 1, "start": "<ISO 8601>", "seen": [["<update_id>", "<ISO 8601>"], ...]}

The feed holds every update our key sees, our own posts included (12385 lists them
under its own ids): the engine tells them apart by the id `post_update` answered
(`ActionResult.record.update_id`), or by their status and request.

It moves only through the returned `FeedPage` (the engine stores it with what it made of
the records). `more` is true while the window end is behind now or a page stopped early.
One limit is accepted: more than 1,000 updates visible to us within one second would
stall the reader at that second (it then reports `more=False`, not a busy loop).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from adapters.base import FeedPage
from adapters.errors import NotFound
from adapters.open311.client import Open311Client
from schemas.open311 import LIST_MAX, WINDOW_MAX, RequestUpdate, ServiceRequest, UpdateRecord

_FORMAT = 1
REFERRAL = "internal_referral"


@dataclass(frozen=True)
class UpdatesPosition:
    """Where the reader stands; see the module docstring for the encoding."""

    start: datetime
    seen: dict[str, datetime] = field(default_factory=dict)

    @classmethod
    def decode(cls, text: str) -> UpdatesPosition:
        data = json.loads(text)
        if data.get("v") != _FORMAT:
            raise ValueError(f"unknown Open311 feed position format: {data.get('v')!r}")
        seen = {i: datetime.fromisoformat(t) for i, t in data["seen"]}
        return cls(datetime.fromisoformat(data["start"]), seen)

    @classmethod
    def since(cls, when: datetime) -> UpdatesPosition:
        if when.tzinfo is None:
            raise ValueError("a feed start must be timezone-aware")
        return cls(_whole(when))

    def encode(self) -> str:
        seen = sorted([i, t.isoformat()] for i, t in self.seen.items())
        return json.dumps(
            {"v": _FORMAT, "start": self.start.isoformat(), "seen": seen}, separators=(",", ":")
        )


class UpdatesFeedReader:
    """Reads the `updates` feed of one api_key from an `UpdatesPosition`."""

    def __init__(
        self,
        client: Open311Client,
        *,
        now: Callable[[], datetime],
        overlap: timedelta,
        first_lookback: timedelta,
        max_referral_reads: int,
    ) -> None:
        self._client = client
        self._now = now
        self._overlap = overlap
        self._first_lookback = first_lookback
        self._max_reads = max_referral_reads

    def first_position(self) -> UpdatesPosition:
        return UpdatesPosition(_whole(self._now() - self._first_lookback))

    async def read(self, position: str | None) -> FeedPage[UpdateRecord]:
        """The updates after `position` (None: from `first_lookback` ago), each once; a
        referral with the request as we see it. Raises the client's errors (the position
        is then unchanged: the same window is read again next time)."""
        pos = UpdatesPosition.decode(position) if position else self.first_position()
        now = _whole(self._now())
        end = max(pos.start, min(pos.start + WINDOW_MAX, now))
        items = await self._client.updates(pos.start, end)
        records: list[UpdateRecord] = []
        taken: list[RequestUpdate] = []
        stop: datetime | None = items[-1].updated_datetime if len(items) >= LIST_MAX else None
        reads = 0
        for update in items:
            if update.update_id in pos.seen:
                taken.append(update)
                continue
            request = None
            if update.status == REFERRAL:
                if reads >= self._max_reads:
                    stop = update.updated_datetime
                    break
                reads += 1
                request = await self._referred(update.service_request_id)
            records.append(UpdateRecord(update=update, request=request))
            taken.append(update)
        if stop is not None:
            start = stop
        else:
            start = max(pos.start, end - self._overlap)
        seen = {i: t for i, t in pos.seen.items() if t >= start}
        seen |= {u.update_id: u.updated_datetime for u in taken if u.updated_datetime >= start}
        new = UpdatesPosition(start, seen)
        more = (stop is not None and (bool(records) or start > pos.start)) or (
            stop is None and end < now
        )
        return FeedPage(records, new.encode(), more=more)

    async def _referred(self, request_id: str) -> ServiceRequest | None:
        """The request a referral names, as we see it (None if 12385 no longer has it)."""
        try:
            return await self._client.request(request_id)
        except NotFound:
            return None


def _whole(when: datetime) -> datetime:
    """12385 times have whole seconds, and so do windows (a window sent as whole seconds
    but kept with a fraction would not match the `seen` it keeps)."""
    return when.replace(microsecond=0)
