"""The canonical referral snapshot: the message contract between bridge nodes.

A snapshot says "referral R, as its source system shows it at source version v": the
full state, never a delta (level-triggered). Each node publishes snapshots of its own
system's records that concern the other side; the other node compares them with its
ledger and performs only the missing actions.

Ids are kept per system (`ids`, `numbers`), and each referral names its `origin` and
its `target` partner: any number of partner hotlines fit. Times
are timezone-aware. Personal data (caller name and phone, location, subject, text,
reply text) travels inside the snapshot because the other side needs it; it is never
logged (see `bridge.logging`).

Versioning: `schema_version` is bumped on any incompatible change; a node refuses (parks)
a snapshot whose major version it does not know.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SCHEMA_VERSION: Final = 1

System = Annotated[str, Field(min_length=1, max_length=32)]
"""A partner's name in the deployment (`12345`, `12351`, `12385`): data, not a fixed set."""


class Lifecycle(StrEnum):
    """Where a referral stands, in the bridge's own words (both systems map onto it)."""

    OPENED = "opened"  # recorded at the source, not yet with the other side
    DELIVERED = "delivered"  # dispatched / handed over, not yet signed for
    SIGNED = "signed"  # the handling side confirmed it has it
    IN_PROGRESS = "in_progress"
    EXTENDED = "extended"
    REPLIED = "replied"
    RETURNED = "returned"
    CALLBACK_RECORDED = "callback_recorded"
    REOPENED = "reopened"
    WITHDRAWN = "withdrawn"
    CLOSED = "closed"


class Priority(StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"
    EARLY_WARNING = "early_warning"  # 预警: 12345 urgency 3, 12351 alert


class Satisfaction(StrEnum):
    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    DISSATISFIED = "dissatisfied"
    UNREACHABLE = "unreachable"


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Caller(_Part):
    name: str | None = None
    phone: str | None = None  # as given by the source, never normalised away
    confidential: bool = False


class Reply(_Part):
    text: str
    handler: str | None = None
    at: AwareDatetime | None = None
    resolved: bool | None = None


class Callback(_Part):
    satisfaction: Satisfaction
    at: AwareDatetime | None = None
    note: str | None = None


class Extension(_Part):
    """An extension asked for (12351 `extension_request`) or granted (12345 status 25)."""

    new_deadline: AwareDatetime
    reason: str | None = None
    requested_at: AwareDatetime | None = None
    granted: bool | None = None


class Transfer(_Part):
    """The source handed the case to another hotline (12351 `transferred`)."""

    to: str | None = None
    reason: str | None = None
    category: str | None = None  # the other hotline's own code, when the agent picked one
    requested_at: AwareDatetime | None = None
    external_no: str | None = None


class Referral(_Part):
    """One referral as its source system shows it at `source_version`."""

    schema_version: int = SCHEMA_VERSION
    referral_id: str = Field(description="'<origin system>:<origin number>'")
    origin: System = Field(description="the system where the request began")
    source: System = Field(description="the system this snapshot was read from")
    target: System | None = Field(
        default=None,
        description="the partner the referral crosses to from its origin (None in snapshots"
        " of nodes that did not name it yet: the receiving side is then the target)",
    )
    source_version: int = Field(ge=0, description="increasing per referral and source")
    source_no: str = Field(description="the source's human-facing number, for markers")
    ids: dict[str, str] = Field(default_factory=dict, description="system → native id")
    numbers: dict[str, str] = Field(default_factory=dict, description="system → case number")
    read_at: AwareDatetime

    state: Lifecycle
    native_status: str
    classification: dict[str, str] = Field(
        default_factory=dict,
        description="system → its own category code (12345 category, 12351 service_type)",
    )
    priority: Priority
    district_code: str | None = None
    street_code: str | None = None
    caller: Caller = Caller()
    subject: str = ""
    text: str = ""
    location: str | None = None

    accepted_at: AwareDatetime | None = None
    dispatched_at: AwareDatetime | None = None
    deadline: AwareDatetime | None = None
    updated_at: AwareDatetime | None = Field(
        default=None,
        description="the source record's own last change (12345 updateTime, 12351 updated_at);"
        " event times taken from it keep retried request bodies identical",
    )

    reply: Reply | None = None
    callback: Callback | None = None
    extension: Extension | None = None
    transfer: Transfer | None = None
    return_reason: str | None = None
    closing_note: str | None = Field(
        default=None,
        description="the source's own words with its closure (an Open311 `closed` or "
        "`duplicate` update's text); 12345 and 12351 publish none",
    )
    reopen_count: int = 0
    reopen_reason: str | None = None
    unit_code: str | None = None

    @property
    def early_warning(self) -> bool:
        return self.priority is Priority.EARLY_WARNING

    @property
    def message_id(self) -> str:
        """Unique per snapshot: the same snapshot published twice has the same id."""
        return f"{self.referral_id}@{self.source}:{self.source_version}"


def referral_id(origin: str, origin_no: str) -> str:
    return f"{origin}:{origin_no}"


def as_aware(value: datetime | None) -> datetime | None:
    """Guard for callers that must not pass naive times into a snapshot."""
    if value is not None and value.tzinfo is None:
        raise ValueError("naive datetime in a canonical snapshot")
    return value
