"""Native payloads of the 12385 Open311 GeoReport v2 server (with mySociety's
`servicerequestupdates` extension), as `specs/open311-georeport-v2.md` section 8 fixes them.

JSON answers are bare arrays (bare objects for a service definition); reads are tolerant
(unknown fields ignored) and lower-case a status, since Open311 statuses are read
case-insensitively. Writes are form bodies: `CreateRequestForm` and `PostUpdateForm`
check what 12385 refuses (400) and render themselves as `(name, value)` pairs with
`form()`. Times are written `YYYY-MM-DDThh:mm:ss+08:00` (`open311_time`), never with
fractions; a write takes aware datetimes only.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

DESCRIPTION_MAX: Final = 4000
"""Unicode code points (Python `len`)."""
PHONE_MAX: Final = 30
UPDATE_ID_PATTERN: Final = r"^[A-Za-z0-9._:-]{1,64}$"
WINDOW_MAX: Final = timedelta(hours=24)
"""The longest `servicerequestupdates` window 12385 accepts."""
LIST_MAX: Final = 1000
"""The most requests or updates one list answers."""
BEIJING: Final = timezone(timedelta(hours=8), "Asia/Shanghai")
HOME_AGENCY: Final = "12385"
"""`agency_responsible` of a request nobody else was referred."""

UpdateStatus = Literal[
    "open",
    "closed",
    "fixed",
    "in_progress",
    "planned",
    "action_scheduled",
    "investigating",
    "duplicate",
    "not_councils_responsibility",
    "no_further_action",
    "internal_referral",
    "cancelled",
    "reopen",
    "for_triage",
    "unchanged",
]
PostStatus = Literal[
    "IN_PROGRESS", "ACTION_SCHEDULED", "INVESTIGATING", "FIXED", "NO_FURTHER_ACTION", "CLOSED"
]
"""What a partner may post on a request referred to it (upper case, as 12385 wants)."""
POST_STATUSES: Final[tuple[str, ...]] = PostStatus.__args__  # type: ignore[attr-defined]
RequestStatus = Literal["open", "closed"]
ServiceType = Literal["realtime", "batch", "blackbox"]


def open311_time(when: datetime) -> str:
    """`when` (aware) as 12385 writes it: Beijing offset, whole seconds."""
    if when.tzinfo is None:
        raise ValueError("an Open311 time needs an aware datetime")
    return when.astimezone(BEIJING).replace(microsecond=0).isoformat()


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


LowerStatus = Annotated[UpdateStatus, BeforeValidator(_lower)]


class _Read(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- reads ------------------------------------------------------------------------------


class Service(_Read):
    """One entry of `GET services.json`."""

    service_code: str
    service_name: str
    description: str | None = None
    metadata: bool
    type: ServiceType
    keywords: str | None = None
    group: str | None = None


class AttributeValue(_Read):
    key: str
    name: str


class Attribute(_Read):
    variable: bool
    code: str
    datatype: Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
    required: bool
    datatype_description: str | None = None
    order: int = Field(ge=1)
    description: str | None = None
    values: list[AttributeValue] = Field(default_factory=list)


class ServiceDefinition(_Read):
    """`GET services/{code}.json`: a bare object."""

    service_code: str
    attributes: list[Attribute]


class RequestCreated(_Read):
    """One entry of the `POST requests.json` answer: an id (realtime) or a token (batch)."""

    service_request_id: str | None = None
    token: str | None = None
    service_notice: str | None = None
    account_id: str | None = None


class TokenAnswer(_Read):
    """`GET tokens/{token}.json`: the token alone until 12385 has made the request."""

    token: str
    service_request_id: str | None = None


class ServiceRequest(_Read):
    """A request as 12385 returns it (every field present, `null` when unknown). The
    private fields (`first_name` … `attributes`) come only from `GET requests/{id}` with
    the key of the partner the request is referred to or that created it; else None."""

    service_request_id: str
    status: RequestStatus
    status_notes: str | None = None
    service_name: str | None = None
    service_code: str
    description: str | None = None
    agency_responsible: str | None = None
    service_notice: str | None = None
    requested_datetime: AwareDatetime
    updated_datetime: AwareDatetime | None = None
    expected_datetime: AwareDatetime | None = None
    address: str | None = None
    address_id: str | None = None
    zipcode: str | None = None
    lat: float | None = None
    long: float | None = None
    media_url: str | list[str] | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    email: str | None = None
    attributes: dict[str, str | list[str]] | None = None

    @property
    def external_ref(self) -> str | None:
        """The partner case number it was created with (private: creator only)."""
        value = (self.attributes or {}).get("external_ref")
        return value if isinstance(value, str) else None


class RequestUpdate(_Read):
    """One entry of `GET servicerequestupdates.json`; `update_id` is 12385's own id."""

    update_id: str
    service_request_id: str
    status: LowerStatus
    description: str = ""
    updated_datetime: AwareDatetime
    media_url: str | list[str] | None = None
    external_status_code: str | None = None
    extras: dict[str, str] | None = None


