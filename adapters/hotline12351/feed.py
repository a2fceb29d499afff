"""The 12351 change feed reader: cursor paging, the 410 restart, and dedup around it.

The feed holds one entry per change, each the case as it stood right after that change;
`(id, version)` names a change. A cursor lives 7 days; after that 12351 answers 410 and
the reader restarts with `GET /cases?changed_since=<mark>` (inclusive). So that the
restart neither loses nor repeats a change, the position keeps, besides the cursor:

- `mark`: the latest `updated_at` read so far (12351 stamps changes in feed order, so
  every change older than the mark was read before);
- `seen`: the `(id, version)` pairs read whose `updated_at` equals the mark exactly.

After a restart, entries older than the mark and entries in `seen` are dropped; the rest
are new. The position is opaque JSON text:

    {"v": 1, "cursor": "<cursor or null>", "mark": "<RFC 3339 or null>",
     "seen": [["<id>", <version>], ...]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from adapters.base import FeedPage
from adapters.hotline12351.client import Client12351, CursorExpired
from schemas.hotline12351 import Case, CasePage

_FORMAT = 1


@dataclass(frozen=True)
class CasesPosition:
    """Where the reader stands; see the module docstring for the encoding."""

    cursor: str | None = None
    mark: datetime | None = None
    seen: frozenset[tuple[str, int]] = field(default_factory=frozenset)

    @classmethod
    def decode(cls, text: str | None) -> CasesPosition:
        if not text:
            return cls()
        data = json.loads(text)
        if data.get("v") != _FORMAT:
            raise ValueError(f"unknown 12351 feed position format: {data.get('v')!r}")
        mark = datetime.fromisoformat(data["mark"]) if data.get("mark") else None
        return cls(data.get("cursor"), mark, frozenset((i, int(v)) for i, v in data["seen"]))

    @classmethod
    def since(cls, when: datetime) -> CasesPosition:
        """A position that reads every change from `when` on (inclusive)."""
        if when.tzinfo is None:
            raise ValueError("a feed mark must be timezone-aware")
        return cls(None, when, frozenset())

    def encode(self) -> str:
        return json.dumps(
            {
                "v": _FORMAT,
                "cursor": self.cursor,
                "mark": self.mark.isoformat() if self.mark else None,
                "seen": sorted([i, v] for i, v in self.seen),
            },
            separators=(",", ":"),
        )

    def is_new(self, case: Case) -> bool:
        """False for a change this position has already read (after a restart)."""
        if self.mark is None:
            return True
        if case.updated_at < self.mark:
            return False
        return case.updated_at > self.mark or (case.id, case.version) not in self.seen

    def after(self, cursor: str, cases: list[Case]) -> CasesPosition:
        """The position once `cases` (in feed order) have been read, resuming at `cursor`."""
        mark, seen = self.mark, set(self.seen)
        for case in cases:
            if mark is None or case.updated_at > mark:
                mark, seen = case.updated_at, set()
            if case.updated_at == mark:
                seen.add((case.id, case.version))
        return CasesPosition(cursor, mark, frozenset(seen))


class CasesFeedReader:
    """Reads `GET /cases` pages from a `CasesPosition`."""

    def __init__(self, client: Client12351, limit: int | None = None) -> None:
        self._client = client
        self._limit = limit

    async def read(self, position: str | None) -> FeedPage[Case]:
        """The next page of changes after `position` (None: from the very start).

        An empty page that keeps the cursor means nothing new (`more=False`). A 410
        restarts from the mark without losing or repeating a change. Raises the
        client's errors otherwise.
        """
        pos = CasesPosition.decode(position)
        try:
            page = await self._page(pos)
        except CursorExpired:
            if pos.mark is None:
                # Nothing has been read yet: the start of the feed is the same place.
                page = await self._client.list_cases(None, self._limit)
            else:
                page = await self._client.changed_since(pos.mark, self._limit)
        records = [case for case in page.items if pos.is_new(case)]
        new = pos.after(page.next_cursor, page.items)
        return FeedPage(records, new.encode(), more=bool(page.items))

    async def _page(self, pos: CasesPosition) -> CasePage:
        if pos.cursor is not None:
            return await self._client.list_cases(pos.cursor, self._limit)
        if pos.mark is not None:
            return await self._client.changed_since(pos.mark, self._limit)
        return await self._client.list_cases(None, self._limit)
