"""`GET /api/v1/jobs/{job_id}`: how far a job started over the API has got (a replay
by filter), and how a job starts, runs once, and ends `done` or `failed`."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal

import structlog
from pydantic import BaseModel, Field

from bridge.admin.api import Call, Routes, not_found, path_id
from bridge.store import JobRow

if TYPE_CHECKING:
    from bridge.admin.state import AdminState
    from bridge.app import Node

log = structlog.get_logger(__name__)

routes = Routes()

STALE_S: Final = 300.0
"""A job whose row no node has updated for this long is taken as interrupted (a running
job writes its progress every few seconds, `bridge.admin.replaying.PROGRESS_EVERY_S`)."""
OPEN: Final = ("queued", "running")
INTERRUPTED: Final = "interrupted by a restart"


class JobOut(BaseModel):
    id: int
    kind: str = Field(description="`replay`: a replay of dead letters by filter")
    status: Literal["queued", "running", "done", "failed"]
    total: int | None = Field(description="items to do, counted when the job starts")
    done: int
    failed: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    result: dict[str, Any] = Field(
        description="`failures`: letters that could not be replayed and why; `error`: why "
        "the job itself failed"
    )


def job_out(row: JobRow) -> JobOut:
    return JobOut(
        id=row.id,
        kind=row.kind,
        status=row.status,  # type: ignore[arg-type]
        total=row.total,
        done=row.done,
        failed=row.failed,
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        result=row.result,
    )


@routes.get("/api/v1/jobs/{job_id}", response=JobOut)
async def show_job(call: Call[None, None]) -> JobOut:
    """One job: its counts while it runs, then its result."""
    job_id = path_id(call, "job_id", "job with that id")
    store = call.state.node.store
    row = await store.get_job(job_id)
    if row is None:
        raise not_found(f"job {job_id}")
    if row.status in OPEN and not call.state.background.running(task_name(job_id)):
        # not this node's: its node may be gone (killed, and not started again since)
        if await store.fail_stale_job(job_id, STALE_S, INTERRUPTED):
            row = await store.get_job(job_id)
            assert row is not None
    return job_out(row)


def task_name(job_id: int) -> str:
    return f"job.{job_id}"


async def start_job(
    state: AdminState,
    call: Call[Any, Any],
    kind: str,
    params: dict[str, Any],
    work: Callable[[int], Coroutine[Any, Any, None]],
) -> JobOut:
    """Record a queued job of `kind` and run `work(job_id)` (a coroutine function) in the
    background, once; if it raises or is cancelled, the job is marked failed with why."""
    store = state.node.store
    job_id = await store.create_job(
        kind, {**params, "node": state.node.node_id}, call.caller.fingerprint
    )
    call.audit["job_id"] = job_id

    async def failed(exc: BaseException) -> None:
        error = type(exc).__name__
        if not isinstance(exc, Exception):
            error = "interrupted: the node stopped"
        await store.finish_job(job_id, "failed", {"error": error})

    row = await store.get_job(job_id)
    assert row is not None
    state.background.start(task_name(job_id), work(job_id), failed)
    return job_out(row)


async def recover(node: Node) -> None:
    """At start: jobs this node (or a node gone for `STALE_S`) was running are failed,
    never resumed (a job runs once; an admin may start it again). A job of a node with
    another id (the default id names the process) that is not yet stale is failed when
    it is looked at once it is (`show_job`)."""
    interrupted = await node.store.fail_interrupted_jobs(node.node_id, STALE_S, INTERRUPTED)
    if interrupted:
        log.warning("jobs.interrupted", jobs=interrupted)
