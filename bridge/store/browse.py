"""What the admin API reads: referrals page by page with filters, one referral found by
any of its numbers or ids, and the figures of the node's status.

Pages are keyset pages on ``(created_at DESC, referral_id)``, never ``OFFSET``: a
referral added while an admin pages has the newest ``created_at`` and so comes before
the first page, never inside one; none is seen twice, none is skipped.

Finding a referral by ``<system>:<value>`` first tries ``value`` as the origin's
number, which is the primary key (``referral_id`` is ``<origin>:<origin number>``),
then as the referral's number at ``system`` (``referral_numbers``, an index read on
``(system, number)``, for every system alike). Only when both miss does it read
``value`` as a native id (``ids[system]``, SQLAlchemy's JSON index operator: ``->>``
on PostgreSQL, ``JSON_EXTRACT`` on SQLite); no index covers the ids, so that last
query scans the referrals table. :func:`numbered` finds the referrals that have a
number, at whichever system, through the index on ``number``.

Functions of an open connection; the caller owns the transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from . import outbox
from .ledger import _referral
from .models import ReferralRow
from .tables import dead_letters, referral_numbers, referrals, sla_deadlines

TERMINAL_STATES: Final[tuple[str, ...]] = ("closed", "withdrawn")
"""Lifecycle states after which nothing more happens: an early warning there is not open."""


@dataclass(frozen=True, slots=True)
class ReferralFilter:
    """Every filter of the referral list; ``None`` means "any"."""

    state: str | None = None
    origin: str | None = None
    target: str | None = None
    """Goes to this partner (``referrals.target``)."""
    untargeted: bool = False
    """With ``target``: the referrals whose target is not known count as going there too
    (the caller knows that every referral of ``origin`` goes to ``target``)."""
    district_code: str | None = None
    priority: str | None = None
    early_warning: bool | None = None
    overdue: bool | None = None
    """Has an SLA deadline in state ``breached`` (False: has none)."""
    at_risk: bool | None = None
    """Has an SLA deadline in state ``at_risk``."""
    parked: bool | None = None
    """Has a dead letter still parked."""
    updated_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Deadline:
    """One row of ``sla_deadlines``."""

    kind: str
    system: str
    due_at: datetime
    state: str


@dataclass(frozen=True, slots=True)
class StatusFigures:
    """What the status reads from the store, in one transaction."""

    outbox_depth: int
    outbox_oldest_at: datetime | None
    parked_by_reason: dict[tuple[str, str, str | None], int]
    """(system, stage, field) → dead letters still parked"""
    early_warnings_open: int
    sla: dict[str, int]
    """SLA deadline state → deadlines in it (``at_risk`` and ``breached`` always there)"""

    @property
    def parked(self) -> int:
        return sum(self.parked_by_reason.values())


def _has(table: sa.Table, *where: Any) -> sa.Exists:
    return sa.exists().where(table.c.referral_id == referrals.c.referral_id, *where)


def _either(condition: sa.Exists, wanted: bool) -> Any:
    return condition if wanted else ~condition


def _where(flt: ReferralFilter) -> list[Any]:
    r, snapshot = referrals.c, referrals.c.last_snapshot
    where: list[Any] = []
    if flt.state is not None:
        where.append(r.state == flt.state)
    if flt.origin is not None:
        where.append(r.origin_system == flt.origin)
    if flt.target is not None:
        goes = r.target == flt.target
        where.append(sa.or_(goes, r.target.is_(None)) if flt.untargeted else goes)
    if flt.district_code is not None:
        where.append(snapshot["district_code"].as_string() == flt.district_code)
    if flt.priority is not None:
        where.append(snapshot["priority"].as_string() == flt.priority)
    if flt.early_warning is not None:
        where.append(r.early_warning.is_(flt.early_warning))
    if flt.updated_since is not None:
        where.append(r.updated_at >= flt.updated_since)
    for wanted, table, condition in (
        (flt.overdue, sla_deadlines, sla_deadlines.c.state == "breached"),
        (flt.at_risk, sla_deadlines, sla_deadlines.c.state == "at_risk"),
        (flt.parked, dead_letters, dead_letters.c.status == "parked"),
    ):
        if wanted is not None:
            where.append(_either(_has(table, condition), wanted))
    return where


async def page_referrals(
    conn: AsyncConnection,
    flt: ReferralFilter,
    *,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> list[ReferralRow]:
    """Up to ``limit`` referrals matching ``flt``, newest first (``created_at`` DESC,
    then ``referral_id``), after the key ``(created_at, referral_id)`` of the last one
    of the previous page."""
    query = sa.select(referrals).where(*_where(flt))
    if after is not None:
        created_at, referral_id = after
        # `<=` first: a range the created_at index can serve on both dialects (a bare OR
        # of the two cases makes PostgreSQL scan and sort the whole table on each page).
        query = query.where(
            referrals.c.created_at <= created_at,
            sa.or_(referrals.c.created_at < created_at, referrals.c.referral_id > referral_id),
        )
    query = query.order_by(referrals.c.created_at.desc(), referrals.c.referral_id).limit(limit)
    return [_referral(row) for row in await conn.execute(query)]


def _numbered(*where: Any) -> sa.Select[Any]:
    """The referrals with a ``referral_numbers`` row matching ``where`` (each once),
    newest first."""
    n = referral_numbers.c
    return (
        sa.select(referrals)
        .where(referrals.c.referral_id.in_(sa.select(n.referral_id).where(*where)))
        .order_by(referrals.c.created_at.desc(), referrals.c.referral_id)
    )


async def find_referral(conn: AsyncConnection, system: str, value: str) -> ReferralRow | None:
    """The referral that ``system`` knows as ``value`` (its number or its native id),
    or ``None``; the newest one should two share it. The origin's number and any
    system's number are index reads, a native id of the other side a scan."""
    by_id = sa.select(referrals).where(referrals.c.referral_id == f"{system}:{value}")
    n = referral_numbers.c
    for query in (
        by_id,
        _numbered(n.system == system, n.number == value).limit(1),
        sa.select(referrals)
        .where(referrals.c.ids[system].as_string() == value)
        .order_by(referrals.c.created_at.desc(), referrals.c.referral_id)
        .limit(1),
    ):
        row = (await conn.execute(query)).one_or_none()
        if row is not None:
            return _referral(row)
    return None


