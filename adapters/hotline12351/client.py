"""Typed client of the 12351 case integration interface (v1): one method per call.

Every call goes through `adapters.http.request` (timeouts, 429, 5xx and 401 are
translated there); this module reads 12351's own answers, problem documents
(RFC 9457), into the error tree:

```
400, 422  → Rejected(detail, fields)    fields from the problem's `errors` pointers
404       → NotFound
409       → Conflict                    key reused with another body, refused transition
410       → CursorExpired               the feed cursor is older than 7 days
412       → StaleVersion                If-Match was stale: re-read and decide again
other 4xx → Rejected
```

Every call waits for the client's `RequestBudget` (`config.rate_limit_rps`; none by
default) and a 429 slows it down.

`POST /cases/{id}/events` takes ONE flat object, `type` beside that type's body fields
(`schemas.hotline12351.event_request`); a nested `body` is an unknown field to 12351
(422). Only the timeline (`GET /cases/{id}/events`) nests the fields under `body`.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any, Final, TypeVar
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel, ValidationError

from adapters.errors import (
    AdapterError,
    Conflict,
    FieldError,
    NotFound,
    Rejected,
    StaleVersion,
)
from adapters.hotline12351.config import Hotline12351Config
from adapters.http import Response, request
from adapters.ratelimit import RequestBudget
from schemas.hotline12351 import (
    IDEMPOTENCY_KEY_MAX,
    Case,
    CasePage,
    CreateCaseRequest,
    Event,
    EventList,
    Problem,
    event_request,
    rfc3339,
)

SYSTEM: Final = "12351"
_ETAG_RE: Final = re.compile(r'^(?:W/)?"(\d+)"$')
_KEY_RE: Final = re.compile(r"^[\x21-\x7e]+$")
M = TypeVar("M", bound=BaseModel)


class _CaseList(BaseModel):
    """`GET /cases?case_no=`: a lookup, not a feed page, so no cursor is required."""

    items: list[Case]


class CursorExpired(AdapterError):
    """410 Gone: the feed cursor is past its 7 days; restart with `changed_since`."""


def idempotency_key(key: str) -> str:
    """The `Idempotency-Key` header for a bridge key: as is when it is visible ASCII of
    at most 255 characters, else a deterministic digest (the same key always maps to the
    same header, so a retry is still recognised as one)."""
    if key and len(key) <= IDEMPOTENCY_KEY_MAX and _KEY_RE.match(key):
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    prefix = re.sub(r"[^\x21-\x7e]", "_", key)[: IDEMPOTENCY_KEY_MAX - len(digest) - 1]
    return f"{prefix}#{digest}" if prefix else digest


def parse_etag(value: str | None) -> int | None:
    """The version in an `ETag` (`"7"` or `W/"7"`), None when absent or malformed."""
    match = _ETAG_RE.match((value or "").strip())
    return int(match.group(1)) if match else None


class Client12351:
    """The 12351 calls. Takes an injected session and never closes it. `budget` is shared
    by every call of this client; by default one for `config.rate_limit_rps`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: Hotline12351Config,
        *,
        budget: RequestBudget | None = None,
    ) -> None:
        self.budget = budget if budget is not None else RequestBudget(SYSTEM, config.rate_limit_rps)
        self._session = session
        self._config = config
        self._base = config.base_url.rstrip("/")

    # --- reads ---------------------------------------------------------------------

    async def list_cases(self, cursor: str | None = None, limit: int | None = None) -> CasePage:
        """`GET /cases?cursor=&limit=`: the change feed from `cursor` (None: the start).
        Raises `CursorExpired` on 410."""
        params = {"limit": str(self._limit(limit))}
        if cursor is not None:
            params["cursor"] = cursor
        resp = await self._call("GET", "/cases", params=params)
        return self._parse(CasePage, resp)

    async def changed_since(self, when: datetime, limit: int | None = None) -> CasePage:
        """`GET /cases?changed_since=`: the feed restarted at `when` (inclusive, compared
        with `updated_at`), with a fresh cursor. `when` must be timezone-aware."""
        if when.tzinfo is None:
            raise ValueError("changed_since needs an aware datetime")
        params = {"changed_since": rfc3339(when), "limit": str(self._limit(limit))}
        resp = await self._call("GET", "/cases", params=params)
        return self._parse(CasePage, resp)

    async def get_case(self, case_id: str) -> tuple[Case, int]:
        """`GET /cases/{id}`: the case and the version from its `ETag`."""
        resp = await self._call("GET", f"/cases/{quote(case_id, safe='')}")
        case = self._parse(Case, resp)
        version = parse_etag(resp.headers.get("ETag"))
        return case, case.version if version is None else version

    async def find_by_case_no(self, case_no: str) -> Case | None:
        """`GET /cases?case_no=`: the case with that number, or None."""
        resp = await self._call("GET", "/cases", params={"case_no": case_no})
        items = self._parse(_CaseList, resp).items
        return items[0] if items else None

    async def events(self, case_id: str) -> list[Event]:
        """`GET /cases/{id}/events`: the case's timeline, oldest first."""
        resp = await self._call("GET", f"/cases/{quote(case_id, safe='')}/events")
        return self._parse(EventList, resp).items

    # --- writes ---------------------------------------------------------------------

    async def create_case(self, body: CreateCaseRequest, idempotency_key: str) -> tuple[Case, bool]:
        """`POST /cases` → (the case, whether 12351 answered as a replay)."""
        resp = await self._call(
            "POST",
            "/cases",
            json=body.model_dump(mode="json", exclude_none=True),
            key=idempotency_key,
        )
        return self._parse(Case, resp), _replayed(resp)

    async def post_event(
        self,
        case_id: str,
        type: str,
        body_model: BaseModel,
        idempotency_key: str,
        if_match: int | None = None,
    ) -> tuple[Case, bool]:
        """`POST /cases/{id}/events` with `{"type": type, <body_model's fields>}` flat →
        (the case, replayed). `if_match` sends `If-Match: "<version>"`; a stale one raises
        `StaleVersion`. `TypeError` when `body_model` is not `type`'s body model."""
        payload = event_request(type, body_model)
        headers = {"If-Match": f'"{if_match}"'} if if_match is not None else None
        resp = await self._call(
            "POST",
            f"/cases/{quote(case_id, safe='')}/events",
            json=payload,
            key=idempotency_key,
            headers=headers,
        )
        return self._parse(Case, resp), _replayed(resp)

    # --- plumbing -------------------------------------------------------------------

    def _limit(self, limit: int | None) -> int:
        return self._config.page_limit if limit is None else limit

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        all_headers = {
            "Authorization": f"Bearer {self._config.api_key.get_secret_value()}",
            "Accept": "application/json",
            **(headers or {}),
        }
        if key is not None:
            all_headers["Idempotency-Key"] = idempotency_key(key)
        kwargs: dict[str, Any] = {"headers": all_headers}
        if params is not None:
            # yarl encodes `+` as %2B in query values, as 12351 needs for offsets.
            kwargs["params"] = params
        if json is not None:
            kwargs["json"] = json
        resp = await request(
            self._session,
            SYSTEM,
            method,
            self._base + path,
            timeout_s=self._config.timeout_s,
            budget=self.budget,
            **kwargs,
        )
        if resp.status >= 400:
            raise _error(method, path, resp)
        return resp

    def _parse(self, model: type[M], resp: Response) -> M:
        try:
            return model.model_validate(resp.json())
        except (ValueError, ValidationError) as exc:
            raise Rejected(SYSTEM, f"unreadable answer (HTTP {resp.status})") from exc


def _replayed(resp: Response) -> bool:
    return resp.headers.get("Idempotent-Replayed", "").strip().lower() == "true"


def _error(method: str, path: str, resp: Response) -> AdapterError:
    """The adapter error for a 4xx answer, with the problem document's pointers."""
    try:
        problem = Problem.model_validate(resp.json())
        detail = problem.detail or problem.title or f"HTTP {resp.status}"
        fields = tuple(FieldError(e.pointer, e.detail) for e in problem.errors)
    except (ValueError, ValidationError):
        detail, fields = f"HTTP {resp.status}", ()
    where = f"{method} {path}: {detail}"
    match resp.status:
        case 404:
            return NotFound(SYSTEM, where)
        case 409:
            return Conflict(SYSTEM, where)
        case 410:
            return CursorExpired(SYSTEM, where)
        case 412:
            return StaleVersion(SYSTEM, where)
        case _:
            return Rejected(SYSTEM, where, fields)
