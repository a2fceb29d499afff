"""A small typed client of a node's admin API (`/api/v1`), for the CLI.

aiohttp, not a sync client: it is already the project's HTTP library (no new
dependency), and the CLI's other commands need an event loop anyway (aio-pika, the
store, the hotline adapters). Foreign errors are translated here and nowhere else::

    AdminError
    ├─ ApiError(status, title, detail, errors)   the API answered with an error
    └─ Unreachable(url, reason)                  no answer: refused, DNS, timeout

    async with AdminClient(url, token) as api:
        page = await api.get("/api/v1/dead-letters", status="parked", limit=50)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any

import aiohttp

REQUEST_TIMEOUT_S = 30.0
TERMINAL = frozenset({"done", "failed"})


class AdminError(Exception):
    """A call to the admin API failed."""


class ApiError(AdminError):
    """The API answered an error: its problem document's title, detail and field errors
    (RFC 9457), or the HTTP status and reason when the body was not one."""

    def __init__(
        self, status: int, title: str, detail: str | None = None, errors: list[Any] | None = None
    ) -> None:
        super().__init__(f"{title}: {detail}" if detail else title)
        self.status, self.title, self.detail, self.errors = status, title, detail, errors or []


class Unreachable(AdminError):
    """Nothing answered at the URL (the daemon is down, or the URL is wrong)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach the admin API at {url}: {reason}")
        self.url, self.reason = url, reason


class AdminClient:
    """Calls `/api/v1` of one node with one bearer token; use it as an async context
    manager. `get`/`post` return the decoded JSON body or raise `AdminError`."""

    def __init__(self, url: str, token: str, *, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AdminClient:
        self._session = aiohttp.ClientSession(
            timeout=self._timeout, headers={"Authorization": f"Bearer {self._token}"}
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def get(self, path: str, **query: Any) -> Any:
        return await self.call("GET", path, query=query)

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return await self.call("POST", path, body=body if body is not None else {})

    async def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        """One request; `None` query values are left out and booleans sent as
        `true`/`false`. Raises ApiError for a status of 400 or more, Unreachable when
        nothing answers."""
        assert self._session is not None, "use AdminClient as an async context manager"
        params = {k: _query_value(v) for k, v in (query or {}).items() if v is not None}
        try:
            async with self._session.request(
                method, self.url + path, params=params, json=body
            ) as response:
                text = await response.text()
                data = _json_or_none(response, text)
                if response.status >= 400:
                    raise _api_error(response.status, response.reason, data)
                return data
        except aiohttp.ClientConnectionError as exc:
            raise Unreachable(self.url, str(exc) or type(exc).__name__) from exc
        except TimeoutError as exc:
            raise Unreachable(self.url, f"no answer within {self._timeout.total:g}s") from exc

    async def pages(self, path: str, *, every: bool, **query: Any) -> dict[str, Any]:
        """A list, one page or (`every`) all of them by following `next_cursor`, as one
        `{"items": [...], "next_cursor": ...}`."""
        page = await self.get(path, **query)
        items = list(page["items"])
        while every and page.get("next_cursor"):
            page = await self.get(path, **query, cursor=page["next_cursor"])
            items += page["items"]
        return {"items": items, "next_cursor": page.get("next_cursor")}

    async def follow(
        self,
        path: str,
        *,
        until: Callable[[dict[str, Any]], bool] = lambda doc: doc.get("status") in TERMINAL,
        interval_s: float = 0.5,
    ) -> AsyncIterator[dict[str, Any]]:
        """GET `path` every `interval_s` and yield each answer, the last one being the
        first for which `until` holds (a job or a reconciliation that has finished)."""
        while True:
            doc = await self.get(path)
            yield doc
            if until(doc):
                return
            await asyncio.sleep(interval_s)


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json_or_none(response: aiohttp.ClientResponse, text: str) -> Any:
    if "json" not in (response.content_type or "") or not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _api_error(status: int, reason: str | None, data: Any) -> ApiError:
    if isinstance(data, dict) and "title" in data:
        return ApiError(status, str(data["title"]), data.get("detail"), data.get("errors"))
    return ApiError(status, f"HTTP {status}", reason or None)
