"""The simulated 12345 interface under `/api/v2`: envelopes, tokens, paging and request
validation exactly as `specs/hotline-12345.md` states them (rules live in `sim.state`,
field checks in `sim.requests`), and what the call log counts as a refusal."""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Final

from aiohttp import web
from pydantic import Field

from adapters.hotline12345.sim.requests import (
    PARTNER_SYSTEM,
    int_field,
    json_body,
    text_field,
    time_field,
    validate_create,
)
from adapters.hotline12345.sim.state import BusinessError, OrderBook, invalid
from adapters.simkit import SIM_CLIENT, SIM_FAULT, FaultInjector, Faults, SimClock
from schemas.hotline12345 import (
    REPLY_MAX,
    REQUEST_ID_MAX,
    TIME_FORMAT,
)

BASE_PATH: Final = "/api/v2"
TOKEN_TTL_S: Final = 7200
ACTIONS: Final = ("sign", "reply", "return", "extension")
SUCCESS: Final = frozenset({"0", "40901"})  # 40901: an idempotent replay of a create
ENVELOPE: Final = web.RequestKey("envelope", tuple[str, str])  # (code, msg) answered
Handler = Callable[[web.Request, str], Awaitable[Any]]


class Faults12345(Faults):
    """simkit's faults plus the 12345-specific ones."""

    shift_between_pages: float = Field(
        default=0.0, ge=0, le=1, description="chance a list page touches one order it served"
    )
    busy_rate: float = Field(default=0.0, ge=0, le=1, description="share of calls → 50001")
    reject_tokens: bool = Field(default=False, description="every bearer token → 40101")


class FaultInjector12345(FaultInjector):
    def __init__(self, clock: SimClock, *, default_rate_per_s: float | None, seed: int = 0):
        super().__init__(clock, default_rate_per_s=default_rate_per_s, seed=seed)
        self.faults: Faults12345 = Faults12345()
        self.rng = random.Random(seed + 1)

    def update(self, patch: dict) -> Faults12345:
        faults = Faults12345.model_validate(self.faults.model_dump() | patch)
        if faults.maintenance_s is not None:
            faults.maintenance_until = self.clock.now() + timedelta(seconds=faults.maintenance_s)
            faults.maintenance_s = None
        self.faults = faults
        return faults

    def reset(self) -> None:
        super().reset()
        self.faults = Faults12345()


class Tokens:
    """Issued access tokens: 7,200 s on the simulated clock, revocable."""

    def __init__(self, clock: SimClock, credentials: dict[str, str]) -> None:
        self.clock = clock
        self.credentials = credentials
        self._tokens: dict[str, tuple[str, datetime]] = {}
        self.issued = 0

    def issue(self, client_id: str) -> str:
        token = secrets.token_urlsafe(24)
        self._tokens[token] = (client_id, self.clock.now() + timedelta(seconds=TOKEN_TTL_S))
        self.issued += 1
        return token

    def client_of(self, token: str) -> str | None:
        client, expires = self._tokens.get(token, ("", self.clock.now()))
        return client if client and self.clock.now() < expires else None

    def revoke(self, token: str | None = None) -> int:
        doomed = [token] if token else list(self._tokens)
        return sum(self._tokens.pop(t, None) is not None for t in doomed)


def envelope(code: str, msg: str, data: Any = None) -> web.Response:
    body = json.dumps({"code": code, "msg": msg, "data": data}, ensure_ascii=False)
    return web.Response(text=body, content_type="application/json")


def answer(request: web.Request, code: str, msg: str, data: Any = None) -> web.Response:
    """The envelope, remembered on the request for the call log (`refusal_of`)."""
    request[ENVELOPE] = (code, msg)
    return envelope(code, msg, data)


def refusal_of(request: web.Request, resp: web.StreamResponse) -> tuple[str, str] | None:
    """`(code, msg)` of an envelope with an error code, `(status, text)` of any other HTTP
    error; None for a success (a 40901 replay is one)."""
    code, msg = request.get(ENVELOPE, ("0", ""))
    if code not in SUCCESS:
        return code, msg
    if resp.status >= 400:
        text = resp.text if isinstance(resp, web.Response) else None
        return str(resp.status), text or resp.reason
    return None


