"""Canonical snapshot (read from 12345) → 12351 requests.

Bodies are built from snapshot data only, never from the clock: an event's `at` is a
time the snapshot holds (`_event_time`), so a retry sends the identical body and
12351's idempotent replay recognises it.

- `create_case_request`: a 12345-origin snapshot → `POST /cases`. A well-formed district
  outside the 16 is left out (the case goes to city level) and named on the first line
  of the description, `原属地编码：<code>`; the phone goes as given (12351 takes free
  text); subject and description are cut to 200 / 8,000 with the marker naming the order.
- `partner_update_for`: a 12345 snapshot of an order created from a 12351 case → the
  partner status of its `orderStatus` (ARCHITECTURE.md's table), with the reply text
  (cut to 2,000) for `replied` and the visit's satisfaction for 40.
- events on a 12345-origin case: `callback_result_for`, `reopened_for`, `withdrawn_for`,
  `extension_granted_for`; `external_ref_for` on a transferred case.

Every body is validated with its model; a refusal is a MappingError naming the field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError

from bridge.errors import MappingError
from bridge.mapping.tables import MappingTables
from bridge.mapping.text import fit, marker, with_first_lines
from bridge.mapping.times import to_beijing
from schemas.canonical import Lifecycle, Referral
from schemas.hotline12345 import TIME_FORMAT
from schemas.hotline12351 import (
    DESCRIPTION_MAX,
    PARTNER_TEXT_MAX,
    SUBJECT_MAX,
    CallbackResultBody,
    CreateCaseRequest,
    ExternalRefBody,
    PartnerUpdateBody,
    ReopenedBody,
    WithdrawnBody,
)

DISTRICT_LINE_PREFIX: Final = "原属地编码："
REOPEN_REASON_DEFAULT: Final = "12345重办（未说明原因）"
WITHDRAWN_REASON: Final = "12345已撤销工单 {order_no}"
EXTENDED_TEXT: Final = "12345已同意延期，办理时限至 {deadline}"

M = TypeVar("M", bound=BaseModel)


def create_case_request(ref: Referral, tables: MappingTables) -> CreateCaseRequest:
    """`POST /cases` body for a 12345-origin snapshot read from 12345.

    Raises MappingError when the snapshot is not one (`origin`), has no deadline
    (`deadline`: a 12345-origin case always carries `origin.deadline`), or 12351's
    model refuses the result.
    """
    order_no = _require_12345_snapshot(ref, "12345")
    if ref.deadline is None:
        raise MappingError("deadline", None, order_no, "a 12345-origin case needs a deadline")
    cut = marker("12345", order_no)
    district = ref.district_code if tables.is_district(ref.district_code) else None
    district_line = None
    if ref.district_code and district is None:
        district_line = f"{DISTRICT_LINE_PREFIX}{ref.district_code}"
    description = fit(with_first_lines([district_line], ref.text), DESCRIPTION_MAX, cut)
    return _build(
        CreateCaseRequest,
        order_no,
        channel="partner",
        origin={"system": "12345", "external_no": order_no, "deadline": ref.deadline},
        worker={
            "name": ref.caller.name or None,
            "phone": ref.caller.phone or None,
            "confidential": ref.caller.confidential,
        },
        district_code=district,
        service_type=tables.service_type_for(ref.classification.get("12345", "")),
        priority=tables.priority12351_for(ref.priority),
        subject=fit(ref.subject, SUBJECT_MAX, cut),
        description=description or None,
        location=ref.location or None,
    )


def partner_update_for(ref: Referral, tables: MappingTables) -> PartnerUpdateBody | None:
    """The `partner_update` telling 12351 where the order made from its case stands;
    None for a status with no partner status (10)."""
    order_no = _require_12345_snapshot(ref, "12351")
    status = tables.partner_status_for(ref.native_status, ref.reopen_count)
    if status is None:
        return None
    text = None
    satisfaction = None
    at = ref.updated_at
    if status == "accepted":
        at = ref.dispatched_at or ref.accepted_at or at
    elif status == "in_progress":
        text = ref.reopen_reason
    elif status == "extended" and ref.deadline is not None:
        text = _extended_text(ref.deadline)
    elif status == "replied":
        if ref.reply is not None:
            text = ref.reply.text
            at = ref.reply.at or at
        if ref.native_status == "40" and ref.callback is not None:
            satisfaction = ref.callback.satisfaction.value
            at = ref.callback.at or at
    if text:
        text = fit(text, PARTNER_TEXT_MAX, marker("12345", order_no))
    return _build(
        PartnerUpdateBody,
        order_no,
        status=status,
        text=text or None,
        at=at or ref.read_at,
        satisfaction=satisfaction,
    )


def external_ref_for(ref: Referral, order_no: str | None = None) -> ExternalRefBody:
    """`external_ref` recording the 12345 order number on the transferred case.

    `order_no` defaults to the snapshot's `numbers["12345"]`; raises MappingError if
    neither is known.
    """
    number = order_no or ref.numbers.get("12345")
    if not number:
        raise MappingError("numbers.12345", None, ref.source_no, "no 12345 order number yet")
    return _build(ExternalRefBody, ref.source_no, system="12345", external_no=number)


def callback_result_for(ref: Referral) -> CallbackResultBody | None:
    """`callback_result` from the 12345 visit of a 12345-origin order; None before a visit."""
    order_no = _require_12345_snapshot(ref, "12345")
    if ref.callback is None:
        return None
    return _build(
        CallbackResultBody,
        order_no,
        satisfaction=ref.callback.satisfaction.value,
        at=ref.callback.at or ref.updated_at or ref.read_at,
        note=ref.callback.note or None,
    )


def reopened_for(ref: Referral) -> ReopenedBody | None:
    """`reopened` for a 12345-origin order that 12345 sent back (重办); None if never.

    The reason is `reopenReason`, or a fixed text when 12345 gave none (12351 needs one).
    """
    order_no = _require_12345_snapshot(ref, "12345")
    if ref.reopen_count == 0:
        return None
    return _build(
        ReopenedBody,
        order_no,
        reason=ref.reopen_reason or REOPEN_REASON_DEFAULT,
        at=ref.updated_at or ref.read_at,
    )


def withdrawn_for(ref: Referral) -> WithdrawnBody | None:
    """`withdrawn` for a 12345-origin order 12345 withdrew (70); None otherwise."""
    order_no = _require_12345_snapshot(ref, "12345")
    if ref.state is not Lifecycle.WITHDRAWN:
        return None
    return _build(WithdrawnBody, order_no, reason=WITHDRAWN_REASON.format(order_no=order_no))


def extension_granted_for(ref: Referral) -> PartnerUpdateBody | None:
    """`partner_update` `extended` for a 12345-origin order whose extension 12345 granted
    (status 25); None otherwise."""
    order_no = _require_12345_snapshot(ref, "12345")
    if ref.extension is None or not ref.extension.granted:
        return None
    return _build(
        PartnerUpdateBody,
        order_no,
        status="extended",
        text=_extended_text(ref.extension.new_deadline),
        at=ref.updated_at or ref.read_at,
    )


def _extended_text(deadline: datetime) -> str:
    return EXTENDED_TEXT.format(deadline=to_beijing(deadline).strftime(TIME_FORMAT))


def _require_12345_snapshot(ref: Referral, origin: str) -> str:
    """The order number of a snapshot read from 12345 with the given origin."""
    if ref.source != "12345" or ref.origin != origin:
        raise MappingError(
            "origin", ref.origin, ref.source_no, f"needs a 12345 snapshot of {origin} origin"
        )
    return ref.numbers.get("12345") or ref.source_no


def _build(model: type[M], case: str, **fields: Any) -> M:
    try:
        return model(**fields)
    except ValidationError as exc:
        raise MappingError.from_validation(exc, case) from exc
