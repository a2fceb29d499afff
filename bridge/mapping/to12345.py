"""Canonical snapshot (read from 12351) → 12345 requests.

- `create_order_request`: a 12351 case `transferred` to 12345 → `POST /orders`.
  Category: the agent's `transfer.category` when 12345's create rule accepts it, else
  the service-type table. `areaCode` must be one of the 16 (12345 has no city level):
  absent or outside → MappingError on `district_code`. A phone that does not normalise
  goes as an empty `callerPhone` with `联系电话（原文）：<as given>` as the content's
  first line. Title and content are cut to 100 / 4,000 with the marker naming the
  12351 case number; a case without description gets its subject as content (12345
  requires content).
- on a 12345-origin case: `reply_request` (the response, cut to 4,000),
  `return_request` (rejection or transfer back), `extension_request` (the union's ask,
  `newDeadline` in Beijing local time), and `sign_request`.

Every body is validated with its model; a refusal is a MappingError naming the field.
"""

from __future__ import annotations

import re
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError

from bridge.errors import MappingError
from bridge.mapping.phones import phone_for_12345
from bridge.mapping.tables import MappingTables
from bridge.mapping.text import fit, marker, with_first_lines
from bridge.mapping.times import to_beijing_seconds_up
from schemas.canonical import Referral
from schemas.hotline12345 import (
    CONTENT_MAX,
    REPLY_MAX,
    TITLE_MAX,
    CreateOrderRequest,
    ExtensionRequest,
    ReplyRequest,
    ReturnRequest,
    SignRequest,
)

EXTENSION_REASON_DEFAULT: Final = "12351职工服务热线申请延期"

M = TypeVar("M", bound=BaseModel)


def create_order_request(
    ref: Referral, request_id: str, tables: MappingTables
) -> CreateOrderRequest:
    """`POST /orders` body for a 12351-origin snapshot of a case transferred to 12345.

    Raises MappingError: not such a snapshot (`origin` / `transfer.to`), no district
    or one outside the 16 (`district_code`), or 12345's create rule refuses the result.
    """
    case_no = _require_12351_snapshot(ref, "12351")
    if ref.transfer is None or ref.transfer.to != "12345":
        to = ref.transfer.to if ref.transfer else None
        raise MappingError("transfer.to", to, case_no, "not transferred to 12345")
    if not ref.district_code:
        raise MappingError("district_code", None, case_no, "12345 needs an areaCode")
    if not tables.is_district(ref.district_code):
        raise MappingError(
            "district_code", ref.district_code, case_no, "not one of the 16 districts 12345 takes"
        )
    cut = marker("12351", case_no)
    phone, phone_line = phone_for_12345(ref.caller.phone)
    content = with_first_lines([phone_line], ref.text or ref.subject)
    street = ref.street_code
    if street and not (re.fullmatch(r"\d{9}", street) and street.startswith(ref.district_code)):
        street = None
    return _build(
        CreateOrderRequest,
        case_no,
        requestId=request_id,
        sourceSystem="12351",
        sourceNo=case_no,
        title=fit(ref.subject, TITLE_MAX, cut),
        content=fit(content, CONTENT_MAX, cut),
        callerName=ref.caller.name or None,
        callerPhone=phone,
        category=tables.category_for(ref.classification.get("12351", ""), ref.transfer.category),
        areaCode=ref.district_code,
        streetCode=street,
        address=ref.location or None,
        urgency=tables.urgency_for(ref.priority),
        confidential=ref.caller.confidential,
    )


def reply_request(ref: Referral, handler: str) -> ReplyRequest:
    """The 12345 reply from the union's response on a 12345-origin case.

    Raises MappingError (`response`) when the case has no response to send: a case
    closed without responding cannot be replied to.
    """
    case_no = _require_12351_snapshot(ref, "12345")
    if ref.reply is None or not ref.reply.text.strip():
        raise MappingError("response", None, case_no, "no response text to reply with")
    return _build(
        ReplyRequest,
        case_no,
        content=fit(ref.reply.text, REPLY_MAX, marker("12351", case_no)),
        handler=handler,
        resolved=True if ref.reply.resolved is None else ref.reply.resolved,
    )


def return_request(ref: Referral) -> ReturnRequest:
    """The 12345 return (退单) of a 12345-origin order the union rejected or transferred
    back; MappingError (`return_reason`) when there is no reason (12345 needs one)."""
    case_no = _require_12351_snapshot(ref, "12345")
    if not ref.return_reason or not ref.return_reason.strip():
        raise MappingError("return_reason", None, case_no, "a return needs a reason")
    return _build(ReturnRequest, case_no, reason=ref.return_reason)


def extension_request(ref: Referral) -> ExtensionRequest:
    """The 12345 extension from the union's `extension_request`.

    `newDeadline` is the asked instant in Beijing local time, rounded up to the second.
    Raises MappingError when there is no request (`extension_request`) or it is not
    later than the order's deadline (12345 would refuse it).
    """
    case_no = _require_12351_snapshot(ref, "12345")
    if ref.extension is None:
        raise MappingError("extension_request", None, case_no, "no extension requested")
    if ref.deadline is not None and ref.extension.new_deadline <= ref.deadline:
        raise MappingError(
            "extension_request.new_deadline", None, case_no, "not later than the deadline"
        )
    return _build(
        ExtensionRequest,
        case_no,
        reason=ref.extension.reason or EXTENSION_REASON_DEFAULT,
        newDeadline=to_beijing_seconds_up(ref.extension.new_deadline),
    )


def sign_request(handler: str) -> SignRequest:
    """The 12345 sign body; MappingError (`handler`) if the handler name is empty."""
    return _build(SignRequest, None, handler=handler)


def _require_12351_snapshot(ref: Referral, origin: str) -> str:
    """The case number of a snapshot read from 12351 with the given origin."""
    if ref.source != "12351" or ref.origin != origin:
        raise MappingError(
            "origin", ref.origin, ref.source_no, f"needs a 12351 snapshot of {origin} origin"
        )
    return ref.numbers.get("12351") or ref.source_no


def _build(model: type[M], case: str | None, **fields: Any) -> M:
    try:
        return model(**fields)
    except ValidationError as exc:
        raise MappingError.from_validation(exc, case) from exc
