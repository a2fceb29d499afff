"""The 12345 simulator's own `/_sim` routes: dispatching orders, playing 12345 and its
district units (on a server with a slow clock too: `clock_behind_s`), hand fixes in its
database (`edit`), revoking tokens and running the workflow driver (see `simulator`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from adapters.hotline12345.sim.api import Tokens
from adapters.hotline12345.sim.driver import WorkflowDriver
from adapters.hotline12345.sim.state import BusinessError, OrderBook
from schemas.hotline12345 import TIME_FORMAT

STEPS = (
    "visit",
    "reopen",
    "withdraw",
    "close",
    "touch",
    "edit",
    "sign",
    "reply",
    "extension",
    "return",
)


def control_routes_12345(
    book: OrderBook, tokens: Tokens, driver: WorkflowDriver
) -> list[web.RouteDef]:
    async def dispatch(request: web.Request) -> web.Response:
        body = await _json(request)
        behind = _clock_behind(body)
        if isinstance(body.get("orders"), list):
            batch = body["orders"]
        else:
            fields = {k: v for k, v in body.items() if k != "count"}
            batch = [fields] * int(body.get("count", 1))
        with book.slow_clock(behind):
            now = book.now()
            order_nos = [book.dispatch(fields, now=now) for fields in batch]
        return web.json_response({"orderNos": order_nos}, status=201)

    async def step(request: web.Request) -> web.Response:
        order_no, name = request.match_info["orderNo"], request.match_info["step"]
        if name not in STEPS:
            raise web.HTTPNotFound(text=f"unknown step {name}; steps: {', '.join(STEPS)}")
        body = await _json(request)
        behind = _clock_behind(body)
        try:
            with book.slow_clock(behind):
                apply_step(book, order_no, name, body)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        except BusinessError as exc:
            status = 404 if exc.code == "40401" else 409
            return web.json_response({"code": exc.code, "error": exc.msg}, status=status)
        return web.json_response(book.orders[order_no])

    async def revoke(request: web.Request) -> web.Response:
        body = await _json(request)
        return web.json_response({"revoked": tokens.revoke(body.get("token"))})

    async def run_driver(request: web.Request) -> web.Response:
        body = await _json(request)
        if body.get("stop"):
            await driver.stop()
        else:
            driver.configure(
                float(body.get("dispatch_per_s", 0)),
                bool(body.get("advance", False)),
                float(body.get("min_age_s", 1.0)),
            )
            if not driver.running:
                await driver.stop()
        return web.json_response(driver.settings())

    async def stop_driver(request: web.Request) -> web.Response:
        await driver.stop()
        return web.json_response(driver.settings())

    return [
        web.post("/_sim/orders", dispatch),
        web.post("/_sim/orders/{orderNo}/{step}", step),
        web.post("/_sim/tokens/revoke", revoke),
        web.post("/_sim/driver", run_driver),
        web.delete("/_sim/driver", stop_driver),
    ]


def apply_step(book: OrderBook, order_no: str, name: str, body: dict[str, Any]) -> None:
    """One step by 12345 itself (visit, reopen, withdraw, close, touch, edit) or by the
    order's own handling unit (sign, reply, extension, return: the partner-created orders'
    district units), under the same rules as the API. Raises `BusinessError` when a rule
    refuses it, `ValueError` for an edit that is not one (`OrderBook.edit`)."""
    order = book.get(order_no)
    unit = f"unit:{order['unitCode']}"
    if name == "visit":
        book.visit(order_no, str(body.get("satisfaction", "1")), body.get("remark"))
    elif name == "reopen":
        book.reopen(order_no, str(body.get("reason", "来电人不满意，重新办理")))
    elif name == "withdraw":
        book.withdraw(order_no)
    elif name == "close":
        book.close(order_no)
    elif name == "touch":
        book.touch(order_no)
    elif name == "edit":
        fields = body.get("fields")
        if not isinstance(fields, dict) or not fields:
            raise ValueError('an edit is {"fields": {...}, "updateTime"?: "yyyy-MM-dd HH:mm:ss"}')
        stamp = body.get("updateTime")
        when = datetime.strptime(str(stamp), TIME_FORMAT) if stamp is not None else None
        book.edit(order_no, fields, when)
    elif name == "sign":
        book.sign(order_no, str(body.get("handler", "区级承办人")), unit)
    elif name == "reply":
        book.reply(
            order_no,
            str(body.get("content", "经核实，已处理完毕。")),
            str(body.get("handler", "区级承办人")),
            bool(body.get("resolved", True)),
            unit,
        )
    elif name == "extension":
        deadline = datetime.strptime(str(body["newDeadline"]), TIME_FORMAT)
        book.extension(order_no, str(body.get("reason", "情况复杂，申请延期")), deadline, unit)
    elif name == "return":
        book.return_order(order_no, str(body.get("reason", "不属于本单位职责")), unit)


def _clock_behind(body: dict[str, Any]) -> float:
    """Pops `clock_behind_s` (seconds the writing server's clock is slow; default 0)."""
    value = body.pop("clock_behind_s", 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e9:
        raise web.HTTPBadRequest(text="clock_behind_s must be a number of seconds >= 0")
    return float(value)


async def _json(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    body = await request.json()
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body
