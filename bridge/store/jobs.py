"""Jobs: background work an admin started (a replay of the dead letters matching a
filter), followed with ``GET /api/v1/jobs/{id}``. Lifecycle::

    queued ──start──▶ running ──finish──▶ done | failed
                         └─ progress: done and failed counted as it goes

``params`` says what was asked (identifiers and filters, and the ``node`` running the
job); ``result`` what came of it. A job a node was running when it stopped is marked
``failed`` when a node starts again (:func:`fail_interrupted`), or when it is looked at
once no node has updated it for a while (:func:`fail_if_stale`).

Functions of an open connection; the caller owns the transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import JobRow
from .tables import jobs

OPEN: Final = ("queued", "running")


def _row(row: Row[Any]) -> JobRow:
    return JobRow(
        id=row.id,
        kind=row.kind,
        status=row.status,
        params=dict(row.params),
        total=row.total,
        done=row.done,
        failed=row.failed,
        result=dict(row.result),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
    )


async def create(
    conn: AsyncConnection, kind: str, params: dict[str, Any], created_by: str, now: datetime
) -> int:
    """A new job with status ``"queued"``; returns its id."""
    result = await conn.execute(
        sa.insert(jobs).values(
            kind=kind,
            status="queued",
            params=dict(params),
            done=0,
            failed=0,
            result={},
            created_by=created_by[:32],
            created_at=now,
            updated_at=now,
        )
    )
    return int(result.inserted_primary_key[0])


async def start(conn: AsyncConnection, job_id: int, total: int, now: datetime) -> bool:
    """A queued job runs, with ``total`` items to do; ``False`` if it is not queued."""
    result = await conn.execute(
        sa.update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status == "queued")
        .values(status="running", total=total, updated_at=now)
    )
    return result.rowcount == 1


async def progress(
    conn: AsyncConnection, job_id: int, done: int, failed: int, now: datetime
) -> bool:
    """How many items a running job has done and failed so far."""
    result = await conn.execute(
        sa.update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status == "running")
        .values(done=done, failed=failed, updated_at=now)
    )
    return result.rowcount == 1


async def finish(
    conn: AsyncConnection, job_id: int, status: str, result: dict[str, Any], now: datetime
) -> bool:
    """Close an open job as ``"done"`` or ``"failed"`` with its result; ``False`` if it
    is unknown or already closed. Raises :class:`ValueError` for another status."""
    if status not in ("done", "failed"):
        raise ValueError(f"a job finishes done or failed, not {status!r}")
    outcome = await conn.execute(
        sa.update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status.in_(OPEN))
        .values(status=status, result=dict(result), updated_at=now, finished_at=now)
    )
    return outcome.rowcount == 1


async def get(conn: AsyncConnection, job_id: int) -> JobRow | None:
    """One job, or ``None``."""
    row = (await conn.execute(sa.select(jobs).where(jobs.c.id == job_id))).one_or_none()
    return None if row is None else _row(row)


async def fail_interrupted(
    conn: AsyncConnection, node: str, stale_before: datetime, reason: str, now: datetime
) -> list[int]:
    """Mark failed, with ``reason``, the open jobs that no node runs any more: those of
    ``node`` (a node that starts runs none yet) and those not updated since
    ``stale_before`` (their node is gone: a running job updates its row as it goes).
    Returns their ids."""
    query = sa.select(jobs.c.id, jobs.c.params, jobs.c.updated_at).where(jobs.c.status.in_(OPEN))
    interrupted = [
        int(row.id)
        for row in await conn.execute(query)
        if row.params.get("node") == node or row.updated_at < stale_before
    ]
    if interrupted:
        await conn.execute(
            sa.update(jobs)
            .where(jobs.c.id.in_(interrupted), jobs.c.status.in_(OPEN))
            .values(status="failed", result={"error": reason}, updated_at=now, finished_at=now)
        )
    return interrupted


async def fail_if_stale(
    conn: AsyncConnection, job_id: int, stale_before: datetime, reason: str, now: datetime
) -> bool:
    """Mark one open job failed with ``reason`` if its row was not updated since
    ``stale_before`` (its node is gone); returns whether it did."""
    result = await conn.execute(
        sa.update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status.in_(OPEN), jobs.c.updated_at < stale_before)
        .values(status="failed", result={"error": reason}, updated_at=now, finished_at=now)
    )
    return result.rowcount == 1
