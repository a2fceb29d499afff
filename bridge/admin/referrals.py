"""`GET /api/v1/referrals` and `GET /api/v1/referrals/{referral_id}`: where every
referral stands on both sides, and what was done for one of them.

A referral in the path is its id (`12345:BJ12345-20261129-004211`) or
`<system>:<number or native id>` of either side (`12351:12351-2026-0001234`); a colon
sent as `%3A` works too. The list pages on `(created_at, referral_id)`, newest first:
a referral added while an admin pages comes before the first page, never inside one.
A referral's direction is `<origin>-<target>` as the ledger holds it; `direction=A-B`
selects exactly those in SQL (and, when this deployment sends every referral of `A` to
`B`, the rows of `A` that do not know their target: they are shown as `A-B` too).

Ids, numbers, states, districts and priorities are not personal data and are shown as
they are; the snapshot, the timeline's details and nothing else go through `masked`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, WithJsonSchema

from bridge.admin.api import (
    ApiProblem,
    Call,
    PageQuery,
    Routes,
    decode_cursor,
    encode_cursor,
    not_found,
)
from bridge.admin.dead_letters import DeadLetterSummary, letter_summary
from bridge.admin.masking import masked
from bridge.admin.state import AdminState
from bridge.store import Deadline, Event, ReferralFilter, ReferralRow
from schemas.canonical import Lifecycle, Priority

routes = Routes()

_DIRECTION = r"^[^-]+-[^-]+$"
_STATUS_EVENTS = frozenset({"snapshot.read", "not_forwarded"})
"""Timeline events that carry the native status a snapshot was read with."""
_LIFTED = ("outcome", "attempt", "mapping")
"""Detail keys a timeline entry shows as fields of its own."""


def _inline(values: type[StrEnum]) -> WithJsonSchema:
    """An enum's schema written into the query parameter (a query has no `$defs`)."""
    return WithJsonSchema({"type": "string", "enum": [v.value for v in values]})


class ReferralsQuery(PageQuery):
    state: Annotated[Lifecycle, _inline(Lifecycle)] | None = None
    direction: str | None = Field(
        default=None, pattern=_DIRECTION, description="`<origin>-<target>`, e.g. `12345-12351`"
    )
    district: str | None = Field(default=None, description="the snapshot's district code")
    priority: Annotated[Priority, _inline(Priority)] | None = None
    early_warning: bool | None = None
    overdue: bool | None = Field(default=None, description="an SLA deadline is breached")
    at_risk: bool | None = Field(default=None, description="an SLA deadline is near")
    parked: bool | None = Field(default=None, description="a dead letter waits for an admin")
    updated_since: AwareDatetime | None = Field(
        default=None, description="changed in the ledger at or after this"
    )
    unmask: bool = Field(default=False, description="personal data unmasked (operate; audited)")


class ShowQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unmask: bool = Field(default=False, description="personal data unmasked (operate; audited)")


class SlaDeadline(BaseModel):
    kind: str
    system: str
    due_at: datetime
    state: str


class ReferralSummary(BaseModel):
    referral_id: str
    direction: str = Field(description="`<origin>-<target>`")
    origin: str
    state: Lifecycle
    ids: dict[str, str] = Field(description="system → native id")
    numbers: dict[str, str] = Field(description="system → case number")
    early_warning: bool
    priority: str | None
    district_code: str | None
    created_at: datetime
    updated_at: datetime
    sla: list[SlaDeadline]
    parked: int = Field(description="dead letters of this referral still parked")


class ReferralPage(BaseModel):
    items: list[ReferralSummary]
    next_cursor: str | None = Field(description="absent on the last page")


class TimelineEntry(BaseModel):
    at: datetime
    system: str
    kind: str
    outcome: str | None
    attempt: int | None
    mapping: str | None = Field(description="version (hash) of the mapping tables used")
    detail: dict[str, Any]


class ReferralDetail(ReferralSummary):
    native_status: dict[str, str] = Field(description="system → its own status code")
    snapshot: dict[str, Any] = Field(description="the last canonical snapshot read (masked)")
    timeline: list[TimelineEntry] = Field(description="every event on both sides, oldest first")
    dead_letters: list[DeadLetterSummary]


