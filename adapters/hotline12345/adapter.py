"""12345 as the engine sees it: the `adapters.base.Hotline` adapter over `Client12345`
and the two feed readers."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError

from adapters.base import Action, ActionResult, FeedPage
from adapters.errors import Rejected, describe_validation
from adapters.hotline12345.client import SYSTEM, Client12345
from adapters.hotline12345.config import Hotline12345Config
from adapters.hotline12345.feed import FeedPosition, FeedReader12345, window_position
from adapters.ratelimit import RequestBudget
from schemas.hotline12345 import (
    CreateOrderRequest,
    ExtensionRequest,
    Order,
    ReplyRequest,
    ReturnRequest,
    SignRequest,
)

M = TypeVar("M", bound=BaseModel)
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
"""12345's times are Beijing wall-clock times (no daylight saving)."""


class Hotline12345:
    """12345 as the engine sees it (`adapters.base.Hotline`).

    Feeds: `dispatched` (orders dispatched to our unit) and `created` (orders we created).
    Actions: `create_order` (the action key is the `requestId`), `sign`, `reply`, `return`,
    `extension` (on `action.target`). `sign` without a body signs as `handler_name`.
    Every call of the adapter (feeds, fetches, actions, pings) spends one `budget`.
    """

    system = SYSTEM
    feeds: tuple[str, ...] = ("dispatched", "created")
    window_current: bool = True
    """The lists return each order as it stands now (12345 stamps every change with its
    time), so an order a window lists needs no `fetch` as well."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: Hotline12345Config,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        budget: RequestBudget | None = None,
    ) -> None:
        self.config = config
        self.client = Client12345(session, config, monotonic=monotonic, budget=budget)
        self.budget = self.client.budget
        self._readers = {
            "dispatched": FeedReader12345(
                self.client.list_dispatched, config.page_size, max_pages=config.feed_max_pages
            ),
            "created": FeedReader12345(
                self.client.list_created, config.page_size, max_pages=config.feed_max_pages
            ),
        }

    async def read_feed(self, feed: str, position: str | None) -> FeedPage[Order]:
        try:
            reader = self._readers[feed]
        except KeyError:
            raise ValueError(f"12345 has no feed {feed!r}; feeds: {self.feeds}") from None
        return await reader.read(position)

    def window_position(self, feed: str, since: datetime) -> str:
        """`since` (aware) on 12345's wall clock (Asia/Shanghai), nothing seen."""
        if feed not in self._readers:
            raise ValueError(f"12345 has no feed {feed!r}; feeds: {self.feeds}")
        if since.tzinfo is None:
            raise ValueError("a window starts at an aware datetime")
        return window_position(since.astimezone(BEIJING).replace(tzinfo=None))

    def read_up_to(self, feed: str, position: str | None) -> datetime | None:
        """The mark second (aware): changes within it may still come (12345 stamps to the
        second), every earlier one was read."""
        mark = FeedPosition.decode(position).mark
        return None if mark is None else mark.replace(tzinfo=BEIJING)

    async def fetch(self, native_id: str) -> Order:
        return await self.client.get_order(native_id)

    async def perform(self, action: Action) -> ActionResult:
        kind, body = action.kind, action.body
        if kind == "create_order":
            request_body = _as(CreateOrderRequest, body).model_copy(
                update={"requestId": action.key}
            )
            order_no, replayed = await self.client.create_order(request_body)
            return ActionResult(native_id=order_no, replayed=replayed)
        target = action.target
        if not target:
            raise Rejected(SYSTEM, f"{kind} needs a target order number")
        if kind == "sign":
            sign = SignRequest(handler=self.config.handler_name) if body is None else body
            await self.client.sign(target, _as(SignRequest, sign))
        elif kind == "reply":
            await self.client.reply(target, _as(ReplyRequest, body))
        elif kind == "return":
            await self.client.return_order(target, _as(ReturnRequest, body))
        elif kind == "extension":
            await self.client.extension(target, _as(ExtensionRequest, body))
        else:
            raise Rejected(SYSTEM, f"unknown action kind {kind!r}")
        return ActionResult(native_id=target)

    async def ping(self) -> None:
        await self.client.token()

    async def aclose(self) -> None:
        """Nothing to release: the session is the caller's."""


def _as(model: type[M], body: Any) -> M:
    if isinstance(body, model):
        return body
    try:
        return model.model_validate(body.model_dump() if isinstance(body, BaseModel) else body)
    except ValidationError as exc:
        raise Rejected(SYSTEM, f"invalid {model.__name__}: {describe_validation(exc)}") from exc
