"""`Hotline385`: a partner's Open311 server (12385) behind the engine's
`adapters.base.Hotline` seam."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Final

import aiohttp
import structlog

from adapters.base import Action, ActionResult, FeedPage
from adapters.errors import Rejected, TransientError
from adapters.open311.client import DEFAULT_SYSTEM, Open311Client
from adapters.open311.config import Open311Config
from adapters.open311.feed import UpdatesFeedReader, UpdatesPosition
from adapters.ratelimit import RequestBudget
from schemas.open311 import CreateRequestForm, PostUpdateForm, ServiceRequest, UpdateRecord

log = structlog.get_logger(__name__)
ACTION_KINDS: Final = ("create_request", "post_update")
FEED: Final = "updates"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Hotline385:
    """An Open311 partner as the engine sees it: one feed (`updates`, records
    `schemas.open311.UpdateRecord`), requests, two actions.

    Actions:
    - `create_request` (body `CreateRequestForm`): `POST requests`; a realtime service
      answers the id at once, a batch one a token: the adapter waits `token_wait_s` (12385
      makes the id 5 s after the POST), then asks `GET tokens/{token}` up to `token_polls`
      times `token_poll_interval_s` apart, and raises `TransientError` if there is still
      no id: the retry posts the same `external_ref`, which 12385 answers with the same
      token. 12385 answers a repeated `external_ref` as it answered the first time, so a
      replay is not told apart (`replayed` is False).
    - `post_update` (body `PostUpdateForm`, `target` its request id): `POST
      servicerequestupdates` with the body's own `update_id` and `updated_datetime`. A
      replay answers the original update id, indistinguishable from a first answer, so
      `replayed` is False here too; the same `update_id` with other values is a
      `Conflict` (permanent: the bridge sent two different bodies under one key).
      `ActionResult.native_id` is the request id, `record` 12385's update id answer.

    Every call (feed, fetch, actions, ping) spends the one `budget`: 10 calls a minute
    by default, so a batch create costs two calls, a feed page one plus one per
    referral it reads. Takes an injected session; `sleep` and `now` are injectable so
    that tests can run on a simulated clock.
    """

    feeds: tuple[str, ...] = (FEED,)
    window_current: bool = False
    """The feed is a history of updates; only `fetch` shows a request as it is now."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: Open311Config,
        *,
        system: str = DEFAULT_SYSTEM,
        budget: RequestBudget | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.system = system
        self.config = config
        self.client = Open311Client(session, config, system=system, budget=budget)
        self.budget = self.client.budget
        self._sleep = sleep
        self._reader = UpdatesFeedReader(
            self.client,
            now=now,
            overlap=timedelta(seconds=config.overlap_s),
            first_lookback=timedelta(seconds=config.first_lookback_s),
            max_referral_reads=config.max_referral_reads,
        )

    async def read_feed(self, feed: str, position: str | None) -> FeedPage[UpdateRecord]:
        """The next updates after `position`; see `adapters.open311.feed`."""
        self._check_feed(feed)
        return await self._reader.read(position)

    def window_position(self, feed: str, since: datetime) -> str:
        """Windows from `since` on, nothing seen."""
        self._check_feed(feed)
        return UpdatesPosition.since(since).encode()

    def read_up_to(self, feed: str, position: str | None) -> datetime | None:
        """The next window's start: every update stamped before it was read."""
        self._check_feed(feed)
        return UpdatesPosition.decode(position).start if position else None

    async def fetch(self, native_id: str) -> ServiceRequest:
        """`GET requests/{id}` with our key; raises `NotFound`."""
        return await self.client.request(native_id)

    async def perform(self, action: Action) -> ActionResult:
        """`create_request` or `post_update` (see the class docstring). A request the
        adapter cannot send is `Rejected` (parked), as 12385 would refuse it."""
        body = action.body
        if action.kind == "create_request":
            if not isinstance(body, CreateRequestForm):
                raise Rejected(
                    self.system, f"create_request needs a CreateRequestForm, got {_name(body)}"
                )
            return await self._create(body)
        if action.kind == "post_update":
            if not isinstance(body, PostUpdateForm):
                raise Rejected(
                    self.system, f"post_update needs a PostUpdateForm, got {_name(body)}"
                )
            if action.target is not None and action.target != body.service_request_id:
                raise Rejected(self.system, "post_update: target and service_request_id differ")
            posted = await self.client.post_update(body)
            return ActionResult(body.service_request_id, False, posted)
        raise Rejected(self.system, f"unknown action kind {action.kind!r}")

    async def _create(self, form: CreateRequestForm) -> ActionResult:
        created = await self.client.create_request(form)
        if created.service_request_id:
            return ActionResult(created.service_request_id, False, created)
        if not created.token:
            raise Rejected(self.system, "POST requests answered neither an id nor a token")
        cfg = self.config
        await self._sleep(cfg.token_wait_s)
        for attempt in range(cfg.token_polls):
            if attempt:
                await self._sleep(cfg.token_poll_interval_s)
            answer = await self.client.token(created.token)
            if answer.service_request_id:
                return ActionResult(answer.service_request_id, False, answer)
        log.warning("token.pending", system=self.system, token=created.token)
        raise TransientError(
            self.system,
            f"token {created.token} still has no request id after {cfg.token_polls} polls",
        )

    async def ping(self) -> None:
        """`GET services.json`: one call, authenticated like every 12385 call; one of
        the 10 a minute that every task of the node shares, so probe sparingly."""
        await self.client.services()

    async def aclose(self) -> None:
        """Nothing to release: the session belongs to the caller."""

    def _check_feed(self, feed: str) -> None:
        if feed != FEED:
            raise ValueError(f"{self.system} has no feed {feed!r}")


def _name(value: object) -> str:
    return value.__class__.__name__
