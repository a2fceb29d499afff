"""`/api/v1/reconciliations`: start a run of the node's reconciler now (202 and its id;
`dry_run` compares and counts but writes nothing) and follow it: its counts while it
runs, then its report (`bridge.reconcile` says what each count and finding means)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bridge.admin.api import ApiProblem, Call, Routes, not_found, path_id
from bridge.store import ReconciliationRun

routes = Routes()

TRIGGER = "api"
TASK = "reconciliation"
"""The name of the one run over the API a node does at a time."""


class ReconciliationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(default=False, description="compare and count; change nothing")


class ReconciliationOut(BaseModel):
    id: int
    status: Literal["running", "done", "failed"]
    trigger: str = Field(description="`api`, `periodic`, `cli`")
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, int] = Field(description="so far while it runs")
    report: dict[str, Any] | None = Field(
        description="once finished: the referrals that differ, are missing, failed or no "
        "longer map (identifiers and states only)"
    )


def run_out(run: ReconciliationRun) -> ReconciliationOut:
    # `finished`: what runs recorded before their vocabulary became the API's
    status = "done" if run.status in ("done", "finished") else run.status
    return ReconciliationOut(
        id=run.id,
        status=status,  # type: ignore[arg-type]
        trigger=run.trigger,
        dry_run=run.dry_run,
        started_at=run.started_at,
        finished_at=run.finished_at,
        counts={k: int(v) for k, v in run.counts.items()},
        report=run.report,
    )


@routes.post(
    "/api/v1/reconciliations",
    response=ReconciliationOut,
    body=ReconciliationIn,
    role="operate",
    status=202,
    errors=(409,),
)
async def start_reconciliation(call: Call[None, ReconciliationIn]) -> ReconciliationOut:
    """Run the reconciler now, in the background; follow it by its id."""
    dry_run = call.body.dry_run
    call.audit["dry_run"] = dry_run
    node, background = call.state.node, call.state.background
    reconciler = node.reconciler
    if reconciler is None:
        raise ApiProblem(409, "conflict", "this node runs no reconciler", kind="no-reconciler")
    if background.running(TASK):
        raise ApiProblem(
            409,
            "conflict",
            "a reconciliation started over the API is still running on this node",
            kind="reconciliation-running",
        )
    run_id = await node.store.create_reconciliation(TRIGGER, dry_run=dry_run)
    call.audit["run_id"] = run_id
    run = await node.store.get_reconciliation(run_id)
    assert run is not None
    # the run records its own failure or interruption (`Reconciler.perform`)
    background.start(TASK, reconciler.perform(run_id, trigger=TRIGGER, dry_run=dry_run))
    return run_out(run)


@routes.get("/api/v1/reconciliations/{run_id}", response=ReconciliationOut)
async def show_reconciliation(call: Call[None, None]) -> ReconciliationOut:
    """One reconciliation run: its progress, then its report."""
    run_id = path_id(call, "run_id", "reconciliation run with that id")
    run = await call.state.node.store.get_reconciliation(run_id)
    if run is None:
        raise not_found(f"reconciliation run {run_id}")
    return run_out(run)
