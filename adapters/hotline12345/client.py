"""The 12345 work-order interface (v2): a typed client, one method per call, and the
`Hotline12345` adapter the engine uses.

Envelope codes become the adapter error tree (`adapters.errors`); HTTP failures are
translated once, in `adapters.http.request`:

| code | raised |
|---|---|
| `40001` | `Rejected` with the field named in `msg` as a `FieldError` |
| `40002` | `StatusNotAllowed` |
| `40101` | a new token, the call once more; a second `40101` → `AuthError` |
| `40401` | `NotFound` |
| `40901` | not an error on create: the earlier `orderNo`, `replayed=True` |
| `50001` | `TransientError` |
| other | `Rejected` |

A 200 response that is not an envelope is a `TransientError` (a proxy page, a truncated
body). Retries live in the engine; the only retry here is the one after a token refresh.

Every call, `POST /oauth/token` included, waits for the client's `RequestBudget`
(`config.rate_limit_rps`). A token fetched because a call needs one is urgent: every
caller waits behind it.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, TypeVar

import aiohttp
from pydantic import BaseModel, TypeAdapter, ValidationError

from adapters.errors import (
    AuthError,
    FieldError,
    NotFound,
    Rejected,
    StatusNotAllowed,
    TransientError,
    describe_validation,
)
from adapters.hotline12345.config import Hotline12345Config
from adapters.http import request
from adapters.ratelimit import RequestBudget, urgent
from schemas.hotline12345 import (
    TIME_FORMAT,
    CreatedOrder,
    CreateOrderRequest,
    Envelope,
    ExtensionRequest,
    Order,
    Page,
    ReplyRequest,
    ReturnRequest,
    SignRequest,
    TokenData,
)

SYSTEM: Final = "12345"
_FIELD_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.]*")
_ENVELOPE: Final = TypeAdapter(Envelope[Any])
M = TypeVar("M", bound=BaseModel)


class _TokenRefused(Exception):
    """Internal: the call was answered 40101 (handled by `_call`)."""


class Client12345:
    """One typed method per call of the 12345 interface.

    Takes an injected session (never closed here). The token is fetched lazily, renewed
    `token_refresh_margin_s` before it expires, and once more when a call answers 40101.
    `monotonic` is the clock the token lifetime is measured on (tests move it). `budget`
    is shared by every call of this client; by default one for `config.rate_limit_rps`.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: Hotline12345Config,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        budget: RequestBudget | None = None,
    ) -> None:
        self.budget = budget if budget is not None else RequestBudget(SYSTEM, config.rate_limit_rps)
        self._session = session
        self._config = config
        self._base = config.base_url.rstrip("/")
        self._monotonic = monotonic
        self._token: str | None = None
        self._expires_at = 0.0
        self._token_lock = asyncio.Lock()

    # --- calls -------------------------------------------------------------------------

    async def token(self) -> TokenData:
        """`POST /oauth/token`: a new access token (kept for later calls); `AuthError` on
        wrong credentials."""
        form = {
            "grant_type": "client_credentials",
            "client_id": self._config.client_id,
            "client_secret": self._config.client_secret.get_secret_value(),
        }
        resp = await request(
            self._session,
            SYSTEM,
            "POST",
            f"{self._base}/oauth/token",
            timeout_s=self._config.timeout_s,
            budget=self.budget,
            data=form,
        )
        try:
            data = _unwrap(resp.status, _json_or_none(resp.body))
        except _TokenRefused:
            raise AuthError(SYSTEM, "client credentials refused (40101)") from None
        token = _parse(TokenData, data)
        self._token = token.accessToken
        self._expires_at = self._monotonic() + token.expiresIn
        return token

    async def get_order(self, order_no: str) -> Order:
        return _parse(Order, await self._call("GET", f"/orders/{order_no}"))

    async def list_dispatched(
        self, updated_since: datetime | None, page_no: int = 1, page_size: int | None = None
    ) -> Page[Order]:
        """`GET /orders/dispatched` for the configured unit (`updatedSince` inclusive)."""
        params = {"unitCode": self._config.unit_code}
        return await self._list("/orders/dispatched", params, updated_since, page_no, page_size)

    async def list_created(
        self, updated_since: datetime | None, page_no: int = 1, page_size: int | None = None
    ) -> Page[Order]:
        """`GET /orders/created` for our `sourceSystem` (`updatedSince` inclusive)."""
        params = {"sourceSystem": self._config.source_system}
        return await self._list("/orders/created", params, updated_since, page_no, page_size)

    async def sign(self, order_no: str, body: SignRequest) -> None:
        await self._call("POST", f"/orders/{order_no}/sign", json=_dump(body))

    async def reply(self, order_no: str, body: ReplyRequest) -> None:
        await self._call("POST", f"/orders/{order_no}/reply", json=_dump(body))

    async def return_order(self, order_no: str, body: ReturnRequest) -> None:
        await self._call("POST", f"/orders/{order_no}/return", json=_dump(body))

    async def extension(self, order_no: str, body: ExtensionRequest) -> None:
        await self._call("POST", f"/orders/{order_no}/extension", json=_dump(body))

    async def create_order(self, body: CreateOrderRequest) -> tuple[str, bool]:
        """`POST /orders`: the order number and whether 12345 answered it as a replay of an
        earlier request with the same `requestId` (40901)."""
        try:
            data = await self._call("POST", "/orders", json=_dump(body), replay_ok=True)
        except _Replayed as replay:
            return _parse(CreatedOrder, replay.data).orderNo, True
        return _parse(CreatedOrder, data).orderNo, False

    # --- plumbing ----------------------------------------------------------------------

    async def _list(
        self,
        path: str,
        params: dict[str, str],
        updated_since: datetime | None,
        page_no: int,
        page_size: int | None,
    ) -> Page[Order]:
        params = params | {
            "pageNo": str(page_no),
            "pageSize": str(self._config.page_size if page_size is None else page_size),
        }
        if updated_since is not None:
            params["updatedSince"] = updated_since.strftime(TIME_FORMAT)
        return _parse(Page[Order], await self._call("GET", path, params=params))

    async def _bearer(self, *, refresh_from: str | None = None) -> str:
        async with self._token_lock:
            stale = self._monotonic() >= self._expires_at - self._config.token_refresh_margin_s
            if self._token is None or stale or self._token == refresh_from:
                with urgent():
                    await self.token()
            assert self._token is not None
            return self._token

    async def _call(self, method: str, path: str, *, replay_ok: bool = False, **kwargs: Any) -> Any:
        token = await self._bearer()
        for attempt in (1, 2):
            resp = await request(
                self._session,
                SYSTEM,
                method,
                f"{self._base}{path}",
                timeout_s=self._config.timeout_s,
                budget=self.budget,
                headers={"Authorization": f"Bearer {token}"},
                **kwargs,
            )
            try:
                return _unwrap(resp.status, _json_or_none(resp.body), replay_ok=replay_ok)
            except _TokenRefused:
                if attempt == 2:
                    raise AuthError(SYSTEM, f"{method} {path}: token refused twice") from None
                token = await self._bearer(refresh_from=token)
        raise AssertionError("unreachable")


