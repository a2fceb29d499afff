"""The simulated 12345 interface under `/api/v2`: envelopes, tokens, paging and request
validation exactly as `specs/hotline-12345.md` states them (rules live in `sim_state`)."""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Final

from aiohttp import web
from pydantic import Field

from adapters.hotline12345.sim_state import BusinessError, OrderBook, invalid
from adapters.simkit import FaultInjector, Faults, SimClock
from schemas.hotline12345 import (
    CONTENT_MAX,
    CREATE_CATEGORY_RE,
    DISTRICTS,
    REPLY_MAX,
    REQUEST_ID_MAX,
    TIME_FORMAT,
    TITLE_MAX,
    is_valid_phone,
)

BASE_PATH: Final = "/api/v2"
TOKEN_TTL_S: Final = 7200
PARTNER_SYSTEM: Final = "12351"
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
            web.post(f"{p}/orders/{{orderNo}}/{{action}}", self._call(self.act)),
        ]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Faults and rate limits (per client) on API calls, never on `/_sim`."""
        if request.path.startswith(BASE_PATH):
            fault = await self.faults.check(self._client_key(request))
            if fault is not None:
                return fault
        return await handler(request)

    def _client_key(self, request: web.Request) -> str:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return self.tokens.client_of(token) or f"anonymous:{request.remote}"

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return envelope("40001", "参数错误：grant_type 须为 client_credentials")
        client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        if not client_id or self.tokens.credentials.get(client_id) != secret:
            return envelope("40101", "客户端认证失败")
        token = self.tokens.issue(client_id)
        return envelope("0", "成功", {"accessToken": token, "expiresIn": TOKEN_TTL_S})

    def _call(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def wrapped(request: web.Request) -> web.Response:
            header = request.headers.get("Authorization", "")
            client = None
            if header.startswith("Bearer ") and not self.faults.faults.reject_tokens:
                client = self.tokens.client_of(header.removeprefix("Bearer ").strip())
            if client is None:
                return envelope("40101", "令牌无效或已过期")
            if self.faults.rng.random() < self.faults.faults.busy_rate:
                return envelope("50001", "系统繁忙")
            try:
                return envelope("0", "成功", await handler(request, client))
            except _Replay as exc:
                return envelope(exc.code, exc.msg, {"orderNo": exc.order_no})
            except BusinessError as exc:
                return envelope(exc.code, exc.msg)

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
        page_no = _int(q.get("pageNo", "1"), "pageNo")
        page_size = _int(q.get("pageSize", "20"), "pageSize")
        if page_no < 1:
            raise invalid("pageNo", "须从 1 开始")
        if not 1 <= page_size <= 200:
            raise invalid("pageSize", "须在 1..200 之间")
        since = q.get("updatedSince") or None
        if since is not None:
            since = _time(since, "updatedSince")
        rows = sorted(
            (o for o in self.book.orders.values() if wanted(o)),
            key=lambda o: (o["updateTime"], o["orderNo"]),
        )
        if since is not None:
            rows = [o for o in rows if o["updateTime"] >= since]
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

    async def act(self, request: web.Request, client: str) -> None:
        order_no, action = request.match_info["orderNo"], request.match_info["action"]
        if action not in ("sign", "reply", "return", "extension"):
            raise web.HTTPNotFound(text="Not Found")
        order = self.book.get(order_no)
        body = await _body(request)
        if order["unitCode"] != self.book.unit_code:
            raise BusinessError("40002", f"工单未派发至本单位：{order_no}")
        by = f"unit:{self.book.unit_code}"
        if action == "sign":
            self.book.sign(order_no, _text(body, "handler"), by)
        elif action == "reply":
            content = _text(body, "content", max_len=REPLY_MAX)
            handler = _text(body, "handler")
            resolved = body.get("resolved")
            if not isinstance(resolved, bool):
                raise invalid("resolved", "须为布尔值")
            self.book.reply(order_no, content, handler, resolved, by)
        elif action == "return":
            self.book.return_order(order_no, _text(body, "reason"), by)
        else:
            reason = _text(body, "reason")
            new_deadline = _time(_text(body, "newDeadline"), "newDeadline")
            self.book.extension(order_no, reason, datetime.strptime(new_deadline, TIME_FORMAT), by)

    async def create(self, request: web.Request, client: str) -> dict[str, Any]:
        body = await _body(request)
        request_id = _text(body, "requestId", max_len=REQUEST_ID_MAX)
        if request_id in self.book.request_ids:
            raise _Replay(self.book.request_ids[request_id])
        validate_create(body)
        return {"orderNo": self.book.create(body, client)}


class _Replay(BusinessError):
    def __init__(self, order_no: str) -> None:
        super().__init__("40901", "重复的 requestId")
        self.order_no = order_no


def validate_create(body: dict[str, Any]) -> None:
    """Every create rule of the spec; the first broken one → 40001 naming its field."""
    if body.get("sourceSystem") != PARTNER_SYSTEM:
        raise invalid("sourceSystem", f"须为 {PARTNER_SYSTEM}")
    _text(body, "sourceNo")
    _text(body, "title", max_len=TITLE_MAX)
    _text(body, "content", max_len=CONTENT_MAX)
    category = body.get("category")
    if not isinstance(category, str) or not CREATE_CATEGORY_RE.fullmatch(category):
        raise invalid("category", "须为有效的4位诉求分类")
    area = body.get("areaCode")
    if area not in DISTRICTS:
        raise invalid("areaCode", "须为北京市16区之一")
    if body.get("urgency") not in ("1", "2", "3"):
        raise invalid("urgency", "须为 1、2 或 3")
    for field in ("callerName", "callerPhone", "address", "streetCode"):
        if body.get(field) is not None and not isinstance(body[field], str):
            raise invalid(field, "须为字符串")
    if not is_valid_phone(body.get("callerPhone") or ""):
        raise invalid("callerPhone", "须为空、手机号或固定电话（如 010-62345678）")
    street = body.get("streetCode")
    if street and not (len(street) == 9 and street.isdigit() and street.startswith(area)):
        raise invalid("streetCode", "须为以 areaCode 开头的9位代码")
    if body.get("confidential") is not None and not isinstance(body["confidential"], bool):
        raise invalid("confidential", "须为布尔值")


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise invalid("body", "须为 JSON 对象") from None
    if not isinstance(body, dict):
        raise invalid("body", "须为 JSON 对象")
    return body


def _text(body: dict[str, Any], field: str, *, max_len: int | None = None) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip():
        raise invalid(field, "必填")
    if max_len is not None and len(value) > max_len:
        raise invalid(field, f"长度不能超过 {max_len}")
    return value


def _int(value: str, field: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise invalid(field, "须为整数") from None


def _time(value: str, field: str) -> str:
    try:
        if datetime.strptime(value, TIME_FORMAT).strftime(TIME_FORMAT) == value:
            return value
    except ValueError:
        pass
    raise invalid(field, "时间格式须为 yyyy-MM-dd HH:mm:ss")
