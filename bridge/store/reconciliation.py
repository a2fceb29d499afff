"""Reconciliation runs: when each ran, why, and what it found.

A run is ``running`` (its ``counts`` so far, see :func:`progress`), then ``done`` or
``failed`` with its ``report``; a ``dry_run`` compared and counted but wrote nothing.
Finished runs are deleted after a retention (:func:`purge_finished`).

Functions of an open connection; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from .ledger import _referral as ledger_row
from .models import ReconciliationRun, ReferralFacts, ReferralRow
from .tables import actions, dead_letters, events, referrals, source_versions
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


# What a reconciliation run reads of the ledger -------------------------------------------


async def open_referrals(
    conn: AsyncConnection, system: str, settled: Sequence[str], *, after: str | None, limit: int
) -> list[ReferralRow]:
    """A keyset page of the referrals that `system` knows by a native id and whose state
    is not in `settled`: `referral_id > after`, in `referral_id` order (the primary key:
    every page costs the same however deep in the ledger it is; no OFFSET)."""
    query = sa.select(referrals).where(
        referrals.c.ids[system].as_string().is_not(None),
        referrals.c.state.not_in(list(settled)),
    )
    if after is not None:
        query = query.where(referrals.c.referral_id > after)
    query = query.order_by(referrals.c.referral_id).limit(limit)
    return [ledger_row(row) for row in await conn.execute(query)]


SNAPSHOT_EVENTS: Final = ("snapshot.read", "not_forwarded")
"""The timeline events `bridge.engine.intake.record_intake` writes for each snapshot read."""


async def facts(conn: AsyncConnection, referral_ids: Sequence[str]) -> dict[str, ReferralFacts]:
    """What the ledger says of each referral of a page: its state and numbers, its
    actions, the last snapshot read of each system, the source versions applied, and its
    parked dead letters. Five queries for the page, whatever its size."""
    ids = list(dict.fromkeys(referral_ids))
    out = {referral_id: ReferralFacts() for referral_id in ids}
    if not ids:
        return out
    r = referrals.c
    for row in await conn.execute(
        sa.select(r.referral_id, r.state, r.numbers, r.last_snapshot).where(r.referral_id.in_(ids))
    ):
        known = out[row.referral_id]
        known.state = row.state
        known.numbers = {**((row.last_snapshot or {}).get("numbers") or {}), **row.numbers}
    a = actions.c
    for row in await conn.execute(
        sa.select(a.referral_id, a.system, a.key, a.kind, a.outcome).where(a.referral_id.in_(ids))
    ):
        out[row.referral_id].actions.setdefault(row.system, {})[row.key] = (row.kind, row.outcome)
    e = events.c
    last = (
        sa.select(sa.func.max(e.id))
        .where(e.referral_id.in_(ids), e.kind.in_(SNAPSHOT_EVENTS))
        .group_by(e.referral_id, e.system)
    )
    for row in await conn.execute(
        sa.select(e.referral_id, e.system, e.detail).where(e.id.in_(last.scalar_subquery()))
    ):
        out[row.referral_id].snapshots[row.system] = dict(row.detail)
    v = source_versions.c
    for row in await conn.execute(
        sa.select(v.referral_id, v.system, v.version).where(v.referral_id.in_(ids))
    ):
        out[row.referral_id].applied[row.system] = int(row.version)
    d = dead_letters.c
    for row in await conn.execute(
        sa.select(d.referral_id, d.id)
        .where(d.referral_id.in_(ids), d.status == "parked")
        .order_by(d.id)
    ):
        out[row.referral_id].parked.append(int(row.id))
    return out