@routes.get("/api/v1/referrals", response=ReferralPage, query=ReferralsQuery)
async def list_referrals(call: Call[ReferralsQuery, None]) -> ReferralPage:
    """Referrals, newest first, with filters."""
    q = call.query
    after = _after(q.cursor) if q.cursor else None
    origin, target = _direction(q.direction)
    flt = ReferralFilter(
        state=q.state.value if q.state else None,
        origin=origin,
        target=target,
        untargeted=origin is not None and call.state.route(origin) == target,
        district_code=q.district,
        priority=q.priority.value if q.priority else None,
        early_warning=q.early_warning,
        overdue=q.overdue,
        at_risk=q.at_risk,
        parked=q.parked,
        updated_since=q.updated_since,
    )
    store = call.state.node.store
    rows = await store.page_referrals(flt, after=after, limit=q.limit + 1)
    page = rows[: q.limit]
    deadlines, parked = await store.referral_extras([row.referral_id for row in page])
    items = [ReferralSummary(**_summary(row, call.state, deadlines, parked)) for row in page]
    cursor = None
    if len(rows) > q.limit:
        last = items[-1]
        cursor = encode_cursor([last.created_at.isoformat(), last.referral_id])
    return ReferralPage(items=items, next_cursor=cursor)


@routes.get("/api/v1/referrals/{referral_id}", response=ReferralDetail, query=ShowQuery)
async def show_referral(call: Call[ShowQuery, None]) -> ReferralDetail:
    """One referral: both sides' ids, numbers and statuses, snapshot, timeline."""
    wanted = call.params["referral_id"]
    system, sep, value = wanted.partition(":")
    store = call.state.node.store
    row = await store.find_referral(system, value) if sep and system and value else None
    if row is None:
        raise not_found(f"referral {wanted}")
    call.audit["referral_id"] = row.referral_id
    deadlines, parked = await store.referral_extras([row.referral_id])
    events = await store.timeline(row.referral_id)
    letters = await store.list_dead_letters(referral_id=row.referral_id, limit=500)
    snapshot = row.last_snapshot or {}
    return ReferralDetail(
        **_summary(row, call.state, deadlines, parked),
        native_status=_native_status(snapshot, events),
        snapshot=masked(snapshot, unmask=call.unmask),
        timeline=[_entry(event, call.unmask) for event in events],
        dead_letters=[letter_summary(letter, unmask=call.unmask) for letter in letters],
    )


def _after(cursor: str) -> tuple[datetime, str]:
    created_at, referral_id = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(str(created_at)), str(referral_id)
    except ValueError:
        raise ApiProblem(
            400, "invalid request", "the cursor is not one this API gave", kind="invalid-request"
        ) from None


def _direction(direction: str | None) -> tuple[str | None, str | None]:
    """The origin and target of `<origin>-<target>` (both None: any direction)."""
    if direction is None:
        return None, None
    origin, _, target = direction.partition("-")
    return origin, target


def _target(row: ReferralRow, state: AdminState) -> str:
    """Where the referral goes: the ledger says so; a row that does not know (an intake
    not forwarded) goes where the deployment sends every referral of its origin, if it
    sends them all to one partner; else `unknown`."""
    return row.target or state.route(row.origin_system) or "unknown"


def _summary(
    row: ReferralRow,
    state: AdminState,
    deadlines: dict[str, list[Deadline]],
    parked: dict[str, int],
) -> dict[str, Any]:
    snapshot = row.last_snapshot or {}
    origin_no = row.referral_id.partition(":")[2]
    numbers = {row.origin_system: origin_no, **(snapshot.get("numbers") or {}), **row.numbers}
    return {
        "referral_id": row.referral_id,
        "direction": f"{row.origin_system}-{_target(row, state)}",
        "origin": row.origin_system,
        "state": row.state,
        "ids": dict(row.ids),
        "numbers": numbers,
        "early_warning": row.early_warning,
        "priority": snapshot.get("priority"),
        "district_code": snapshot.get("district_code"),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "sla": [
            SlaDeadline(kind=d.kind, system=d.system, due_at=d.due_at, state=d.state)
            for d in deadlines.get(row.referral_id, [])
        ],
        "parked": parked.get(row.referral_id, 0),
    }


def _native_status(snapshot: dict[str, Any], events: list[Event]) -> dict[str, str]:
    """Each system's status as last read: from the last intake event of each system,
    else (an older ledger) the snapshot's own for its source."""
    statuses: dict[str, str] = {}
    for event in events:  # oldest first: the last one wins
        status = event.detail.get("status")
        if event.kind in _STATUS_EVENTS and status is not None:
            statuses[event.system] = str(status)
    source, status = snapshot.get("source"), snapshot.get("native_status")
    if source and status is not None:
        statuses.setdefault(str(source), str(status))
    return statuses


def _entry(event: Event, unmask: bool) -> TimelineEntry:
    detail = dict(event.detail)
    outcome, attempt, mapping = (detail.pop(key, None) for key in _LIFTED)
    return TimelineEntry(
        at=event.at,
        system=event.system,
        kind=event.kind,
        outcome=None if outcome is None else str(outcome),
        attempt=attempt if isinstance(attempt, int) else None,
        mapping=None if mapping is None else str(mapping),
        detail=masked(detail, unmask=unmask),
    )
