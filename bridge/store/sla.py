"""The SLA watch's deadlines (`sla_deadlines`): one row per referral and kind.

Functions of an open connection; the caller owns the transaction. The stored state is
the watch's memory: it logs a crossing only when the state it computes differs from the
stored one, so a restart logs nothing again.

For the referral list (`GET /api/v1/referrals?overdue=true` / `at_risk=true`),
:func:`flagged` is a correlated ``EXISTS`` on ``referrals.referral_id``::

    query = sa.select(referrals).where(sla.flagged(sla.OVERDUE))
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import ActionRow, SlaRow, SlaSubject
from .tables import actions, dialect_insert, per_dialect, referrals, sla_deadlines

OPEN_STATES: Final = ("ok", "at_risk", "breached")
"""Deadline states that can still change by themselves (time passes)."""
OVERDUE: Final = ("breached",)
AT_RISK: Final = ("at_risk",)
SETTLED_STATES: Final = ("closed", "withdrawn", "returned")
"""Referral lifecycle states after which no deadline opens again: the scan reads such a
referral only while one of its deadlines is still open."""


def flagged(states: Collection[str]) -> sa.ColumnElement[bool]:
    """``EXISTS`` a deadline of the referral (``referrals.referral_id``) in one of
    `states`, e.g. :data:`OVERDUE`, :data:`AT_RISK`; for ``WHERE`` clauses on
    ``referrals``."""
    return (
        sa.exists()
        .where(
            sla_deadlines.c.referral_id == referrals.c.referral_id,
            sla_deadlines.c.state.in_(list(states)),
        )
        .correlate(referrals)
    )


def _row(row: Row[Any]) -> SlaRow:
    return SlaRow(
        referral_id=row.referral_id,
        kind=row.kind,
        system=row.system,
        due_at=row.due_at,
        state=row.state,
        changed_at=row.changed_at,
    )


@per_dialect
def _upsert(dialect: str) -> Any:
    stmt = dialect_insert(dialect, sla_deadlines)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=["referral_id", "kind"],
        set_={
            "system": new.system,
            "due_at": new.due_at,
            "state": new.state,
            "changed_at": new.changed_at,
        },
    )


async def upsert(conn: AsyncConnection, rows: Sequence[SlaRow]) -> None:
    """Insert or replace these deadlines (one statement, many parameter sets)."""
    if not rows:
        return
    params = [
        {
            "referral_id": r.referral_id,
            "kind": r.kind,
            "system": r.system,
            "due_at": r.due_at,
            "state": r.state,
            "changed_at": r.changed_at,
        }
        for r in rows
    ]
    await conn.execute(_upsert(conn), params)


async def for_referral(conn: AsyncConnection, referral_id: str) -> list[SlaRow]:
    """The deadlines of one referral, soonest due first."""
    query = (
        sa.select(sla_deadlines)
        .where(sla_deadlines.c.referral_id == referral_id)
        .order_by(sla_deadlines.c.due_at, sla_deadlines.c.kind)
    )
    return [_row(row) for row in await conn.execute(query)]


async def counts(conn: AsyncConnection) -> dict[tuple[str, str, str], int]:
    """``(system, kind, state) → deadlines``; combinations with none are absent."""
    query = sa.select(
        sla_deadlines.c.system, sla_deadlines.c.kind, sla_deadlines.c.state, sa.func.count()
    ).group_by(sla_deadlines.c.system, sla_deadlines.c.kind, sla_deadlines.c.state)
    return {(s, k, st): int(n) for s, k, st, n in await conn.execute(query)}


async def scan_batch(
    conn: AsyncConnection, *, after: str | None, limit: int, origins: Collection[str]
) -> list[SlaSubject]:
    """The next `limit` referrals to judge, by ``referral_id`` after `after` (keyset:
    stable while referrals are added, no ``OFFSET``): those of `origins` not in a
    terminal state, and any with a deadline still open (to close it). Three queries."""
    open_deadline = flagged(OPEN_STATES)
    query = (
        sa.select(referrals.c.referral_id, referrals.c.state, referrals.c.last_snapshot)
        .where(
            referrals.c.origin_system.in_(list(origins)),
            sa.or_(referrals.c.state.not_in(SETTLED_STATES), open_deadline),
        )
        .order_by(referrals.c.referral_id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(referrals.c.referral_id > after)
    rows = (await conn.execute(query)).all()
    if not rows:
        return []
    ids = [row.referral_id for row in rows]
    # A key range, not `IN (ids)`: an index range scan on both primary keys, whatever
    # the planner's statistics say; rows of referrals skipped in between are dropped.
    first, last = ids[0], ids[-1]
    acted: dict[str, list[ActionRow]] = {rid: [] for rid in ids}
    action_query = sa.select(
        actions.c.referral_id,
        actions.c.system,
        actions.c.key,
        actions.c.kind,
        actions.c.outcome,
        actions.c.at,
    ).where(actions.c.referral_id.between(first, last))
    for a in await conn.execute(action_query):
        if a.referral_id in acted:
            acted[a.referral_id].append(
                ActionRow(a.referral_id, a.system, a.key, a.kind, a.outcome, {}, a.at)
            )
    stored: dict[str, dict[str, SlaRow]] = {rid: {} for rid in ids}
    for d in await conn.execute(
        sa.select(sla_deadlines).where(sla_deadlines.c.referral_id.between(first, last))
    ):
        if d.referral_id in stored:
            stored[d.referral_id][d.kind] = _row(d)
    return [
        SlaSubject(
            referral_id=row.referral_id,
            state=row.state,
            last_snapshot=row.last_snapshot,
            actions=acted[row.referral_id],
            deadlines=stored[row.referral_id],
        )
        for row in rows
    ]
