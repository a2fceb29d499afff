"""12345 work order → canonical snapshot.

Two kinds of order concern the bridge, told apart by `sourceSystem`:

- dispatched to the union's unit (origin 12345): referral `12345:<orderNo>`;
- created by the bridge from a transferred 12351 case (`sourceSystem == "12351"`):
  referral `12351:<sourceNo>` (the case number), `numbers["12351"] = sourceNo`.

A `sourceSystem` other than 12351 (another partner's order that 12345 dispatched to
the union) is the city's order like any other: origin 12345.

Parked (MappingError): a malformed `areaCode` (present, not 6 digits), `title` over
100 or `content` over 4,000 code points (12345's own limits), a missing `title`, a
missing `deadline` on an order dispatched to the union (its case must carry
`origin.deadline`), a 12351-created order without `sourceNo`, a 12351-created order
dispatched to the union's own unit (a loop), status 25 without a deadline.
12345 publishes no return reason, so `return_reason` stays None.
"""

from __future__ import annotations

import re
from datetime import datetime

from bridge.errors import MappingError
from bridge.mapping.tables import MappingTables
from bridge.mapping.times import from_beijing
from schemas.canonical import Callback, Caller, Extension, Referral, Reply, referral_id
from schemas.hotline12345 import CONTENT_MAX, TITLE_MAX, Order


def order_to_referral(
    order: Order, *, version: int, read_at: datetime, unit_code: str, tables: MappingTables
) -> Referral:
    """The canonical snapshot of `order` at the reading node's sequence number `version`.

    `unit_code` is the union's handling unit at 12345. Raises MappingError (park) for
    the malformed orders listed in the module docstring; ValueError for a naive `read_at`.
    """
    if read_at.tzinfo is None:
        raise ValueError("read_at must be timezone-aware")
    no = order.orderNo
    _check_source_limits(order)
    if not (len(order.category) == 4 and order.category.isascii() and order.category.isdigit()):
        raise MappingError("category", order.category, no, "not a 4-digit code")
    created_from_12351 = order.sourceSystem == "12351"
    numbers = {"12345": no}
    if created_from_12351:
        if not order.sourceNo:
            raise MappingError("sourceNo", None, no, "order from 12351 without sourceNo")
        if order.unitCode == unit_code:
            raise MappingError(
                "sourceSystem", "12351", no, "loop: order from 12351 dispatched to the union"
            )
        origin, rid = "12351", referral_id("12351", order.sourceNo)
        numbers["12351"] = order.sourceNo
    else:
        if order.deadline is None:
            raise MappingError("deadline", None, no, "missing on an order for the union")
        origin, rid = "12345", referral_id("12345", no)
    deadline = from_beijing(order.deadline)
    extension = None
    if order.orderStatus == "25":
        if deadline is None:
            raise MappingError("deadline", None, no, "status 25 without a deadline")
        extension = Extension(new_deadline=deadline, granted=True)
    return Referral(
        referral_id=rid,
        origin=origin,
        source="12345",
        source_version=version,
        source_no=no,
        ids={"12345": no},
        numbers=numbers,
        read_at=read_at,
        state=tables.order_lifecycle(order.orderStatus, order.reopenCount),
        native_status=order.orderStatus,
        classification={"12345": order.category},
        priority=tables.priority_for_urgency(order.urgency),
        district_code=order.areaCode or None,
        street_code=order.streetCode or None,
        caller=Caller(
            name=order.callerName or None,
            phone=order.callerPhone or None,
            confidential=order.confidential,
        ),
        subject=order.title,
        text=order.content,
        location=order.address or None,
        accepted_at=from_beijing(order.acceptTime),
        dispatched_at=from_beijing(order.dispatchTime),
        deadline=deadline,
        updated_at=from_beijing(order.updateTime),
        reply=_reply(order),
        callback=_callback(order, tables),
        extension=extension,
        transfer=None,
        return_reason=None,
        reopen_count=order.reopenCount,
        reopen_reason=order.reopenReason or None,
        unit_code=order.unitCode or None,
    )


def _check_source_limits(order: Order) -> None:
    no = order.orderNo
    if order.areaCode and not re.fullmatch(r"\d{6}", order.areaCode):
        raise MappingError("areaCode", order.areaCode, no, "not a 6-digit district code")
    if not order.title.strip():
        raise MappingError("title", 0, no, "missing")
    if len(order.title) > TITLE_MAX:
        raise MappingError(
            "title", len(order.title), no, f"length {len(order.title)} > {TITLE_MAX}"
        )
    if len(order.content) > CONTENT_MAX:
        raise MappingError(
            "content", len(order.content), no, f"length {len(order.content)} > {CONTENT_MAX}"
        )


def _reply(order: Order) -> Reply | None:
    if order.reply is None:
        return None
    return Reply(
        text=order.reply.content,
        handler=order.reply.handler,
        at=from_beijing(order.reply.replyTime),
        resolved=order.reply.resolved,
    )


def _callback(order: Order, tables: MappingTables) -> Callback | None:
    if order.visit is None:
        return None
    return Callback(
        satisfaction=tables.satisfaction_for(order.visit.satisfaction, case=order.orderNo),
        at=from_beijing(order.visit.visitTime),
        note=order.visit.remark,
    )
