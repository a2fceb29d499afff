"""12351 case → canonical snapshot.

Two kinds of case concern the bridge:

- a case the bridge created from a partner's request (`origin.system` a partner):
  referral `<partner>:<origin.external_no>`, `ids/numbers[<partner>]` = its number;
- a union case `transferred` to another hotline: referral `12351:<case_no>`; once the
  bridge recorded the partner's number (`transfer.external_no`), it is
  `numbers[<partner>]`.

A partner-origin case that an agent marks `transferred` to that partner is a return
(退单) of the original request: state `returned`, `return_reason` = the transfer reason (the
transfer itself is kept in `transfer`). A `rejected` case is a return too, with
`rejection_reason`.

Parked (MappingError): `subject` missing or over 200, `description` over 8,000 code
points (12351's own limits), a malformed `district_code` (present, not 6 digits), a
`transferred` case whose `transfer.to` is empty or not a hotline the bridge knows.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime
from typing import Final

from bridge.errors import MappingError
from bridge.mapping.tables import MappingTables
from schemas.canonical import (
    Callback,
    Caller,
    Extension,
    Lifecycle,
    Referral,
    Reply,
    Satisfaction,
    Transfer,
    referral_id,
)
from schemas.hotline12351 import DESCRIPTION_MAX, SERVICE_TYPES, SUBJECT_MAX, Case

SYSTEM: Final = "12351"
FIRST_PARTNERS: Final = ("12345",)
"""The partners a case may come from or go to when the caller names none (a caller
outside a node: tests, tools); a node passes its deployment's partners."""


def concerns_partners(case: Case, partners: Collection[str] = FIRST_PARTNERS) -> bool:
    """Whether the case belongs on the bridge: created from a partner's request, or handed
    to another hotline (a transfer to an unknown hotline is then parked by the mapping)."""
    return _origin_no(case, partners) is not None or case.status == "transferred"


concerns_12345 = concerns_partners


def _origin_no(case: Case, partners: Collection[str]) -> str | None:
    if case.origin is not None and case.origin.system in partners:
        return case.origin.external_no
    return None


def target_of(case: Case, partners: Collection[str] = FIRST_PARTNERS) -> str | None:
    """The partner a case's referral crosses to: where it began, or where it was
    transferred; None when it concerns no partner."""
    if case.origin is not None and case.origin.system in partners:
        return case.origin.system
    if case.transfer is not None and case.transfer.to:
        return case.transfer.to
    return None


def case_to_referral(
    case: Case,
    *,
    read_at: datetime,
    tables: MappingTables,
    partners: Collection[str] = FIRST_PARTNERS,
) -> Referral:
    """The canonical snapshot of `case` at its own `version`.

    Raises MappingError (park) for the malformed cases listed in the module docstring;
    ValueError for a naive `read_at`.
    """
    if read_at.tzinfo is None:
        raise ValueError("read_at must be timezone-aware")
    no = case.case_no
    _check_source_limits(case)
    if case.service_type not in SERVICE_TYPES:
        raise MappingError("service_type", case.service_type, case.case_no, "unknown value")
    origin_no = _origin_no(case, partners)
    transfer = _transfer(case, tables, partners)
    ids = {SYSTEM: case.id}
    numbers = {SYSTEM: no}
    classification = {SYSTEM: case.service_type}
    if transfer is not None and transfer.to and transfer.category:
        classification[transfer.to] = transfer.category
    if origin_no is not None and case.origin is not None:
        origin = case.origin.system
        rid = referral_id(origin, origin_no)
        ids[origin] = numbers[origin] = origin_no
    else:
        origin, rid = SYSTEM, referral_id(SYSTEM, no)
        if transfer is not None and transfer.to and transfer.external_no:
            ids[transfer.to] = numbers[transfer.to] = transfer.external_no
    state = tables.case_lifecycle(case.status, case.reopen_count)
    return_reason = case.rejection_reason or None
    if origin != SYSTEM and transfer is not None and transfer.to == origin:
        state = Lifecycle.RETURNED  # 退单 of the original order, not a new order
        return_reason = transfer.reason or return_reason
    return Referral(
        referral_id=rid,
        origin=origin,
        source=SYSTEM,
        target=target_of(case, partners),
        source_version=case.version,
        source_no=no,
        ids=ids,
        numbers=numbers,
        read_at=read_at,
        state=state,
        native_status=case.status,
        classification=classification,
        priority=tables.priority_for_12351(case.priority),
        district_code=case.district_code or None,
        caller=Caller(
            name=case.worker.name or None,
            phone=case.worker.phone or None,
            confidential=case.worker.confidential,
        ),
        subject=case.subject,
        text=case.description or "",
        location=case.location or None,
        accepted_at=case.created_at,
        deadline=case.origin.deadline if case.origin is not None else None,
        updated_at=case.updated_at,
        reply=_reply(case),
        callback=_callback(case),
        extension=_extension(case),
        transfer=transfer,
        return_reason=return_reason,
        reopen_count=case.reopen_count,
    )


def _check_source_limits(case: Case) -> None:
    no = case.case_no
    if case.district_code and not re.fullmatch(r"\d{6}", case.district_code):
        raise MappingError("district_code", case.district_code, no, "not a 6-digit code")
    if not case.subject.strip():
        raise MappingError("subject", 0, no, "missing")
    if len(case.subject) > SUBJECT_MAX:
        size = len(case.subject)
        raise MappingError("subject", size, no, f"length {size} > {SUBJECT_MAX}")
    if case.description is not None and len(case.description) > DESCRIPTION_MAX:
        size = len(case.description)
        raise MappingError("description", size, no, f"length {size} > {DESCRIPTION_MAX}")


def _transfer(case: Case, tables: MappingTables, partners: Collection[str]) -> Transfer | None:
    if case.status == "transferred":
        target = case.transfer.to if case.transfer is not None else None
        if not target:
            raise MappingError("transfer.to", None, case.case_no, "transferred to no hotline")
        allowed = partners if tables.transfer_targets is None else tables.transfer_targets
        if target not in allowed or target == SYSTEM:
            raise MappingError("transfer.to", target, case.case_no, f"unknown hotline {target!r}")
    if case.transfer is None:
        return None
    t = case.transfer
    return Transfer(
        to=t.to or None,
        reason=t.reason or None,
        category=t.category or None,
        requested_at=t.requested_at,
        external_no=t.external_no or None,
    )


def _reply(case: Case) -> Reply | None:
    if case.response is None:
        return None
    r = case.response
    return Reply(text=r.text, handler=r.responder, at=r.responded_at, resolved=r.resolved)


def _callback(case: Case) -> Callback | None:
    if case.callback is None:
        return None
    c = case.callback
    try:
        satisfaction = Satisfaction(c.satisfaction)
    except ValueError:
        raise MappingError(
            "callback.satisfaction", c.satisfaction, case.case_no, "unknown value"
        ) from None
    return Callback(satisfaction=satisfaction, at=c.at, note=c.note)


def _extension(case: Case) -> Extension | None:
    if case.extension_request is None:
        return None
    e = case.extension_request
    return Extension(
        new_deadline=e.new_deadline, reason=e.reason, requested_at=e.requested_at, granted=None
    )
