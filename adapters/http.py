"""The one seam to HTTP: `request()` sends a call and turns every foreign failure into
the adapter error tree (`adapters.errors`).

What it decides for both hotlines:
- connection refused / DNS → `TransientError` (not ambiguous: nothing was sent);
- timeout or connection lost after sending → `TransientError(ambiguous=True)`;
- 429 → `RateLimited(retry_after)`, `Retry-After` as seconds or an HTTP date;
- 502/503/504 → `Unavailable` (502 and 504 ambiguous: the call may have been executed);
- 500 and other 5xx → `TransientError(ambiguous=True)`;
- 401 → `AuthError`.
Every other status is returned as a `Response` for the client to read its own way
(12345 envelopes, 12351 problem documents).

With a `budget` (`adapters.ratelimit.RequestBudget`), the call waits for its turn before
it is sent, a 429 tells the budget to slow every caller of that hotline down, and the
call's outcome (`outcome_of`: a class of status, never an id) is counted in
`budget.outcomes`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from adapters.errors import AuthError, RateLimited, TransientError, Unavailable
from adapters.ratelimit import RequestBudget


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def parse_retry_after(
    value: str | None, *, now: datetime | None = None, default: float = 1.0
) -> float:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date."""
    if not value:
        return default
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


OUTCOMES = (
    "ok",
    "client_error",
    "auth_error",
    "rate_limited",
    "unavailable",
    "server_error",
    "cannot_connect",
    "timeout",
    "connection_error",
)
"""Every outcome `request()` counts: a small, fixed set (metric labels)."""


def outcome_of(status: int) -> str:
    """The outcome class of an HTTP status."""
    if status == 429:
        return "rate_limited"
    if status == 401:
        return "auth_error"
    if status in (502, 503, 504):
        return "unavailable"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "ok"


async def request(
    session: aiohttp.ClientSession,
    system: str,
    method: str,
    url: str,
    *,
    timeout_s: float = 10.0,
    budget: RequestBudget | None = None,
    **kwargs: Any,
) -> Response:
    """Send one HTTP call (after waiting for `budget`, if given); raises the adapter
    errors listed in the module docstring."""
    if budget is not None:
        await budget.acquire()
    try:
        async with session.request(
            method, url, timeout=aiohttp.ClientTimeout(total=timeout_s), **kwargs
        ) as resp:
            body = await resp.read()
            status, headers = resp.status, resp.headers
    except aiohttp.ClientConnectorError as exc:
        _count(budget, "cannot_connect")
        raise TransientError(system, f"{method} {url}: cannot connect") from exc
    except TimeoutError as exc:
        _count(budget, "timeout")
        raise TransientError(system, f"{method} {url}: timed out", ambiguous=True) from exc
    except aiohttp.ClientError as exc:
        _count(budget, "connection_error")
        raise TransientError(
            system, f"{method} {url}: {type(exc).__name__}", ambiguous=True
        ) from exc

    _count(budget, outcome_of(status))

    if status == 429:
        retry_after = parse_retry_after(headers.get("Retry-After"))
        if budget is not None:
            budget.rate_limited(retry_after)
        raise RateLimited(system, retry_after)
    if status in (502, 503, 504):
        raise Unavailable(system, f"{method} {url}: HTTP {status}", ambiguous=status != 503)
    if status >= 500:
        raise TransientError(system, f"{method} {url}: HTTP {status}", ambiguous=True)
    if status == 401:
        raise AuthError(system, f"{method} {url}: HTTP 401")
    return Response(status, dict(headers), body)


def _count(budget: RequestBudget | None, outcome: str) -> None:
    if budget is not None:
        budget.outcomes[outcome] += 1