class _Replayed(Exception):
    def __init__(self, data: Any) -> None:
        self.data = data


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _unwrap(status: int, payload: Any, *, replay_ok: bool = False) -> Any:
    """The `data` of a success envelope, or the error its code stands for."""
    if status != 200:
        raise Rejected(SYSTEM, f"unexpected HTTP {status}")
    try:
        env = _ENVELOPE.validate_python(payload)
    except ValidationError:
        raise TransientError(SYSTEM, "HTTP 200 without an envelope") from None
    code, msg = str(env.code), env.msg
    if code == "0":
        return env.data
    if code == "40001":
        match = _FIELD_RE.search(msg)
        fields = (FieldError(match.group(0), msg),) if match else ()
        raise Rejected(SYSTEM, msg, fields)
    if code == "40002":
        raise StatusNotAllowed(SYSTEM, msg)
    if code == "40101":
        raise _TokenRefused
    if code == "40401":
        raise NotFound(SYSTEM, msg)
    if code == "40901" and replay_ok:
        raise _Replayed(env.data)
    if code == "50001":
        raise TransientError(SYSTEM, f"system busy (50001): {msg}")
    raise Rejected(SYSTEM, f"unknown code {code}: {msg}")


def _parse(model: type[M] | Any, data: Any) -> Any:
    try:
        return TypeAdapter(model).validate_python(data)
    except ValidationError as exc:
        raise Rejected(
            SYSTEM, f"malformed {getattr(model, '__name__', model)}: {describe_validation(exc)}"
        ) from exc


def _dump(body: BaseModel) -> dict[str, Any]:
    return body.model_dump(mode="json")