class Api:
    """Route handlers; `unit_code` is the handling unit the client credentials belong to."""

    def __init__(self, book: OrderBook, tokens: Tokens, faults: FaultInjector12345) -> None:
        self.book = book
        self.tokens = tokens
        self.faults = faults

    def routes(self) -> list[web.RouteDef]:
        p = BASE_PATH
        return [
            web.post(f"{p}/oauth/token", self.token),
            web.get(f"{p}/orders/dispatched", self._call(self.list_dispatched)),
            web.get(f"{p}/orders/created", self._call(self.list_created)),
            web.post(f"{p}/orders", self._call(self.create)),
            web.get(f"{p}/orders/{{orderNo}}", self._call(self.get_order)),
            *(
                web.post(f"{p}/orders/{{orderNo}}/{name}", self._call(partial(self.act, name)))
                for name in ACTIONS
            ),
        ]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Faults and rate limits (per client) on API calls, never on `/_sim`."""
        if request.path.startswith(BASE_PATH):
            fault = await self.faults.check(self.client_of(request))
            if fault is not None:
                request[SIM_FAULT] = fault.kind
                return fault.response
            resp = await handler(request)
            lost = self.faults.lose()
            if lost is not None:
                request[SIM_FAULT] = lost.kind
                return lost.response
            return resp
        return await handler(request)

    def client_of(self, request: web.Request) -> str:
        """The client a call's bearer token belongs to, else `anonymous:<address>`."""
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return self.tokens.client_of(token) or f"anonymous:{request.remote}"

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        if client_id in self.tokens.credentials:
            request[SIM_CLIENT] = client_id
        if form.get("grant_type") != "client_credentials":
            return answer(request, "40001", "参数错误：grant_type 须为 client_credentials")
        if not client_id or self.tokens.credentials.get(client_id) != secret:
            return answer(request, "40101", "客户端认证失败")
        token = self.tokens.issue(client_id)
        return answer(request, "0", "成功", {"accessToken": token, "expiresIn": TOKEN_TTL_S})

    def _call(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def wrapped(request: web.Request) -> web.Response:
            if self.faults.faults.reject_tokens:
                request[SIM_FAULT] = "faulted"
                return answer(request, "40101", "令牌无效或已过期")
            header = request.headers.get("Authorization", "")
            client = None
            if header.startswith("Bearer "):
                client = self.tokens.client_of(header.removeprefix("Bearer ").strip())
            if client is None:
                return answer(request, "40101", "令牌无效或已过期")
            if self.faults.rng.random() < self.faults.faults.busy_rate:
                request[SIM_FAULT] = "faulted"
                return answer(request, "50001", "系统繁忙")
            try:
                return answer(request, "0", "成功", await handler(request, client))
            except _Replay as exc:
                return answer(request, exc.code, exc.msg, {"orderNo": exc.order_no})
            except BusinessError as exc:
                return answer(request, exc.code, exc.msg)

        return wrapped

    # --- reads --------------------------------------------------------------------------

    async def list_dispatched(self, request: web.Request, client: str) -> dict[str, Any]:
        unit = request.query.get("unitCode", "")
        if not unit:
            raise invalid("unitCode", "必填")
        if unit != self.book.unit_code:
            raise invalid("unitCode", "不是本客户端的承办单位")
        return self._page(request, lambda o: o["unitCode"] == unit)

    async def list_created(self, request: web.Request, client: str) -> dict[str, Any]:
        if request.query.get("sourceSystem") != PARTNER_SYSTEM:
            raise invalid("sourceSystem", f"须为 {PARTNER_SYSTEM}")
        return self._page(request, lambda o: self.book.created_by.get(o["orderNo"]) == client)

    def _page(self, request: web.Request, wanted: Callable[[dict], bool]) -> dict[str, Any]:
        q = request.query
        page_no = int_field(q.get("pageNo", "1"), "pageNo")
        page_size = int_field(q.get("pageSize", "20"), "pageSize")
        if page_no < 1:
            raise invalid("pageNo", "须从 1 开始")
        if not 1 <= page_size <= 200:
            raise invalid("pageSize", "须在 1..200 之间")
        since = q.get("updatedSince") or None
        if since is not None:
            since = time_field(since, "updatedSince")
        # Filtered on `updatedSince` before sorting: a window over a large book sorts only
        # the window (the reconcile bench holds a year of orders).
        rows = sorted(
            (
                o
                for o in self.book.orders.values()
                if (since is None or o["updateTime"] >= since) and wanted(o)
            ),
            key=lambda o: (o["updateTime"], o["orderNo"]),
        )
        start = (page_no - 1) * page_size
        records = [dict(o) for o in rows[start : start + page_size]]
        shift = self.faults.faults.shift_between_pages
        if records and shift and self.faults.rng.random() < shift:
            # One order on this page or the next changes: it jumps to the end of the list
            # and every record after it moves one place earlier.
            nearby = rows[start : start + 2 * page_size]
            self.book.touch(self.faults.rng.choice(nearby)["orderNo"])
        return {"total": len(rows), "pageNo": page_no, "pageSize": page_size, "records": records}

    async def get_order(self, request: web.Request, client: str) -> dict[str, Any]:
        order = self.book.get(request.match_info["orderNo"])
        mine = order["unitCode"] == self.book.unit_code
        if not mine and self.book.created_by.get(order["orderNo"]) != client:
            raise BusinessError("40401", f"工单不存在：{order['orderNo']}")
        return order

    # --- writes -------------------------------------------------------------------------

    async def act(self, action: str, request: web.Request, client: str) -> None:
        order_no = request.match_info["orderNo"]
        order = self.book.get(order_no)
        body = await json_body(request)
        if order["unitCode"] != self.book.unit_code:
            raise BusinessError("40002", f"工单未派发至本单位：{order_no}")
        by = f"unit:{self.book.unit_code}"
        if action == "sign":
            self.book.sign(order_no, text_field(body, "handler"), by)
        elif action == "reply":
            content = text_field(body, "content", max_len=REPLY_MAX)
            handler = text_field(body, "handler")
            resolved = body.get("resolved")
            if not isinstance(resolved, bool):
                raise invalid("resolved", "须为布尔值")
            self.book.reply(order_no, content, handler, resolved, by)
        elif action == "return":
            self.book.return_order(order_no, text_field(body, "reason"), by)
        else:
            reason = text_field(body, "reason")
            new_deadline = time_field(text_field(body, "newDeadline"), "newDeadline")
            self.book.extension(order_no, reason, datetime.strptime(new_deadline, TIME_FORMAT), by)

    async def create(self, request: web.Request, client: str) -> dict[str, Any]:
        body = await json_body(request)
        request_id = text_field(body, "requestId", max_len=REQUEST_ID_MAX)
        if request_id in self.book.request_ids:
            raise _Replay(self.book.request_ids[request_id])
        validate_create(body)
        return {"orderNo": self.book.create(body, client)}


class _Replay(BusinessError):
    def __init__(self, order_no: str) -> None:
        super().__init__("40901", "重复的 requestId")
        self.order_no = order_no
