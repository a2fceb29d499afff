"""`GET /api/v1/status`: what is wrong first, then per side how far behind each feed
is and what waits for each target, the outbox, the dead letters by reason, open early
warnings, SLA deadlines at risk and breached, and the last reconciliation.

Ages are measured on the store's clock, the one that stamped the rows. Every problem
is one line of identifiers and counts: no case numbers, no personal data. When the
store does not answer, the status still answers: the problem says so and the figures
that come from the store are null.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import BaseModel, Field

from bridge.admin.api import Call, Routes
from bridge.store import ReconciliationRun, StatusFigures

if TYPE_CHECKING:
    from bridge.app import Node

routes = Routes()

STORE_TIMEOUT_S: Final = 5.0
OUTBOX_STALE_S: Final = 60.0
"""An unpublished outbox row older than this is a problem (the relay is stuck)."""


class StatusProblem(BaseModel):
    severity: Literal["error", "warning"]
    what: str = Field(description="the part that is wrong, e.g. `feed 12345/dispatched`")
    detail: str


class NodeOut(BaseModel):
    node_id: str
    sides: list[str]
    uptime_s: float


class FeedOut(BaseModel):
    feed: str
    last_success_at: datetime | None = Field(description="null: no successful read yet")
    lag_s: float | None = Field(description="seconds since the last successful read")
    failing: bool
    last_error: str | None = Field(description="the type of the last failure")


class SideOut(BaseModel):
    paused: bool = Field(description="the target's consumers wait until its hotline answers")
    feeds: list[FeedOut]
    queue_depth: int | None = Field(
        description="messages waiting in the broker for this target (null: the broker did not say)"
    )


class OutboxOut(BaseModel):
    depth: int = Field(description="messages not yet published")
    oldest_age_s: float | None = Field(description="age of the oldest of them (null: none)")


class ParkedReason(BaseModel):
    system: str
    stage: str
    field: str | None
    count: int


class DeadLettersOut(BaseModel):
    parked: int
    by_reason: list[ParkedReason]


class SlaCounts(BaseModel):
    at_risk: int
    breached: int


class ReconciliationOut(BaseModel):
    id: int
    status: str = Field(description="running, done or failed")
    trigger: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, Any]
    report: dict[str, Any] | None


class StatusOut(BaseModel):
    problems: list[StatusProblem] = Field(description="what is wrong, errors first")
    node: NodeOut
    sides: dict[str, SideOut]
    outbox: OutboxOut | None = Field(description="null: the store did not answer")
    dead_letters: DeadLettersOut | None = Field(description="null: the store did not answer")
    early_warnings_open: int | None = Field(
        description="early-warning referrals not closed or withdrawn (null: the store did not"
        " answer)"
    )
    sla: SlaCounts | None = Field(description="null: the store did not answer")
    last_reconciliation: ReconciliationOut | None


@routes.get("/api/v1/status", response=StatusOut)
async def get_status(call: Call[None, None]) -> StatusOut:
    """Problems first, then feeds, queues, outbox, dead letters, early warnings, SLA."""
    node = call.state.node
    figures, runs, store_error = await _from_store(call)
    now = node.store.clock()
    depths = await asyncio.gather(*(_queue_depth(node, system) for system in node.sides))
    sides: dict[str, SideOut] = {}
    for system, depth in zip(node.sides, depths, strict=True):
        feeds = [
            FeedOut(
                feed=poller.feed,
                last_success_at=poller.last_success,
                lag_s=None
                if poller.last_success is None
                else max(0.0, (now - poller.last_success).total_seconds()),
                failing=poller.failing,
                last_error=poller.last_error,
            )
            for poller in node.pollers
            if poller.hotline.system == system
        ]
        sides[system] = SideOut(paused=system in node.paused, feeds=feeds, queue_depth=depth)
    outbox = (
        None
        if figures is None
        else OutboxOut(
            depth=figures.outbox_depth,
            oldest_age_s=None
            if figures.outbox_oldest_at is None
            else max(0.0, (now - figures.outbox_oldest_at).total_seconds()),
        )
    )
    status = StatusOut(
        problems=[],
        node=NodeOut(
            node_id=node.node_id,
            sides=list(node.sides),
            uptime_s=time.monotonic() - call.state.started_at,
        ),
        sides=sides,
        outbox=outbox,
        dead_letters=None if figures is None else _dead_letters(figures),
        early_warnings_open=None if figures is None else figures.early_warnings_open,
        sla=None
        if figures is None
        else SlaCounts(at_risk=figures.sla["at_risk"], breached=figures.sla["breached"]),
        last_reconciliation=_reconciliation(runs[0]) if runs else None,
    )
    status.problems = _problems(call, status, store_error)
    return status


async def _from_store(
    call: Call[None, None],
) -> tuple[StatusFigures | None, list[ReconciliationRun], str | None]:
    store = call.state.node.store
    try:
        async with asyncio.timeout(STORE_TIMEOUT_S):
            figures = await store.status_figures()
            runs = await store.list_reconciliations(limit=1)
    except TimeoutError:
        return None, [], f"no answer within {STORE_TIMEOUT_S:g}s"
    except Exception as exc:  # any database error: the problem names its type
        return None, [], type(exc).__name__
    return figures, runs, None


async def _queue_depth(node: Node, system: str) -> int | None:
    if system not in node.appliers:
        return None  # this node consumes nothing for that target
    return await node.transport.queue_depths(system)


def _dead_letters(figures: StatusFigures) -> DeadLettersOut:
    reasons = [
        ParkedReason(system=system, stage=stage, field=field, count=count)
        for (system, stage, field), count in figures.parked_by_reason.items()
    ]
    reasons.sort(key=lambda r: (-r.count, r.system, r.stage, r.field or ""))
    return DeadLettersOut(parked=figures.parked, by_reason=reasons)


def _reconciliation(run: ReconciliationRun) -> ReconciliationOut:
    return ReconciliationOut(
        id=run.id,
        status=run.status,
        trigger=run.trigger,
        dry_run=bool(getattr(run, "dry_run", False)),
        started_at=run.started_at,
        finished_at=run.finished_at,
        counts=dict(run.counts),
        report=getattr(run, "report", None),
    )


def _problems(
    call: Call[None, None], status: StatusOut, store_error: str | None
) -> list[StatusProblem]:
    node = call.state.node
    errors: list[StatusProblem] = []
    warnings: list[StatusProblem] = []
    if store_error is not None:
        errors.append(
            StatusProblem(severity="error", what="store", detail=f"unreachable: {store_error}")
        )
    for system, side in status.sides.items():
        if side.paused:
            errors.append(
                StatusProblem(
                    severity="error",
                    what=f"target {system}",
                    detail="paused: its hotline does not answer; consumers wait for a ping",
                )
            )
        for feed in side.feeds:
            if feed.failing:
                errors.append(
                    StatusProblem(
                        severity="error",
                        what=f"feed {system}/{feed.feed}",
                        detail=f"failing: {feed.last_error or 'error'}",
                    )
                )
    for task in node.supervisor.failing():
        errors.append(
            StatusProblem(
                severity="error",
                what=f"task {task.name}",
                detail=f"crashing: {task.last_error}, {task.crashes} crashes",
            )
        )
    if status.dead_letters is not None and status.dead_letters.parked:
        warnings.append(
            StatusProblem(
                severity="warning",
                what="dead letters",
                detail=f"{status.dead_letters.parked} parked, waiting for an admin",
            )
        )
    if status.sla is not None and status.sla.breached:
        warnings.append(
            StatusProblem(
                severity="warning",
                what="sla",
                detail=f"{status.sla.breached} deadlines breached",
            )
        )
    oldest = status.outbox.oldest_age_s if status.outbox is not None else None
    if oldest is not None and oldest > OUTBOX_STALE_S:
        warnings.append(
            StatusProblem(
                severity="warning",
                what="outbox",
                detail=f"oldest unpublished message {oldest:.0f}s old"
                f" ({status.outbox.depth if status.outbox else 0} waiting)",
            )
        )
    return [*errors, *warnings]
