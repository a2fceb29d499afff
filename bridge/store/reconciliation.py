"""Reconciliation runs: when each ran, why, and what it found.

A run is ``running`` (its ``counts`` so far, see :func:`progress`), then ``done`` or
``failed`` with its ``report``; a ``dry_run`` compared and counted but wrote nothing.
Finished runs are deleted after a retention (:func:`purge_finished`).

Functions of an open connection; the caller owns the transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import ReconciliationRun
from .tables import reconciliation_runs as runs


def _run(row: Row[Any]) -> ReconciliationRun:
    return ReconciliationRun(
        id=row.id,
        trigger=row.trigger,
        status=row.status,
        started_at=row.started_at,
        finished_at=row.finished_at,
        counts=row.counts,
        dry_run=bool(row.dry_run),
        report=row.report,
    )


async def create(
    conn: AsyncConnection, trigger: str, now: datetime, *, dry_run: bool = False
) -> int:
    """Start a run with status ``"running"``; returns its id."""
    result = await conn.execute(
        sa.insert(runs).values(
            trigger=trigger, status="running", started_at=now, counts={}, dry_run=dry_run
        )
    )
    return int(result.inserted_primary_key[0])


async def progress(conn: AsyncConnection, run_id: int, counts: dict[str, Any]) -> bool:
    """The counts of a running run so far; returns ``False`` if it is not running."""
    result = await conn.execute(
        sa.update(runs)
        .where(runs.c.id == run_id, runs.c.status == "running")
        .values(counts=dict(counts))
    )
    return result.rowcount == 1


async def finish(
    conn: AsyncConnection,
    run_id: int,
    status: str,
    counts: dict[str, Any],
    now: datetime,
    report: dict[str, Any] | None = None,
) -> bool:
    """Close a run with its final status, counts and report; ``False`` if unknown."""
    result = await conn.execute(
        sa.update(runs)
        .where(runs.c.id == run_id)
        .values(status=status, counts=dict(counts), finished_at=now, report=report)
    )
    return result.rowcount == 1


async def get(conn: AsyncConnection, run_id: int) -> ReconciliationRun | None:
    """One run, or ``None``."""
    row = (await conn.execute(sa.select(runs).where(runs.c.id == run_id))).one_or_none()
    return None if row is None else _run(row)


async def list_(
    conn: AsyncConnection, *, limit: int = 20, offset: int = 0
) -> list[ReconciliationRun]:
    """Runs, newest first."""
    query = sa.select(runs).order_by(runs.c.id.desc()).limit(limit).offset(offset)
    return [_run(row) for row in await conn.execute(query)]


async def purge_finished(conn: AsyncConnection, older_than: datetime, limit: int = 500) -> int:
    """Delete up to ``limit`` runs that finished before ``older_than``; returns how
    many. A run still ``"running"`` (no ``finished_at``) is never deleted."""
    batch = (
        sa.select(runs.c.id)
        .where(runs.c.finished_at.is_not(None), runs.c.finished_at < older_than)
        .limit(limit)
    )
    result = await conn.execute(sa.delete(runs).where(runs.c.id.in_(batch)))
    return result.rowcount