class UpdatePosted(_Read):
    """The `POST servicerequestupdates.json` answer: 12385's id of the update."""

    update_id: str
    account_id: str | None = None


class ErrorEntry(_Read):
    """One entry of an error array; `code` equals the HTTP status at 12385."""

    code: int
    description: str = ""


class UpdateRecord(_Read):
    """What the `updates` feed yields: one update and, for an `internal_referral` (a
    request 12385 referred to us), the request as we see it then, private fields included.

    Why only then: 12385 allows 10 calls a minute for everything, so the reader spends a
    `GET requests/{id}` only where the engine cannot do without it: a referral starts a
    new case on our side and needs the requester's details, which no list carries. Every
    other update names its request by id, and the update itself is the change."""

    update: RequestUpdate
    request: ServiceRequest | None = None


# --- writes -----------------------------------------------------------------------------


class _Form(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreateRequestForm(_Form):
    """The form of `POST requests.json` (without `api_key`, which the client adds).

    A location is required (`address_string`, or `lat` and `long`); `attributes` are the
    service's attribute codes (a list for a multivaluelist); `external_ref` (our case
    number: 12385 answers a repeat with the same one as a replay) and `confidential`
    travel as `attribute[external_ref]` and `attribute[confidential]`.
    """

    service_code: str = Field(min_length=1)
    external_ref: str = Field(min_length=1)
    confidential: bool = False
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    address_string: str | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    long: float | None = Field(default=None, ge=-180, le=180)
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = Field(default=None, max_length=PHONE_MAX)
    email: Annotated[str, Field(pattern=r"@")] | None = None
    media_url: str | None = None
    attributes: dict[str, str | list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _location_and_reserved(self) -> CreateRequestForm:
        if not self.address_string and (self.lat is None or self.long is None):
            raise ValueError("a location is required: address_string, or lat and long")
        reserved = {"external_ref", "confidential"} & set(self.attributes)
        if reserved:
            raise ValueError(f"set {', '.join(sorted(reserved))} by its own field")
        return self

    def form(self) -> list[tuple[str, str]]:
        """The form fields in order, empty optional ones left out."""
        pairs: list[tuple[str, str]] = [("service_code", self.service_code)]
        plain = ("description", "address_string", "first_name", "last_name", "phone", "email")
        for name in (*plain, "media_url"):
            value = getattr(self, name)
            if value:
                pairs.append((name, value))
        if self.lat is not None and self.long is not None:
            pairs += [("lat", repr(self.lat)), ("long", repr(self.long))]
        pairs.append(("attribute[external_ref]", self.external_ref))
        pairs.append(("attribute[confidential]", "true" if self.confidential else "false"))
        for code, value in self.attributes.items():
            if isinstance(value, list):
                pairs += [(f"attribute[{code}][]", v) for v in value]
            else:
                pairs.append((f"attribute[{code}]", value))
        return pairs


class PostUpdateForm(_Form):
    """The form of `POST servicerequestupdates.json` (without `api_key`).

    `update_id` is ours and names the update for good: the same id with the same fields
    is a replay, with other fields 12385 refuses it (`already exists`). So a retry must
    send the same body: `updated_datetime` comes from the data, never from a clock.
    `FIXED` carries the answer in `description` (required then).
    """

    service_request_id: str = Field(min_length=1)
    update_id: Annotated[str, Field(pattern=UPDATE_ID_PATTERN)]
    status: PostStatus
    updated_datetime: AwareDatetime
    description: str = Field(default="", max_length=DESCRIPTION_MAX)

    @model_validator(mode="after")
    def _answer_has_text(self) -> PostUpdateForm:
        if self.status == "FIXED" and not self.description:
            raise ValueError("FIXED carries the answer: description is required")
        return self

    def form(self) -> list[tuple[str, str]]:
        return [
            ("service_request_id", self.service_request_id),
            ("update_id", self.update_id),
            ("status", self.status),
            ("updated_datetime", open311_time(self.updated_datetime)),
            ("description", self.description),
        ]


_TIME_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$")


def parse_open311_time(text: str) -> datetime:
    """A time as 12385 accepts it (`Z` or an offset, no fractions); `ValueError` else."""
    if not _TIME_RE.match(text):
        raise ValueError("not YYYY-MM-DDThh:mm:ss with Z or an offset")
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when.astimezone(UTC) if when.utcoffset() == timedelta(0) else when
