"""The seam the engine uses to talk to a hotline: a small typed Protocol.

A hotline adapter reads its change feeds from an opaque position, fetches one record,
performs one action with an idempotency key, pings, and closes. It returns `schemas`
models and raises only the `adapters.errors` tree; the engine never sees aiohttp types
or native status codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

R = TypeVar("R")


@dataclass(frozen=True)
class FeedPage(Generic[R]):
    """Records read from a feed and the position to resume from after them.

    `records` never repeats a record state the reader already yielded before the
    position it was given; `position` is opaque text the engine stores in the same
    transaction as what it made of the records. `more` says reading again at once
    may return more (the engine then does not wait for its poll interval).
    """

    records: list[R]
    position: str
    more: bool = False


@dataclass(frozen=True)
class Action:
    """One write to a hotline.

    `kind` names the call (12345: `create_order`, `sign`, `reply`, `return`, `extension`;
    12351: `create_case`, `external_ref`, `partner_update`, `callback_result`, `withdrawn`,
    `reopened`); `key` is deterministic for the referral and the action and is sent where
    the system takes one (12345 `requestId`, 12351 `Idempotency-Key`); `target` is the
    native id the action applies to (None for a create); `body` is the native request.
    """

    kind: str
    key: str
    target: str | None
    body: BaseModel


@dataclass(frozen=True)
class ActionResult:
    """What an action did: the native id it concerned (the created one for a create),
    whether the other side answered as a replay of an earlier identical request, and the
    native record afterwards when the call returned it."""

    native_id: str
    replayed: bool = False
    record: Any | None = None


@runtime_checkable
class Hotline(Protocol):
    """A hotline as the engine sees it."""

    system: str
    feeds: tuple[str, ...]
    window_current: bool
    """Whether `read_feed` from a `window_position` yields records as they stand now
    (then a record it lists needs no `fetch`), or a history of their changes."""

    async def read_feed(self, feed: str, position: str | None) -> FeedPage[Any]:
        """Read the next page of `feed` after `position` (None: from the start)."""
        ...

    def window_position(self, feed: str, since: datetime) -> str:
        """A position of `feed` from which `read_feed` returns every record changed at
        or after `since` (aware), with nothing marked seen: what a reconciliation run
        re-lists, page by page until `more` is false. Never stored as the feed's position."""
        ...

    def read_up_to(self, feed: str, position: str | None) -> datetime | None:
        """The time before which a read from `position` has seen every change of `feed`
        (aware), or None: a change stamped earlier that the feed never delivered was
        missed; one stamped at or after it may simply not have been read yet."""
        ...

    async def fetch(self, native_id: str) -> Any:
        """One record by its native id; raises `NotFound`."""
        ...

    async def perform(self, action: Action) -> ActionResult:
        """Perform one action; an idempotent replay is a success with `replayed=True`."""
        ...

    async def ping(self) -> None:
        """Raise an `AdapterError` if the system cannot be reached or refuses us."""
        ...

    async def aclose(self) -> None: ...
