"""Native payloads of the 12351 case integration interface (v1), as published.

Times are RFC 3339 with an offset (timezone-aware `datetime`). Requests forbid unknown
fields at every level, as 12351 refuses them with 422; the case as read is tolerant
(extra fields ignored, phones as typed).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

SUBJECT_MAX: Final = 200
DESCRIPTION_MAX: Final = 8000
PARTNER_TEXT_MAX: Final = 2000
IDEMPOTENCY_KEY_MAX: Final = 255
PAGE_LIMIT_MAX: Final = 500

# The 16 GB/T 2260 codes of Beijing's districts, shared with 12345; any other code is refused.
DISTRICT_CODES: Final[frozenset[str]] = frozenset(
    "110101 110102 110105 110106 110107 110108 110109 110111 "
    "110112 110113 110114 110115 110116 110117 110118 110119".split()
)

ServiceType = Literal[
    "union_membership",
    "legal_aid",
    "mutual_aid",
    "hardship_relief",
    "skills",
    "service_activity",
    "health",
    "psych_care",
    "maternal_care",
    "other",
]
SERVICE_TYPES: Final[tuple[str, ...]] = ServiceType.__args__  # type: ignore[attr-defined]
Priority = Literal["normal", "high", "alert"]
CaseStatus = Literal[
    "received",
    "dispatched",
    "verifying",
    "handling",
    "responded",
    "callback_done",
    "closed",
    "transferred",
    "rejected",
]
Level = Literal["city", "district", "street"]
Channel = Literal["phone", "app", "wechat", "walk_in", "partner"]
Satisfaction = Literal["satisfied", "basically_satisfied", "dissatisfied", "unreachable"]
PartnerStatus = Literal[
    "accepted",
    "in_progress",
    "extended",
    "replied",
    "closed",
    "returned",
    "withdrawn",
]
EventType = Literal[
    "created",
    "external_ref",
    "partner_update",
    "callback_result",
    "withdrawn",
    "reopened",
]
DistrictCode = Annotated[str, StringConstraints(pattern=r"^\d{6}$")]


class _Read(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Worker(_Read):
    name: str | None = None
    phone: str | None = None
    employer: str | None = None
    member_card_no: str | None = None
    is_member: bool | None = None
    confidential: bool = False


class Response(_Read):
    text: str
    responder: str | None = None
    responded_at: AwareDatetime | None = None
    resolved: bool | None = None


class Callback(_Read):
    at: AwareDatetime | None = None
    satisfaction: str  # checked by the mapping: an odd value parks the case, not the page
    note: str | None = None


class Transfer(_Read):
    to: str | None = None
    reason: str | None = None
    category: str | None = None
    requested_at: AwareDatetime | None = None
    external_no: str | None = None


class ExtensionAsk(_Read):
    new_deadline: AwareDatetime
    reason: str | None = None
    requested_at: AwareDatetime | None = None


class Origin(_Read):
    system: str
    external_no: str
    deadline: AwareDatetime | None = None


class Case(_Read):
    """A case as `GET /cases/{id}` and the change feed return it."""

    id: str = Field(min_length=1)
    case_no: str = Field(min_length=1)
    channel: str | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime
    version: int = Field(ge=0)
    worker: Worker = Worker()
    district_code: str | None = None
    level: str | None = None
    service_type: str  # codes are checked by the mapping (a bad one parks this case only)
    priority: str
    subject: str
    description: str | None = None
    location: str | None = None
    status: str
    response: Response | None = None
    callback: Callback | None = None
    rejection_reason: str | None = None
    reopen_count: int = Field(default=0, ge=0)
    transfer: Transfer | None = None
    extension_request: ExtensionAsk | None = None
    origin: Origin | None = None


class CasePage(_Read):
    items: list[Case]
    next_cursor: str


class Event(_Read):
    id: str
    type: str
    at: AwareDatetime
    actor: str
    body: dict[str, Any] = {}


class EventList(_Read):
    items: list[Event]


class ProblemField(_Read):
    pointer: str
    detail: str = ""


class Problem(_Read):
    """RFC 9457 problem document."""

    type: str = "about:blank"
    title: str = ""
    status: int
    detail: str = ""
    errors: list[ProblemField] = []


# --- requests (the bridge writes these; unknown fields forbidden, as 12351 does) ---


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OriginIn(_Request):
    system: str = Field(min_length=1)
    external_no: str = Field(min_length=1)
    deadline: AwareDatetime | None = None


class WorkerIn(_Request):
    name: str | None = None
    phone: str | None = None
    confidential: bool = False


class CreateCaseRequest(_Request):
    channel: Channel = "partner"
    origin: OriginIn
    worker: WorkerIn | None = None
    district_code: DistrictCode | None = None
    service_type: ServiceType
    priority: Priority
    subject: str = Field(min_length=1, max_length=SUBJECT_MAX)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    location: str | None = None


# The body fields of each event type. On the wire they sit beside `type` in one flat
# object (`event_request`); the timeline shows them, without `type`, under `body`.


class ExternalRefBody(_Request):
    system: str = Field(min_length=1)
    external_no: str = Field(min_length=1)


class PartnerUpdateBody(_Request):
    status: PartnerStatus
    text: str | None = Field(default=None, max_length=PARTNER_TEXT_MAX)
    at: AwareDatetime
    satisfaction: Satisfaction | None = None


class CallbackResultBody(_Request):
    satisfaction: Satisfaction
    at: AwareDatetime
    note: str | None = None


class WithdrawnBody(_Request):
    reason: str = Field(min_length=1)


class ReopenedBody(_Request):
    reason: str = Field(min_length=1)
    at: AwareDatetime


EventBody = ExternalRefBody | PartnerUpdateBody | CallbackResultBody | WithdrawnBody | ReopenedBody

EVENT_BODIES: Final[dict[str, type[_Request]]] = {
    "external_ref": ExternalRefBody,
    "partner_update": PartnerUpdateBody,
    "callback_result": CallbackResultBody,
    "withdrawn": WithdrawnBody,
    "reopened": ReopenedBody,
}


def event_request(type_: str, body: BaseModel) -> dict[str, Any]:
    """The JSON of `POST /cases/{id}/events`: ONE flat object, `type` beside that type's
    body fields (`{"type": "withdrawn", "reason": "..."}`). 12351 has no nested `body`
    object in a request (it refuses a `body` key as an unknown field); only the timeline
    shows the fields under `body`. Raises `TypeError` when `body` is not `type_`'s model."""
    expected = EVENT_BODIES.get(type_)
    if expected is None or not isinstance(body, expected):
        raise TypeError(f"event {type_!r} cannot take a {body.__class__.__name__} body")
    return {"type": type_, **body.model_dump(mode="json", exclude_none=True)}


def event_type_of(body: BaseModel) -> str:
    """The event type whose body model `body` is; `TypeError` for any other model."""
    for type_, model in EVENT_BODIES.items():
        if type(body) is model:
            return type_
    raise TypeError(f"{body.__class__.__name__} is not a 12351 event body")


def rfc3339(value: datetime) -> str:
    """RFC 3339 with offset and milliseconds, as 12351 writes it."""
    return value.isoformat(timespec="milliseconds")
