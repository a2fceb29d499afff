"""Typed client of the 12385 Open311 GeoReport v2 server: one method per call.

Every call goes through `adapters.http.request` (timeouts, 429 with its `Retry-After`,
5xx are translated there) and waits for the client's one `RequestBudget`. This module
reads 12385's own answers: bare arrays, and error arrays into the error tree:

```
400 "… already exists …"  → Conflict     an update_id reused with other values
400                       → Rejected     any other refused input (the descriptions)
403                       → AuthError    missing or wrong api_key
404                       → NotFound     unknown id, code, token, path or jurisdiction
other 4xx                 → Rejected
```

`api_key` goes on every call: in the query of a GET (Open311 knows no header), in the
form of a POST. So no URL with its query ever reaches a log line or an error text: the
URL given to `request()` is the path alone (the query travels in `params`), and every
text built from an answer passes `mask()`. Query values are encoded by yarl, which sends
`+` (as in `+08:00`) as `%2B`; form bodies are `application/x-www-form-urlencoded`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, TypeVar
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel, TypeAdapter, ValidationError

from adapters.errors import AdapterError, AuthError, Conflict, NotFound, Rejected
from adapters.http import Response, request
from adapters.open311.config import Open311Config
from adapters.ratelimit import RequestBudget
from schemas.open311 import (
    WINDOW_MAX,
    CreateRequestForm,
    ErrorEntry,
    PostUpdateForm,
    RequestCreated,
    RequestUpdate,
    Service,
    ServiceDefinition,
    ServiceRequest,
    TokenAnswer,
    UpdatePosted,
    open311_time,
)

DEFAULT_SYSTEM: Final = "12385"
M = TypeVar("M", bound=BaseModel)
_ERRORS: Final = TypeAdapter(list[ErrorEntry])


class Open311Client:
    """The 12385 calls. Takes an injected session and never closes it. `budget` is shared
    by every call; by default one for `config.rate_limit_per_min` per `rate_period_s`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: Open311Config,
        *,
        system: str = DEFAULT_SYSTEM,
        budget: RequestBudget | None = None,
    ) -> None:
        self.system = system
        self.budget = budget or RequestBudget(
            system,
            config.rate_limit_per_min,
            period_s=config.rate_period_s,
            jitter_s=config.rate_margin_s,
        )
        self._session = session
        self._config = config
        self._key = config.api_key.get_secret_value()
        self._base = config.base_url.rstrip("/")

    def mask(self, text: str) -> str:
        """`text` with the api_key replaced by `***`."""
        return text.replace(self._key, "***") if self._key else text

    # --- reads ---------------------------------------------------------------------

    async def services(self) -> list[Service]:
        """`GET services.json`."""
        return self._many(Service, await self._get("/services.json"))

    async def service_definition(self, service_code: str) -> ServiceDefinition:
        """`GET services/{code}.json`; `NotFound` for an unknown code."""
        resp = await self._get(f"/services/{_segment(service_code)}.json")
        try:
            data = resp.json()
        except ValueError:
            data = None
        return self._one(ServiceDefinition, data, resp.status)

    async def token(self, token: str) -> TokenAnswer:
        """`GET tokens/{token}.json`: `service_request_id` None until 12385 made it."""
        resp = await self._get(f"/tokens/{_segment(token)}.json")
        return self._first(TokenAnswer, resp)

    async def request(self, request_id: str) -> ServiceRequest:
        """`GET requests/{id}.json`: with our key, the private fields too when the request
        is referred to us or ours. `NotFound` for an unknown id."""
        resp = await self._get(f"/requests/{_segment(request_id)}.json")
        return self._first(ServiceRequest, resp)

    async def requests(
        self,
        *,
        ids: Sequence[str] | None = None,
        service_codes: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[ServiceRequest]:
        """`GET requests.json`: public fields only. `ids` overrides every other filter
        (and the 90-day window and 1,000 limit); otherwise newest first, at most 1,000,
        over at most 90 days (12385: the last 90 days without dates)."""
        params: list[tuple[str, str]] = []
        if ids is not None:
            params.append(("service_request_id", ",".join(ids)))
        if service_codes:
            params.append(("service_code", ",".join(service_codes)))
        if statuses:
            params.append(("status", ",".join(statuses)))
        if start is not None:
            params.append(("start_date", open311_time(start)))
        if end is not None:
            params.append(("end_date", open311_time(end)))
        return self._many(ServiceRequest, await self._get("/requests.json", params))

    async def updates(self, start: datetime, end: datetime) -> list[RequestUpdate]:
        """`GET servicerequestupdates.json` for `[start, end]` (inclusive, at most 24 h:
        `ValueError` beyond): what our key sees, oldest first, at most 1,000 (the oldest:
        narrow the window to read on)."""
        if not start <= end <= start + WINDOW_MAX:
            raise ValueError("an updates window runs forward over at most 24 hours")
        params = [("start_date", open311_time(start)), ("end_date", open311_time(end))]
        return self._many(RequestUpdate, await self._get("/servicerequestupdates.json", params))

    # --- writes ---------------------------------------------------------------------

    async def create_request(self, form: CreateRequestForm) -> RequestCreated:
        """`POST requests.json` → an id (realtime) or a token (batch). The same
        `external_ref` again answers the first answer (a replay, not told apart)."""
        return self._first(RequestCreated, await self._post("/requests.json", form.form()))

    async def post_update(self, form: PostUpdateForm) -> UpdatePosted:
        """`POST servicerequestupdates.json` → 12385's id of the update (the original one
        on a replay). `Conflict` when the update_id exists with other values."""
        resp = await self._post("/servicerequestupdates.json", form.form())
        return self._first(UpdatePosted, resp)

    # --- plumbing -------------------------------------------------------------------

    def _auth(self) -> list[tuple[str, str]]:
        return [("api_key", self._key), ("jurisdiction_id", self._config.jurisdiction_id)]

    async def _get(self, path: str, params: list[tuple[str, str]] | None = None) -> Response:
        return await self._call("GET", path, params=[*self._auth(), *(params or [])])

    async def _post(self, path: str, fields: list[tuple[str, str]]) -> Response:
        return await self._call("POST", path, data=[*self._auth(), *fields])

    async def _call(self, method: str, path: str, **kwargs: Any) -> Response:
        try:
            resp = await request(
                self._session,
                self.system,
                method,
                self._base + path,
                timeout_s=self._config.timeout_s,
                budget=self.budget,
                headers={"Accept": "application/json"},
                allow_redirects=False,  # a redirect would carry the key elsewhere
                **kwargs,
            )
        except AdapterError as exc:
            if self._leaks(exc):
                # A foreign exception in the chain quoted the request (none is known to):
                # drop the chain rather than let the key out with it.
                exc.__cause__ = exc.__context__ = None
                exc.__suppress_context__ = True
            raise
        if resp.status >= 400:
            raise self._error(method, path, resp)
        return resp

    def _leaks(self, exc: BaseException) -> bool:
        seen: BaseException | None = exc
        for _ in range(20):  # a chain is short; a cycle must not hang us
            if seen is None:
                return False
            if self._key and self._key in f"{seen!s} {seen!r}":
                return True
            seen = seen.__cause__ or seen.__context__
        return True

    def _error(self, method: str, path: str, resp: Response) -> AdapterError:
        try:
            entries = _ERRORS.validate_python(resp.json())
            detail = "; ".join(e.description for e in entries) or f"HTTP {resp.status}"
        except (ValueError, ValidationError):
            detail = f"HTTP {resp.status}"
        where = self.mask(f"{method} {path}: {detail}")
        match resp.status:
            case 400 if "already exists" in detail:
                return Conflict(self.system, where)
            case 403:
                return AuthError(self.system, where)
            case 404:
                return NotFound(self.system, where)
            case _:
                return Rejected(self.system, where)

    def _one(self, model: type[M], data: Any, status: int) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise Rejected(self.system, f"unreadable answer (HTTP {status})") from exc

    def _many(self, model: type[M], resp: Response) -> list[M]:
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, list):
            raise Rejected(self.system, f"answer is not an array (HTTP {resp.status})")
        return [self._one(model, item, resp.status) for item in data]

    def _first(self, model: type[M], resp: Response) -> M:
        items = self._many(model, resp)
        if not items:
            raise NotFound(self.system, "empty answer")
        return items[0]


def _segment(value: str) -> str:
    return quote(value, safe="")
