"""The simulated 12345 work-order system's state and rules (no HTTP here).

Orders are kept as wire dicts (what `GET /orders/{orderNo}` returns); every change stamps
`updateTime` with the simulated Beijing second, as the application server that makes it
reads its clock: `slow_clock(s)` plays a server whose clock runs `s` seconds behind, so
what it writes carries times below ones 12345 already served (the feed's mark). `edit`
plays a hand fix in 12345's database: fields change, `updateTime` does not move forward.
A refused action raises `BusinessError` with the envelope code the spec gives it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Final

from adapters.hotline12345.sim.data import order_fields
from adapters.simkit import SimClock
from schemas.hotline12345 import TIME_FORMAT

DEADLINES: Final = {"1": timedelta(days=7), "2": timedelta(hours=24), "3": timedelta(hours=2)}
RETURN_WINDOW: Final = timedelta(hours=24)
OPEN: Final = ("10", "20", "25", "30")


def district_unit(area_code: str) -> str:
    """The 12345 district unit that handles partner-created orders of a district."""
    return f"QX{area_code}"


def fmt(value: datetime) -> str:
    return value.strftime(TIME_FORMAT)


class BusinessError(Exception):
    """A refusal answered as an HTTP 200 envelope with a non-zero code."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg


def invalid(field: str, why: str) -> BusinessError:
    return BusinessError("40001", f"参数错误：{field} {why}")


