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
SYSTEM: Final = "12351"
REOPEN_REASON_DEFAULT: Final = "{partner}重办（未说明原因）"
WITHDRAWN_REASON: Final = "{partner}已撤销工单 {order_no}"
EXTENDED_TEXT: Final = "{partner}已同意延期，办理时限至 {deadline}"

M = TypeVar("M", bound=BaseModel)


def create_case_request(
    ref: Referral, tables: MappingTables, service_type: str | None = None
) -> CreateCaseRequest:
    """`POST /cases` body for a snapshot read from the partner where the request began.
    `service_type` is the union's for the request, as the partner's kind reads it
    (`bridge.partners.UnionView`); None: the 12345 category row of `tables`.

    Raises MappingError when the snapshot is not one (`origin`), has no deadline
    (`deadline`: a 12345-origin case always carries `origin.deadline`), or 12351's
    model refuses the result.
    """
    order_no = _require_partner_snapshot(ref)
    if ref.deadline is None:
        raise MappingError("deadline", None, order_no, "a partner-origin case needs a deadline")
    cut = marker(ref.source, order_no)
    district = ref.district_code if tables.is_district(ref.district_code) else None
    district_line = None
    if ref.district_code and district is None:
        district_line = f"{DISTRICT_LINE_PREFIX}{ref.district_code}"
    description = fit(with_first_lines([district_line], ref.text), DESCRIPTION_MAX, cut)
    return _build(
        CreateCaseRequest,
        order_no,
        channel="partner",
        origin={"system": ref.source, "external_no": order_no, "deadline": ref.deadline},
        worker={
            "name": ref.caller.name or None,
            "phone": ref.caller.phone or None,
            "confidential": ref.caller.confidential,
        },
        district_code=district,
        service_type=service_type
        or tables.service_type_for(ref.classification.get(ref.source, "")),
        priority=tables.priority12351_for(ref.priority),
        subject=fit(ref.subject, SUBJECT_MAX, cut),
        description=description or None,
        location=ref.location or None,
    )


FROM_TABLES: Final = ("", False)
"""`partner_update_for`'s default: the partner status from the 12345 rows of the tables."""


def partner_update_for(
    ref: Referral, tables: MappingTables, status: tuple[str, bool] | None = FROM_TABLES
) -> PartnerUpdateBody | None:
    """The `partner_update` telling 12351 where the partner's record made from its case
    stands; None for a status with no partner status (12345: 10). `status` is the
    partner status and whether the visit's satisfaction goes with it, as the partner's
    kind reads the snapshot (None: nothing to tell); by default `tables`' 12345 rows.
    """
    order_no = _require_union_case_snapshot(ref)
    if status == FROM_TABLES:
        found = tables.partner_status_for(ref.native_status, ref.reopen_count)
        status = None if found is None else (found, ref.native_status == "40")
    return partner_update(ref, order_no, status)


def partner_update(
    ref: Referral, order_no: str, status_and_visit: tuple[str, bool] | None
) -> PartnerUpdateBody | None:
    """The `partner_update` of `status_and_visit` for a union case's partner record."""
    if status_and_visit is None:
        return None
    status, visited = status_and_visit
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
        text = _extended_text(ref.source, ref.deadline)
    elif status == "replied":
        if ref.reply is not None:
            text = ref.reply.text
            at = ref.reply.at or at
        if visited and ref.callback is not None:
            satisfaction = ref.callback.satisfaction.value
            at = ref.callback.at or at
    elif status == "returned":
        text = ref.return_reason  # 12345 publishes none; Open311 staff write one
    elif status == "closed":
        text = ref.closing_note
    if text:
        text = fit(text, PARTNER_TEXT_MAX, marker(ref.source, order_no))
    return _build(
        PartnerUpdateBody,
        order_no,
        status=status,
        text=text or None,
        at=at or ref.read_at,
        satisfaction=satisfaction,
    )


def external_ref_for(ref: Referral, order_no: str | None = None) -> ExternalRefBody:
    """`external_ref` recording the partner's number on the transferred case.

    `order_no` defaults to the snapshot's number at its source (`numbers[ref.source]`);
    raises MappingError if neither is known.
    """
    # the partner the case went to: the snapshot's source, or (a snapshot of the union's
    # own case, as a tool may pass) the partner it names as its target
    partner = ref.source if ref.source != SYSTEM else (ref.target or ref.source)
    number = order_no or ref.numbers.get(partner)
    if not number:
        raise MappingError(f"numbers.{partner}", None, ref.source_no, f"no {partner} number yet")
    case_no = ref.numbers.get(SYSTEM) or ref.source_no
    return _build(ExternalRefBody, case_no, system=partner, external_no=number)


def callback_result_for(ref: Referral) -> CallbackResultBody | None:
    """`callback_result` from the partner's visit of a partner-origin request; None before
    a visit."""
    order_no = _require_partner_snapshot(ref)
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
    """`reopened` for a partner-origin request the partner sent back (重办); None if never.

    The reason is the partner's, or a fixed text when it gave none (12351 needs one).
    """
    order_no = _require_partner_snapshot(ref)
    if ref.reopen_count == 0:
        return None
    return _build(
        ReopenedBody,
        order_no,
        reason=ref.reopen_reason or REOPEN_REASON_DEFAULT.format(partner=ref.source),
        at=ref.updated_at or ref.read_at,
    )


def withdrawn_for(ref: Referral) -> WithdrawnBody | None:
    """`withdrawn` for a partner-origin request the partner withdrew; None otherwise."""
    order_no = _require_partner_snapshot(ref)
    if ref.state is not Lifecycle.WITHDRAWN:
        return None
    return _build(
        WithdrawnBody,
        order_no,
        reason=WITHDRAWN_REASON.format(partner=ref.source, order_no=order_no),
    )


def extension_granted_for(ref: Referral) -> PartnerUpdateBody | None:
    """`partner_update` `extended` for a partner-origin request whose extension the
    partner granted (12345: status 25); None otherwise."""
    order_no = _require_partner_snapshot(ref)
    if ref.extension is None or not ref.extension.granted:
        return None
    return _build(
        PartnerUpdateBody,
        order_no,
        status="extended",
        text=_extended_text(ref.source, ref.extension.new_deadline),
        at=ref.updated_at or ref.read_at,
    )


def _extended_text(partner: str, deadline: datetime) -> str:
    when = to_beijing(deadline).strftime(TIME_FORMAT)
    return EXTENDED_TEXT.format(partner=partner, deadline=when)


def _require_partner_snapshot(ref: Referral) -> str:
    """The partner's number of a snapshot read from the partner where it began."""
    if ref.source == SYSTEM or ref.origin != ref.source:
        raise MappingError(
            "origin", ref.origin, ref.source_no, "needs a partner's snapshot of its own request"
        )
    return ref.numbers.get(ref.source) or ref.source_no


def _require_union_case_snapshot(ref: Referral) -> str:
    """The partner's number of a snapshot of the record a partner made from a union case."""
    if ref.source == SYSTEM or ref.origin != SYSTEM:
        raise MappingError(
            "origin", ref.origin, ref.source_no, "needs a partner's snapshot of a union case"
        )
    return ref.numbers.get(ref.source) or ref.source_no


def _build(model: type[M], case: str, **fields: Any) -> M:
    try:
        return model(**fields)
    except ValidationError as exc:
        raise MappingError.from_validation(exc, case) from exc
