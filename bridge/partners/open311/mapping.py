"""12385 (Open311) ↔ canonical referral: pure functions, no I/O, no clock, no logging.

```
12385 request + internal_referral ──referred_to_referral──▶ Referral (origin 12385)
  … + cancelled / reopen ───────────referred_update──────▶ Referral (withdrawn / reopened)
staff update on our request ────────created_to_referral───▶ Referral (origin 12351)
Referral (a 12351 case transferred) ──create_request_form──▶ POST requests
Referral (the union's case of a referral) ──post_update_steps──▶ POST servicerequestupdates
```

What is public, and so what goes where (the reading written down): `GET requests` is
public in Open311, and a request's `status_notes` is its latest update's `description`;
so `description` (of a request and of every update we post) and `address_string` are
for anyone to read. The worker's name and phone go only in the private fields
(`last_name`: the whole name, Chinese order, never split; `phone` as given); the flag in
`attribute[confidential]`.
- A public text never holds the worker's name or phone, nor anything shaped like a
  mobile, a landline or an ID card number (each becomes `（已隐去）`).
- The address is the district at most (`北京市朝阳区`), never the case's `location`
  (a home, a workplace).
- A confidential (保密) case carries no case text at all in public: the subject and
  description may name the employer or the situation, which identify the worker to the
  party complained about. Its request says `CONFIDENTIAL_TEXT` and its answers
  `CONFIDENTIAL_ANSWER`; 12385 reaches the worker through the private fields, and the
  union keeps the full text (nothing is lost, only not published). Its address is the
  city alone.

Every update body is built from snapshot data only (its `update_id` from the case
number, kind and round; its `updated_datetime` a time the case holds), so a retry after
a lost answer is a replay at 12385, not `already exists`:
- `IN_PROGRESS` in the first round only, once the union handles the case, at the case's
  creation (the snapshot holds no handling time; later rounds begin with 12385's own
  `reopen`, which opens the request again);
- `FIXED` with the (public-safe) response, at the response's time;
- `NO_FURTHER_ACTION` for a rejection, or the case sent back (transferred to 12385), at
  the case's last change (a rejected case does not change again);
- `CLOSED` at the case's last change (a closed case does not change again).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError

from bridge.errors import MappingError
from bridge.mapping.text import fit, marker
from bridge.partners.open311.tables import Open311Tables
from schemas.canonical import Caller, Lifecycle, Priority, Referral, Reply, referral_id
from schemas.hotline12351 import SUBJECT_MAX
from schemas.open311 import (
    DESCRIPTION_MAX,
    PHONE_MAX,
    CreateRequestForm,
    PostUpdateForm,
    RequestUpdate,
    ServiceRequest,
)

UNION: Final = "12351"
HIDDEN: Final = "（已隐去）"
CITY: Final = "北京市"
CONFIDENTIAL_TEXT: Final = "12351转来的保密工单：请求人身份保密，请经非公开联系方式联系请求人。"
CONFIDENTIAL_ANSWER: Final = "12351已答复（保密工单，答复已告知请求人）。"
REJECTED_TEXT: Final = "不属于工会职责"
_IDENTIFIERS: Final = re.compile(
    r"\d{17}[\dXx]"  # ID card
    r"|(?<!\d)1[3-9]\d{9}(?!\d)"  # mobile
    r"|(?<!\d)0\d{2,3}-?\d{7,8}(?!\d)"  # landline
)
_UPDATE_ID_BAD: Final = re.compile(r"[^A-Za-z0-9._:-]")
M = TypeVar("M", bound=BaseModel)


# --- 12385 → canonical ------------------------------------------------------------------


def referred_to_referral(
    name: str,
    request: ServiceRequest,
    update: RequestUpdate,
    *,
    version: int,
    read_at: datetime,
    tables: Open311Tables,
    reopen_count: int = 0,
    union: str = UNION,
) -> Referral:
    """A request 12385 referred to the union (`update` its `internal_referral`), as we
    read it with our key (private fields included): contact from the private fields,
    subject the description's first line, deadline `expected_datetime` or the table's
    default after `requested_datetime`. Raises MappingError for a request without text."""
    no = request.service_request_id
    text = (request.description or "").strip()
    if not text:
        raise MappingError("description", 0, no, "a referred request without text")
    name_parts = [request.last_name or "", request.first_name or ""]
    confidential = (request.attributes or {}).get("confidential") == "true"
    deadline = request.expected_datetime or request.requested_datetime + timedelta(
        days=tables.referral_deadline_days
    )
    return Referral(
        referral_id=referral_id(name, no),
        origin=name,
        source=name,
        target=union,
        source_version=version,
        source_no=no,
        ids={name: no},
        numbers={name: no},
        read_at=read_at,
        state=_referred_state(update, tables, reopen_count),
        native_status=update.status,
        classification={name: request.service_code},
        priority=Priority.NORMAL,
        caller=Caller(
            name="".join(name_parts) or None, phone=request.phone, confidential=confidential
        ),
        subject=fit(text.splitlines()[0].strip(), SUBJECT_MAX, marker(name, no)),
        text=text,
        location=request.address,
        accepted_at=request.requested_datetime,
        dispatched_at=update.updated_datetime,
        deadline=deadline,
        updated_at=update.updated_datetime,
        reopen_count=reopen_count,
    )


def referred_update(
    name: str,
    base: Referral,
    update: RequestUpdate,
    *,
    version: int,
    read_at: datetime,
    tables: Open311Tables,
    reopen_count: int,
    union: str = UNION,
) -> Referral:
    """The referred request after 12385 staff's `cancelled` or `reopen`: withdrawn, or
    reopened (round `reopen_count`, the update's text the reason). The request's own
    fields (contact, subject, text, deadline) come from `base`, the referral as the
    ledger last recorded it: by this side, or by the union's side from the case made of
    the request (which carries them the same); nothing of the union's handling is taken
    from it."""
    no = update.service_request_id
    reopened = update.status == "reopen"
    return Referral(
        referral_id=referral_id(name, no),
        origin=name,
        source=name,
        target=union,
        source_version=version,
        source_no=no,
        ids={name: no},
        numbers={name: no},
        read_at=read_at,
        state=_referred_state(update, tables, reopen_count),
        native_status=update.status,
        classification={k: v for k, v in base.classification.items() if k == name},
        priority=base.priority,
        caller=base.caller,
        subject=base.subject,
        text=base.text,
        location=base.location,
        accepted_at=base.accepted_at,
        deadline=base.deadline,
        updated_at=update.updated_datetime,
        reopen_count=reopen_count,
        reopen_reason=(update.description or None) if reopened else None,
    )


def _referred_state(update: RequestUpdate, tables: Open311Tables, reopen_count: int) -> Lifecycle:
    try:
        return tables.referred_status_to_lifecycle[update.status]
    except KeyError:
        raise MappingError(
            "status", update.status, update.service_request_id, "not a staff update"
        ) from None


def created_to_referral(
    name: str,
    case_no: str,
    request_id: str,
    update: RequestUpdate | None,
    *,
    version: int,
    read_at: datetime,
    tables: Open311Tables,
    union: str = UNION,
) -> Referral:
    """The request the bridge created from union case `case_no`, as 12385 staff's
    `update` leaves it (None: just created, `open`): `fixed` carries its text as the
    reply, `not_councils_responsibility` as the return reason, `closed` and `duplicate`
    as the closing note (each reaches 12351 with its `partner_update`)."""
    status = update.status if update is not None else "open"
    try:
        state = tables.created_status_to_lifecycle[status]
    except KeyError:
        raise MappingError("status", status, request_id, "not a staff update") from None
    text = update.description if update is not None else ""
    at = update.updated_datetime if update is not None else None
    return Referral(
        referral_id=referral_id(union, case_no),
        origin=union,
        source=name,
        target=union,
        source_version=version,
        source_no=request_id,
        ids={name: request_id},
        numbers={name: request_id},
        read_at=read_at,
        state=state,
        native_status=status,
        priority=Priority.NORMAL,
        accepted_at=read_at if update is None else None,
        updated_at=at,
        reply=Reply(text=text, at=at) if status == "fixed" and text else None,
        return_reason=(text or None) if status == "not_councils_responsibility" else None,
        closing_note=(text or None) if status in ("closed", "duplicate") else None,
    )


# --- canonical → 12385 ------------------------------------------------------------------


def create_request_form(
    ref: Referral, tables: Open311Tables, districts: Mapping[str, str]
) -> CreateRequestForm:
    """`POST requests` for a union case transferred to 12385 (see the module docstring
    for what is public). Raises MappingError for a service 12385 would refuse without a
    `disability_card_no`, a phone over 30 characters (it cannot go in public text), or
    a body 12385's model refuses."""
    case_no = ref.source_no
    if ref.origin != UNION or ref.source != UNION:
        raise MappingError("origin", ref.origin, case_no, "needs a snapshot of a union case")
    category = ref.transfer.category if ref.transfer is not None else None
    code = tables.service_code_for(ref.classification.get(UNION, ""), category)
    if code in tables.card_required:
        raise MappingError(
            "transfer.category", code, case_no, "needs a disability_card_no the union does not hold"
        )
    phone = ref.caller.phone or None
    if phone is not None and len(phone) > PHONE_MAX:
        raise MappingError("caller.phone", len(phone), case_no, f"longer than {PHONE_MAX}")
    confidential = ref.caller.confidential
    if confidential:
        description, address = CONFIDENTIAL_TEXT, CITY
    else:
        body = "\n".join(part for part in (ref.subject, ref.text) if part)
        description = fit(public_text(body, ref.caller), DESCRIPTION_MAX, marker(UNION, case_no))
        address = CITY + districts.get(ref.district_code or "", "")
    return _build(
        CreateRequestForm,
        case_no,
        service_code=code,
        external_ref=case_no,
        confidential=confidential,
        description=description,
        address_string=address,
        last_name=ref.caller.name or None,
        phone=phone,
    )


def post_update_steps(ref: Referral, request_id: str) -> list[tuple[str, PostUpdateForm]]:
    """The updates the union's handling of 12385's request `request_id` asks for, as
    (ledger key, body), in the order they are to be posted (module docstring)."""
    case_no = ref.numbers.get(UNION) or ref.source_no
    round_ = ref.reopen_count
    steps: list[tuple[str, PostUpdateForm]] = []

    def add(
        kind: str, status: str, at: datetime | None, text: str = "", *, once: bool = False
    ) -> None:
        key = kind if once else f"{kind}:{round_}"
        body = _build(
            PostUpdateForm,
            case_no,
            service_request_id=request_id,
            update_id=update_id(case_no, key),
            status=status,
            updated_datetime=at or ref.updated_at or ref.read_at,
            description=text,
        )
        steps.append((key, body))

    if ref.state is Lifecycle.RETURNED:
        reason = (None if ref.caller.confidential else ref.return_reason) or REJECTED_TEXT
        text = _public(ref, reason)
        add("no_further_action", "NO_FURTHER_ACTION", ref.updated_at, text, once=True)
        return steps
    handled = ref.state in (
        Lifecycle.IN_PROGRESS,
        Lifecycle.REPLIED,
        Lifecycle.CALLBACK_RECORDED,
        Lifecycle.CLOSED,
    )
    if handled and round_ == 0:
        add("in_progress", "IN_PROGRESS", ref.accepted_at)
    if ref.reply is not None:
        text = CONFIDENTIAL_ANSWER if ref.caller.confidential else _public(ref, ref.reply.text)
        add("fixed", "FIXED", ref.reply.at, text)
    if ref.native_status == "closed":
        add("closed", "CLOSED", ref.updated_at)
    return steps


def update_id(case_no: str, key: str) -> str:
    """Our `update_id` of the update `key` on union case `case_no`: stable, and within
    12385's `[A-Za-z0-9._:-]{1,64}`."""
    return _UPDATE_ID_BAD.sub("_", f"12351.{case_no}.{key}")[:64]


def public_text(text: str, caller: Caller) -> str:
    """`text` with the caller's name and phone, and anything shaped like an ID card,
    mobile or landline number, replaced by `HIDDEN`."""
    for secret in (caller.name, caller.phone):
        if secret:
            text = text.replace(secret, HIDDEN)
    return _IDENTIFIERS.sub(HIDDEN, text)


def _public(ref: Referral, text: str) -> str:
    return fit(public_text(text, ref.caller), DESCRIPTION_MAX, marker(UNION, ref.source_no))


def _build(model: type[M], case: str, **fields: Any) -> M:
    try:
        return model(**fields)
    except ValidationError as exc:
        raise MappingError.from_validation(exc, case) from exc
