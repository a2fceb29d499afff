"""`/api/v1/dead-letters`: what failed and why, and fixing it: list and show (payloads
masked for `read`), replay one or every parked letter matching a filter (a job), and
discard. A letter that is not parked answers 409: it was replayed or discarded already.

A discard's reason goes into the audit row of the call, not into the letter: an admin's
free text may name a person, and the letter's columns are shown to every `read` caller.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from bridge.admin import replaying
from bridge.admin.api import (
    ApiProblem,
    Call,
    PageQuery,
    Routes,
    decode_cursor,
    encode_cursor,
    not_found,
    path_id,
)
from bridge.admin.jobs import JobOut, start_job
from bridge.admin.masking import masked
from bridge.engine.replay import ReplayError
from bridge.logging import MASK
from bridge.store import DeadLetterFilter, DeadLetterRow

routes = Routes()

Status = Literal["parked", "replayed", "discarded"]
Stage = Literal["intake", "apply", "transport", "publish"]


class LetterFilter(BaseModel):
    """Which letters: every given field must match."""

    model_config = ConfigDict(extra="forbid")

    system: str | None = Field(default=None, max_length=32, description="e.g. `12345`")
    stage: Stage | None = None
    reason: str | None = Field(
        default=None, min_length=1, max_length=200, description="a substring of the reason"
    )
    since: AwareDatetime | None = Field(default=None, description="parked at or after this")
    until: AwareDatetime | None = Field(default=None, description="parked before this")
    referral_id: str | None = Field(default=None, max_length=200)


class DeadLetterQuery(PageQuery, LetterFilter):
    status: Literal["parked", "replayed", "discarded", "any"] = Field(
        default="parked", description="`any`: every status"
    )
    unmask: bool = Field(default=False, description="show personal data (operate; audited)")


class DeadLetterSummary(BaseModel):
    """A dead letter without its payload (as a referral's detail lists them)."""

    id: int
    status: Status
    system: str
    stage: str
    reason: str = Field(description="names the field and the case, never a personal value")
    field: str | None
    referral_id: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime
    mapping: str | None = Field(description="the mapping version it was parked with")


class DeadLetterOut(DeadLetterSummary):
    payload: dict[str, Any] = Field(description="what a replay needs (masked for `read`)")


class DeadLetterPage(BaseModel):
    items: list[DeadLetterOut]
    next_cursor: str | None = Field(description="absent on the last page")


class ShowQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unmask: bool = Field(default=False, description="show personal data (operate; audited)")


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mapping: replaying.MappingChoice = Field(
        default="current",
        description="`current`: the node's tables now; `original`: those it was parked with",
    )


class ReplayOut(BaseModel):
    id: int
    status: Status
    outcome: str = Field(description="what the replay did")


class ParkedFilter(LetterFilter):
    status: Literal["parked"] | None = Field(
        default=None, description="only parked letters are replayed"
    )


class ReplayByFilterIn(ReplayIn):
    filter: ParkedFilter = Field(description="`{}`: every parked letter")


class DiscardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(
        default=None, max_length=500, description="why (kept in the audit log only)"
    )


def letter_summary(row: DeadLetterRow, *, unmask: bool) -> DeadLetterSummary:
    mapping = row.payload.get("mapping") if isinstance(row.payload, dict) else None
    return DeadLetterSummary(
        id=row.id,
        status=row.status,  # type: ignore[arg-type]
        system=row.system,
        stage=row.stage,
        reason=masked(row.reason, unmask=unmask),
        field=row.field,
        referral_id=row.referral_id,
        attempts=row.attempts,
        created_at=row.created_at,
        updated_at=row.updated_at,
        mapping=mapping if isinstance(mapping, str) else None,
    )


def letter_out(row: DeadLetterRow, *, unmask: bool) -> DeadLetterOut:
    summary = letter_summary(row, unmask=unmask)
    return DeadLetterOut(**dict(summary), payload=_payload(row.payload, unmask=unmask))


def _payload(payload: dict[str, Any], *, unmask: bool) -> dict[str, Any]:
    """The payload masked. A message body kept as JSON text (a transport letter) is
    masked as the JSON it holds; one kept as base64 (a publish letter) shows nothing for
    `read`: masking cannot see into it."""
    out: dict[str, Any] = masked(payload, unmask=unmask)
    if unmask:
        return out
    body = payload.get("body")
    if isinstance(body, str):
        try:
            decoded = json.loads(body)
        except ValueError:
            out["body"] = MASK
        else:
            out["body"] = json.dumps(masked(decoded), ensure_ascii=False)
    if "body_b64" in out:
        out["body_b64"] = MASK
    return out


def _filter(query: LetterFilter, status: str | None) -> DeadLetterFilter:
    return DeadLetterFilter(
        status=status,
        system=query.system,
        stage=query.stage,
        reason=query.reason,
        since=query.since,
        until=query.until,
        referral_id=query.referral_id,
    )


@routes.get("/api/v1/dead-letters", response=DeadLetterPage, query=DeadLetterQuery)
async def list_dead_letters(call: Call[DeadLetterQuery, None]) -> DeadLetterPage:
    """Dead letters matching the filters (parked ones by default), oldest first."""
    q = call.query
    after = int(decode_cursor(q.cursor, 1)[0]) if q.cursor else None
    match = _filter(q, None if q.status == "any" else q.status)
    rows = await call.state.node.store.page_dead_letters(match, after_id=after, limit=q.limit + 1)
    page = rows[: q.limit]
    return DeadLetterPage(
        items=[letter_out(row, unmask=q.unmask) for row in page],
        next_cursor=encode_cursor([page[-1].id]) if len(rows) > q.limit else None,
    )


@routes.get("/api/v1/dead-letters/{letter_id}", response=DeadLetterOut, query=ShowQuery)
async def show_dead_letter(call: Call[ShowQuery, None]) -> DeadLetterOut:
    """One dead letter with its payload."""
    row = await _letter(call)
    return letter_out(row, unmask=call.query.unmask)


@routes.post(
    "/api/v1/dead-letters/{letter_id}/replay",
    response=ReplayOut,
    body=ReplayIn,
    role="operate",
    errors=(409,),
)
async def replay_dead_letter(call: Call[None, ReplayIn]) -> ReplayOut:
    """Replay one parked dead letter, once its cause is fixed."""
    call.audit["mapping"] = call.body.mapping
    row = await _letter(call)
    _must_be_parked(row)
    node = call.state.node
    try:
        outcome = await replaying.replay_letter(node, call.state.partner, row.id, call.body.mapping)
    except (ReplayError, KeyError, ValueError) as exc:  # not parked now, or nothing to replay
        raise ApiProblem(409, "conflict", replaying.why(exc), kind="conflict") from None
    replaying.kick(node)
    after = await node.store.get_dead_letter(row.id)
    status = after.status if after is not None else "replayed"
    return ReplayOut(id=row.id, status=status, outcome=outcome)  # type: ignore[arg-type]


@routes.post(
    "/api/v1/dead-letters/replay",
    response=JobOut,
    body=ReplayByFilterIn,
    role="operate",
    status=202,
)
async def replay_dead_letters(call: Call[None, ReplayByFilterIn]) -> JobOut:
    """Replay every parked dead letter matching a filter, as a job to follow."""
    body = call.body
    given = body.filter.model_dump(mode="json", exclude_none=True)
    call.audit.update(filter=given, mapping=body.mapping)
    node = call.state.node
    up_to_id = await node.store.last_dead_letter_id()
    work = functools.partial(
        replaying.replay_matching,
        node,
        call.state.partner,
        match=_filter(body.filter, "parked"),
        mapping=body.mapping,
        up_to_id=up_to_id,
    )
    params = {"filter": given, "mapping": body.mapping, "up_to_id": up_to_id}
    return await start_job(call.state, call, "replay", params, work)


@routes.post(
    "/api/v1/dead-letters/{letter_id}/discard",
    response=DeadLetterOut,
    body=DiscardIn,
    role="operate",
    errors=(409,),
)
async def discard_dead_letter(call: Call[None, DiscardIn]) -> DeadLetterOut:
    """Discard a parked dead letter: it is not to be replayed."""
    if call.body.reason is not None:
        call.audit["reason"] = call.body.reason
    letter_id = _letter_id(call)
    async with call.state.node.store.begin() as tx:  # checked and changed at once
        row = await tx.get_dead_letter(letter_id)
        if row is None:
            raise not_found(f"dead letter {letter_id}")
        _must_be_parked(row)
        discarded = await tx.set_dead_letter_status(letter_id, "discarded")
    assert discarded is not None
    return letter_out(discarded, unmask=False)


def _letter_id(call: Call[Any, Any]) -> int:
    letter_id = path_id(call, "letter_id", "dead letter with that id")
    call.audit["letter_id"] = letter_id
    return letter_id


async def _letter(call: Call[Any, Any]) -> DeadLetterRow:
    letter_id = _letter_id(call)
    row = await call.state.node.store.get_dead_letter(letter_id)
    if row is None:
        raise not_found(f"dead letter {letter_id}")
    return row


def _must_be_parked(row: DeadLetterRow) -> None:
    if row.status != "parked":
        raise ApiProblem(
            409,
            "conflict",
            f"dead letter {row.id} is {row.status}, not parked",
            kind="not-parked",
        )