class OrderBook:
    """All orders, remembered request ids, and the log of every action taken."""

    def __init__(self, clock: SimClock, unit_code: str, rng: random.Random) -> None:
        self.clock = clock
        self.unit_code = unit_code
        self.rng = rng
        self.orders: dict[str, dict[str, Any]] = {}
        self.request_ids: dict[str, str] = {}
        self.created_by: dict[str, str] = {}
        self.extended: set[str] = set()
        self.actions: list[dict[str, Any]] = []
        self._seq = 0
        self._behind = timedelta(0)

    def now(self) -> datetime:
        """The Beijing wall clock of the server making the change, to the second (12345's
        resolution): the simulated clock, less `slow_clock`'s lag inside one."""
        return (self.clock.now_beijing() - self._behind).replace(tzinfo=None, microsecond=0)

    @contextmanager
    def slow_clock(self, seconds: float) -> Iterator[None]:
        """What happens inside is written by a server whose clock is `seconds` behind:
        every time it stamps (`updateTime`, `dispatchTime`, `replyTime`, …) is that much
        earlier. Raises `ValueError` for a negative lag."""
        if not seconds >= 0:
            raise ValueError("clock_behind_s must be a number >= 0")
        before, self._behind = self._behind, timedelta(seconds=seconds)
        try:
            yield
        finally:
            self._behind = before

    def get(self, order_no: str) -> dict[str, Any]:
        try:
            return self.orders[order_no]
        except KeyError:
            raise BusinessError("40401", f"工单不存在：{order_no}") from None

    def log(self, order_no: str, action: str, by: str, body: dict[str, Any] | None = None):
        entry = {"time": fmt(self.now()), "orderNo": order_no, "action": action, "by": by}
        self.actions.append(entry | {"body": body or {}})

    def _new_order_no(self, now: datetime) -> str:
        self._seq += 1
        return f"BJ12345-{now:%Y%m%d}-{self._seq:06d}"

    def _touch(self, order: dict[str, Any], **changes: Any) -> None:
        order.update(changes, updateTime=fmt(self.now()))

    # --- 12345's own side (control routes, driver) -------------------------------------

    def dispatch(self, fields: dict[str, Any] | None = None, *, now: datetime | None = None):
        """A new order dispatched (status 10) to `fields["unitCode"]` or the partner unit;
        any order field may be given, the rest is random."""
        now = now or self.now()
        order_no = self._new_order_no(now)
        fields = dict(fields or {})
        random_fields = order_fields(self.rng)
        urgency = fields.get("urgency") or random_fields["urgency"]
        dispatched = now
        order = {
            "orderNo": order_no,
            **random_fields,
            "urgency": urgency,
            "acceptTime": fmt(now - timedelta(minutes=self.rng.randint(2, 30))),
            "dispatchTime": fmt(dispatched),
            "deadline": fmt(dispatched + DEADLINES[urgency]),
            "unitCode": self.unit_code,
            "orderStatus": "10",
            "reopenCount": 0,
            "reopenReason": None,
            "sourceSystem": None,
            "sourceNo": None,
            "reply": None,
            "visit": None,
        }
        order.update({k: v for k, v in fields.items() if k != "orderNo"})
        order["updateTime"] = fmt(now)
        self.orders[order_no] = order
        self.log(order_no, "dispatch", "12345", {"unitCode": order["unitCode"]})
        return order_no

    def visit(self, order_no: str, satisfaction: str, remark: str | None, by: str = "12345"):
        order = self.get(order_no)
        if satisfaction not in ("1", "2", "3", "4"):
            raise invalid("satisfaction", "取值 1–4")
        self._require(order, ("30",), "回访")
        visit = {"visitTime": fmt(self.now()), "satisfaction": satisfaction, "remark": remark}
        self._touch(order, orderStatus="40", visit=visit)
        self.log(order_no, "visit", by, {"satisfaction": satisfaction})

    def reopen(self, order_no: str, reason: str, by: str = "12345") -> None:
        order = self.get(order_no)
        if not reason:
            raise invalid("reason", "必填")
        self._require(order, ("30", "40"), "重办")
        unsatisfied = (order["visit"] or {}).get("satisfaction") == "3"
        unresolved = (order["reply"] or {}).get("resolved") is False
        if not (unsatisfied or unresolved):
            raise BusinessError("40002", "仅不满意或未解决的工单可重办")
        self._touch(
            order,
            orderStatus="20",
            reply=None,
            visit=None,
            reopenCount=order["reopenCount"] + 1,
            reopenReason=reason,
        )
        self.log(order_no, "reopen", by, {"reason": reason})

    def withdraw(self, order_no: str, by: str = "12345") -> None:
        order = self.get(order_no)
        self._require(order, OPEN, "撤销")
        self._touch(order, orderStatus="70")
        self.log(order_no, "withdraw", by)

    def close(self, order_no: str, by: str = "12345") -> None:
        order = self.get(order_no)
        self._require(order, ("30", "40"), "办结")
        self._touch(order, orderStatus="50")
        self.log(order_no, "close", by)

    def touch(self, order_no: str) -> None:
        """A change that only moves `updateTime` (the shift-between-pages fault)."""
        self._touch(self.get(order_no))
        self.log(order_no, "touch", "12345")

    def edit(self, order_no: str, fields: dict[str, Any], update_time: datetime | None) -> None:
        """A hand fix in 12345's database: `fields` (order fields other than `orderNo`
        and `updateTime`) replaced as given, `updateTime` left as it was or set to
        `update_time`, which may not be later than now. Raises `ValueError` otherwise."""
        order = self.get(order_no)
        unknown = sorted(set(fields) - (set(order) - {"orderNo", "updateTime"}))
        if unknown:
            raise ValueError(f"not fields an edit may change: {', '.join(unknown)}")
        if update_time is not None and update_time > self.now():
            raise ValueError("an edit does not move updateTime past now")
        order.update(fields)
        if update_time is not None:
            order["updateTime"] = fmt(update_time)
        self.log(order_no, "edit", "12345", {"fields": sorted(fields)})

    # --- a handling unit's actions ------------------------------------------------------

    def sign(self, order_no: str, handler: str, by: str) -> None:
        order = self.get(order_no)
        self._require(order, ("10",), "签收")
        self._touch(order, orderStatus="20")
        self.log(order_no, "sign", by, {"handler": handler})

    def reply(self, order_no: str, content: str, handler: str, resolved: bool, by: str) -> None:
        order = self.get(order_no)
        self._require(order, ("20", "25"), "反馈")
        reply = {
            "content": content,
            "handler": handler,
            "replyTime": fmt(self.now()),
            "resolved": resolved,
        }
        self._touch(order, orderStatus="30", reply=reply)
        self.log(order_no, "reply", by, {"resolved": resolved, "handler": handler})

    def return_order(self, order_no: str, reason: str, by: str) -> None:
        order = self.get(order_no)
        self._require(order, ("10", "20"), "退单")
        dispatched = datetime.strptime(order["dispatchTime"], TIME_FORMAT)
        if self.now() > dispatched + RETURN_WINDOW:
            raise BusinessError("40002", "已超过派单后24小时，不能退单")
        self._touch(order, orderStatus="60")
        self.log(order_no, "return", by, {"reason": reason})

    def extension(self, order_no: str, reason: str, new_deadline: datetime, by: str) -> None:
        order = self.get(order_no)
        if order_no in self.extended:
            raise BusinessError("40002", "每个工单只能延期一次")
        self._require(order, ("20",), "延期")
        if new_deadline <= datetime.strptime(order["deadline"], TIME_FORMAT):
            raise invalid("newDeadline", "须晚于当前办理时限")
        self.extended.add(order_no)
        self._touch(order, orderStatus="25", deadline=fmt(new_deadline))
        self.log(order_no, "extension", by, {"newDeadline": fmt(new_deadline)})

    # --- a partner's create -------------------------------------------------------------

    def create(self, body: dict[str, Any], client: str) -> str:
        """A validated create (see `sim.requests.validate_create`): a new order in status 20 at
        the district's own unit, or the first order of a remembered `requestId`."""
        now = self.now()
        order_no = self._new_order_no(now)
        order = {
            "orderNo": order_no,
            **{k: body.get(k) for k in ("title", "content", "category", "areaCode", "urgency")},
            "callerName": body.get("callerName") or "",
            "callerPhone": body.get("callerPhone") or "",
            "streetCode": body.get("streetCode") or None,
            "address": body.get("address") or "",
            "acceptTime": fmt(now),
            "dispatchTime": fmt(now),
            "deadline": fmt(now + DEADLINES[body["urgency"]]),
            "unitCode": district_unit(body["areaCode"]),
            "orderStatus": "20",
            "confidential": bool(body.get("confidential", False)),
            "reopenCount": 0,
            "reopenReason": None,
            "sourceSystem": body["sourceSystem"],
            "sourceNo": body["sourceNo"],
            "reply": None,
            "visit": None,
            "updateTime": fmt(now),
        }
        self.orders[order_no] = order
        self.request_ids[body["requestId"]] = order_no
        self.created_by[order_no] = client
        self.log(order_no, "create", f"client:{client}", {"requestId": body["requestId"]})
        return order_no

    @staticmethod
    def _require(order: dict[str, Any], statuses: tuple[str, ...], action: str) -> None:
        if order["orderStatus"] not in statuses:
            raise BusinessError(
                "40002", f"工单状态{order['orderStatus']}不允许{action}：{order['orderNo']}"
            )

    def dump(self) -> dict[str, Any]:
        return {
            "now": fmt(self.now()),
            "unitCode": self.unit_code,
            "orders": list(self.orders.values()),
            "requestIds": dict(self.request_ids),
            "extended": sorted(self.extended),
            "actions": list(self.actions),
        }