async def numbered(conn: AsyncConnection, number: str, *, limit: int = 50) -> list[ReferralRow]:
    """The referrals (up to ``limit``, newest first) that some system numbers
    ``number``: an index read on ``referral_numbers.number``, whatever the system."""
    query = _numbered(referral_numbers.c.number == number).limit(limit)
    return [_referral(row) for row in await conn.execute(query)]


async def deadlines_of(
    conn: AsyncConnection, referral_ids: Sequence[str]
) -> dict[str, list[Deadline]]:
    """The SLA deadlines of each referral (by kind), for a page of them."""
    found: dict[str, list[Deadline]] = defaultdict(list)
    if not referral_ids:
        return found
    query = (
        sa.select(sla_deadlines)
        .where(sla_deadlines.c.referral_id.in_(list(referral_ids)))
        .order_by(sla_deadlines.c.referral_id, sla_deadlines.c.due_at, sla_deadlines.c.kind)
    )
    for row in await conn.execute(query):
        found[row.referral_id].append(Deadline(row.kind, row.system, row.due_at, row.state))
    return found


async def parked_of(conn: AsyncConnection, referral_ids: Sequence[str]) -> dict[str, int]:
    """How many dead letters are still parked for each referral of a page."""
    if not referral_ids:
        return {}
    query = (
        sa.select(dead_letters.c.referral_id, sa.func.count())
        .where(
            dead_letters.c.referral_id.in_(list(referral_ids)), dead_letters.c.status == "parked"
        )
        .group_by(dead_letters.c.referral_id)
    )
    return {referral_id: int(n) for referral_id, n in await conn.execute(query)}


async def status_figures(conn: AsyncConnection) -> StatusFigures:
    """The outbox backlog, parked dead letters by reason, open early warnings and SLA
    deadlines by state: four grouped queries in the caller's (read) transaction."""
    depth, oldest = await outbox.backlog(conn)
    d = dead_letters.c
    parked = (
        sa.select(d.system, d.stage, d.field, sa.func.count())
        .where(d.status == "parked")
        .group_by(d.system, d.stage, d.field)
    )
    early = sa.select(sa.func.count()).where(
        referrals.c.early_warning.is_(True), referrals.c.state.not_in(TERMINAL_STATES)
    )
    sla = sa.select(sla_deadlines.c.state, sa.func.count()).group_by(sla_deadlines.c.state)
    by_state = {"at_risk": 0, "breached": 0}
    by_state.update({state: int(n) for state, n in await conn.execute(sla)})
    return StatusFigures(
        outbox_depth=depth,
        outbox_oldest_at=oldest,
        parked_by_reason={
            (system, stage, field): int(n) for system, stage, field, n in await conn.execute(parked)
        },
        early_warnings_open=int((await conn.execute(early)).scalar_one()),
        sla=by_state,
    )
