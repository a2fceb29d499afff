"""`Hotline12351`: the 12351 case system behind the engine's `adapters.base.Hotline` seam."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

import aiohttp

from adapters.base import Action, ActionResult, FeedPage
from adapters.errors import Rejected, StaleVersion
from adapters.hotline12351.client import SYSTEM, Client12351
from adapters.hotline12351.config import Hotline12351Config
from adapters.hotline12351.feed import CasesFeedReader, CasesPosition
from adapters.ratelimit import RequestBudget
from schemas.hotline12351 import (
    EVENT_BODIES,
    Case,
    CreateCaseRequest,
    EventBody,
    event_type_of,
)

EVENT_KINDS: Final = tuple(EVENT_BODIES)
ACTION_KINDS: Final = ("create_case", *EVENT_KINDS)


class Hotline12351:
    """The 12351 hotline as the engine sees it: one feed (`cases`), cases, events.

    Takes an injected `aiohttp.ClientSession`; `aclose()` leaves it open (its owner
    closes it). Every call of the adapter (feed, fetches, actions, pings) spends one
    `budget`.
    """

    system: str = SYSTEM
    feeds: tuple[str, ...] = ("cases",)
    window_current: bool = False
    """The feed is a history: an entry is the case as it stood after one change, and a
    change made without an entry is not in it; only `fetch` shows a case as it is now."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: Hotline12351Config,
        *,
        budget: RequestBudget | None = None,
    ) -> None:
        self.client = Client12351(session, config, budget=budget)
        self.budget = self.client.budget
        self._reader = CasesFeedReader(self.client, config.page_limit)

    async def read_feed(self, feed: str, position: str | None) -> FeedPage[Case]:
        """The next changes of `cases` after `position`; see `adapters.hotline12351.feed`."""
        if feed != "cases":
            raise ValueError(f"12351 has no feed {feed!r}")
        return await self._reader.read(position)

    def window_position(self, feed: str, since: datetime) -> str:
        """The feed restarted at `since` (`changed_since`, inclusive), nothing seen."""
        if feed != "cases":
            raise ValueError(f"12351 has no feed {feed!r}")
        return CasesPosition.since(since).encode()

    def read_up_to(self, feed: str, position: str | None) -> datetime | None:
        """Just after the mark: the changes stamped at the mark itself were read (12351
        stamps in feed order, to the millisecond)."""
        mark = CasesPosition.decode(position).mark
        return None if mark is None else mark + timedelta(milliseconds=1)

    async def fetch(self, native_id: str) -> Case:
        case, _ = await self.client.get_case(native_id)
        return case

    async def perform(self, action: Action) -> ActionResult:
        """`create_case` (body `CreateCaseRequest`) or one of the event kinds (body the
        event's body model, `target` the case id).
        `action.key` is sent as `Idempotency-Key`. A request the adapter cannot send is
        `Rejected` (parked), as 12351 would refuse it."""
        body = action.body
        if action.kind == "create_case":
            if not isinstance(body, CreateCaseRequest):
                raise Rejected(SYSTEM, f"create_case needs a CreateCaseRequest, got {_name(body)}")
            case, replayed = await self.client.create_case(body, action.key)
            return ActionResult(case.id, replayed, case)
        if action.kind not in EVENT_KINDS:
            raise Rejected(SYSTEM, f"unknown action kind {action.kind!r}")
        if not action.target:
            raise Rejected(SYSTEM, f"{action.kind} needs the target case id")
        if not isinstance(body, EVENT_BODIES[action.kind]):
            raise Rejected(SYSTEM, f"{action.kind} cannot take a {_name(body)} body")
        case, replayed = await self.client.post_event(action.target, action.kind, body, action.key)
        return ActionResult(case.id, replayed, case)

    async def update_with_retry_on_412(
        self,
        case_id: str,
        decide: Callable[[Case], EventBody | None],
        idempotency_key: str,
        *,
        attempts: int = 3,
    ) -> ActionResult | None:
        """Read the case, let `decide` choose an event from it (the body model of its type;
        None: nothing to do) and send it with `If-Match` on the version read; on 412 read
        again and decide again, at most `attempts` times, then raise `StaleVersion`.

        12351 stores no response for a 412, so the same key serves every attempt and a
        retry after success replays the original answer.
        """
        for _ in range(attempts):
            case, version = await self.client.get_case(case_id)
            body = decide(case)
            if body is None:
                return None
            try:
                updated, replayed = await self.client.post_event(
                    case_id, event_type_of(body), body, idempotency_key, if_match=version
                )
            except StaleVersion:
                continue
            return ActionResult(updated.id, replayed, updated)
        raise StaleVersion(SYSTEM, f"case {case_id} kept changing over {attempts} attempts")

    async def ping(self) -> None:
        """One cheap authenticated call (a lookup by an impossible case number)."""
        await self.client.find_by_case_no("ping")

    async def aclose(self) -> None:
        """Nothing to release: the session belongs to the caller."""


def _name(value: object) -> str:
    return value.__class__.__name__
