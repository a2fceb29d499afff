"""What the node's metrics read from the store at scrape time: a few grouped counts,
labelled by low-cardinality columns only (system, state, stage; never ids or text)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from . import browse, outbox, sla
from .tables import dead_letters, referrals


@dataclass(frozen=True)
class Figures:
    referrals: dict[tuple[str, str | None, str], int]
    """(origin system, target system or None when not known, state) → referrals"""
    outbox_depth: int
    outbox_oldest_at: datetime | None
    parked: dict[tuple[str, str], int]
    """(system, stage) → dead letters still parked"""
    sla: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """(system, kind, state) → SLA deadlines (see :mod:`bridge.store.sla`)"""
    early_warnings_open: int = 0
    """early-warning referrals not in a terminal state (as `GET /api/v1/status` counts them:
    `bridge.store.browse.TERMINAL_STATES`)"""


async def read_figures(conn: AsyncConnection) -> Figures:
    """Five grouped queries in the caller's (read) transaction."""
    r = referrals.c
    by_state = sa.select(r.origin_system, r.target, r.state, sa.func.count()).group_by(
        r.origin_system, r.target, r.state
    )
    parked = (
        sa.select(dead_letters.c.system, dead_letters.c.stage, sa.func.count())
        .where(dead_letters.c.status == "parked")
        .group_by(dead_letters.c.system, dead_letters.c.stage)
    )
    early = sa.select(sa.func.count()).where(
        referrals.c.early_warning.is_(True), referrals.c.state.not_in(browse.TERMINAL_STATES)
    )
    depth, oldest = await outbox.backlog(conn)
    return Figures(
        referrals={(o, t, s): int(n) for o, t, s, n in await conn.execute(by_state)},
        outbox_depth=depth,
        outbox_oldest_at=oldest,
        parked={(system, stage): int(n) for system, stage, n in await conn.execute(parked)},
        sla=await sla.counts(conn),
        early_warnings_open=int((await conn.execute(early)).scalar_one()),
    )
