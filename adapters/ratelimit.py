"""One request budget per hotline per node: every HTTP call to that hotline (feed reads,
actions, reconciliation, probes, 12345 token requests) acquires from it first.

Why these numbers. The other side counts requests per window: our simulators a sliding
1-second window (`adapters.simkit.FaultInjector`), an independent server maybe a fixed
window or a token bucket. The budget is `aiolimiter.AsyncLimiter`, a leaky bucket: with
capacity C and drain rate r it admits at most `C + floor(r·T)` calls in any interval of
length T (the level starts ≥ 0, ends ≤ C, and drains r·T in between). Calls acquired
in order can reach the server bunched: latencies differ, so calls released over
`P + δ` seconds may land within one window of P seconds. To keep every window (sliding
or fixed, which is a subset) at or under a limit of L calls per P seconds we need
`C + floor(r·(P + δ)) ≤ L`, which holds for C = 1 and `r = L / (P + δ)`, as long as the
bunching is under δ. We take C = 1 (pure pacing, no burst: a burst only buys latency for
the first calls after a quiet spell and costs sustained throughput) and δ = 0.2 s. For
12345's published 20 requests/s that is 16.7 calls/s, one every 60 ms. A token-bucket
server of capacity ≥ L and rate L accepts this stream too, since r < L.

A 429 (`rate_limited(retry_after)`) pauses every caller of the hotline until the
`Retry-After` has passed (at most `max_pause_s`: an HTTP date from a skewed clock must
not stall the node for hours; a longer wait is met by the next 429), then halves the
rate for `cooldown_s` (10 s: a brief burst of 429s on the other side must not halve
the node's throughput for long, while 429s that keep coming keep it halved), after which
it is restored; further 429s extend both.
`upstream.rate_limited` is logged once per change of state (`state="slowed"`, then
`state="restored"` at the first acquisition after the cool-down). A budget without a
limit never waits, except out a 429's `Retry-After`.

Priority: inside `with urgent():` (a contextvar, so it follows the work into the tasks
it starts) an acquisition goes ahead of every waiting normal one. Only one waiter at a
time (the "pump") sits in the limiter; each slot it gets goes to the head of the queue,
urgent first, so no normal caller is ever queued inside aiolimiter ahead of an urgent one.
Order within a priority is FIFO.

Shares: inside `with budget.share(fraction):` (a contextvar too) a call to this budget
first waits on a second limiter at `fraction` × the budget's rate, then takes its turn
as usual: background work such as a reconciliation run takes at most that share, and
everything else gets the rest. The share limiter is waited on outside the queue, so a
shared call never holds a place in it while it waits for its share. Urgent calls never
wait on a share; a budget without a limit has no share limit either.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Final

import structlog
from aiolimiter import AsyncLimiter

log = structlog.get_logger(__name__)

JITTER_S: Final = 0.2
"""Bunching of in-order calls on the way to the server that the budget absorbs."""

_URGENT: ContextVar[bool] = ContextVar("hotline_request_urgent", default=False)
_SHARES: ContextVar[dict[RequestBudget, float]] = ContextVar("hotline_request_shares")


@contextmanager
def urgent(flag: bool = True) -> Iterator[None]:
    """Hotline calls made inside (and in tasks started inside) go ahead of normal ones;
    `urgent(False)` is a no-op scope, so a caller can write `with urgent(is_alert):`."""
    token = _URGENT.set(flag or _URGENT.get())
    try:
        yield
    finally:
        _URGENT.reset(token)


def is_urgent() -> bool:
    """Whether the current context is inside `urgent()`."""
    return _URGENT.get()


@dataclass(eq=False)
class _Waiter:
    urgent: bool
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    granted: bool = False


class RequestBudget:
    """The request budget of one hotline: `await acquire()` before every call, and
    `rate_limited(retry_after)` when the hotline answers 429.

    `limit` calls per `period_s` is the other side's published limit (None or 0: none).
    Use one instance for every call to the hotline in a process, in one event loop.
    """

    def __init__(
        self,
        system: str,
        limit: float | None,
        *,
        period_s: float = 1.0,
        jitter_s: float = JITTER_S,
        cooldown_s: float = 10.0,
        slow_factor: float = 0.5,
        max_pause_s: float = 60.0,
    ) -> None:
        if period_s <= 0 or jitter_s < 0 or cooldown_s < 0 or not 0 < slow_factor <= 1:
            raise ValueError("period_s > 0, jitter_s >= 0, cooldown_s >= 0, 0 < slow_factor <= 1")
        self.system = system
        self.limit = limit or None
        self.rate_per_s = self.limit / (period_s + jitter_s) if self.limit else None
        self._cooldown_s = cooldown_s
        self._max_pause_s = max_pause_s
        self._slow_factor = slow_factor
        self._limiter = AsyncLimiter(1, 1 / self.rate_per_s) if self.rate_per_s else None
        self._slow: AsyncLimiter | None = None  # the reduced rate while cooling down
        self._pause_until = 0.0
        self._cool_until = 0.0
        self._urgent: deque[_Waiter] = deque()
        self._normal: deque[_Waiter] = deque()
        self._pumping = False
        self._shares: dict[float, AsyncLimiter] = {}
        self.outcomes: Counter[str] = Counter()
        """Calls sent through this budget by outcome (`adapters.http.outcome_of`), for
        the node's metrics; counted by `request()`."""

    @property
    def current_rate_per_s(self) -> float | None:
        """The rate in force now: halved while cooling down after a 429; None: no limit."""
        self._refresh(_now())
        if self.rate_per_s is None:
            return None
        return self.rate_per_s * (self._slow_factor if self._slow is not None else 1.0)

    @property
    def slowed(self) -> bool:
        """Whether a 429 is still being waited out or cooled down from."""
        self._refresh(_now())
        return self._cool_until > 0

    @contextmanager
    def share(self, fraction: float) -> Iterator[None]:
        """Calls to this budget made inside (and in tasks started inside) take at most
        `fraction` (in (0, 1]) of its rate between them; see the module docstring."""
        if not 0 < fraction <= 1:
            raise ValueError("a share is a fraction in (0, 1]")
        token = _SHARES.set({**_SHARES.get({}), self: fraction})
        try:
            yield
        finally:
            _SHARES.reset(token)

    def share_limiter(self, fraction: float) -> AsyncLimiter | None:
        """The limiter of calls inside `share(fraction)`; None without a limit."""
        if self.rate_per_s is None:
            return None
        limiter = self._shares.get(fraction)
        if limiter is None:
            limiter = self._shares[fraction] = AsyncLimiter(1, 1 / (self.rate_per_s * fraction))
        return limiter

    async def acquire(self) -> None:
        """Wait for this call's turn: within any share it is made in (not urgent ones),
        after any `Retry-After` pause, within the rate, urgent calls first. Cancellation
        is safe (the turn passes to the next waiter)."""
        fraction = _SHARES.get({}).get(self)
        if fraction is not None and not is_urgent():
            limiter = self.share_limiter(fraction)
            if limiter is not None:
                await limiter.acquire()
        now = _now()
        self._refresh(now)
        if self._limiter is None:
            await self._wait_out_pause()
            return
        if self._can_go_now(now):
            # Neither await suspends: both limiters have capacity.
            if self._slow is not None:
                await self._slow.acquire()
            await self._limiter.acquire()
            return
        me = _Waiter(is_urgent())
        (self._urgent if me.urgent else self._normal).append(me)
        try:
            while not me.granted:
                if self._pumping:
                    me.wake.clear()
                    await me.wake.wait()
                    continue
                await self._pump_one()
        finally:
            if not me.granted:
                (self._urgent if me.urgent else self._normal).remove(me)
            self._hand_over()

    def rate_limited(self, retry_after: float) -> None:
        """The hotline answered 429: every caller waits `retry_after` seconds, then the
        rate is reduced for the cool-down (both extended by a later 429)."""
        now = _now()
        self._refresh(now)
        was_slowed = self._cool_until > 0
        pause = min(max(0.0, retry_after), self._max_pause_s)
        self._pause_until = max(self._pause_until, now + pause)
        self._cool_until = max(self._cool_until, self._pause_until + self._cooldown_s)
        if self.rate_per_s is not None and self._slow is None:
            self._slow = AsyncLimiter(1, 1 / (self.rate_per_s * self._slow_factor))
        if not was_slowed:
            log.warning(
                "upstream.rate_limited",
                system=self.system,
                state="slowed",
                retry_after_s=retry_after,
                rate_per_s=self.current_rate_per_s,
                cooldown_s=self._cooldown_s,
            )

    # --- internals -----------------------------------------------------------------

    def _refresh(self, now: float) -> None:
        if self._cool_until and now >= self._cool_until:
            self._cool_until = 0.0
            self._slow = None
            log.info(
                "upstream.rate_limited",
                system=self.system,
                state="restored",
                rate_per_s=self.rate_per_s,
            )

    def _can_go_now(self, now: float) -> bool:
        assert self._limiter is not None
        return (
            not self._pumping
            and not self._urgent
            and not self._normal
            and now >= self._pause_until
            and (self._slow is None or self._slow.has_capacity())
            and self._limiter.has_capacity()
        )

    async def _pump_one(self) -> None:
        """Get one slot and give it to the head of the queue (urgent first)."""
        self._pumping = True
        try:
            await self._next_slot()
        finally:
            self._pumping = False
        head = self._urgent.popleft() if self._urgent else self._normal.popleft()
        head.granted = True
        head.wake.set()

    async def _next_slot(self) -> None:
        assert self._limiter is not None
        while True:
            await self._wait_out_pause()
            self._refresh(_now())
            if self._slow is not None:
                await self._slow.acquire()
            await self._limiter.acquire()
            if _now() >= self._pause_until:
                return
            # A 429 came in while we waited: this slot falls in the pause; wait it out.

    async def _wait_out_pause(self) -> None:
        """Sleep until no `Retry-After` pause is in force (a later 429 may extend it)."""
        while True:
            delay = self._pause_until - _now()
            if delay <= 0:
                return
            await asyncio.sleep(delay)

    def _hand_over(self) -> None:
        """No one is pumping: wake the head waiter to take the pump."""
        if self._pumping:
            return
        head = self._urgent[0] if self._urgent else self._normal[0] if self._normal else None
        if head is not None:
            head.wake.set()


def _now() -> float:
    """The clock aiolimiter measures on (the loop's); monotonic outside a loop."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()
