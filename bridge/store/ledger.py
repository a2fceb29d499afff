"""The ledger: referrals, the source versions applied, and the actions done.

Functions of an open connection; the caller owns the transaction. An applier
reads the ledger, performs only what is missing, and records it in the same
transaction, so that old or repeated snapshots do nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from .events import add_event
from .models import ActionRow, ReferralRow
from .tables import actions, insert, referrals, source_versions


def _referral(row: Row[Any]) -> ReferralRow:
    return ReferralRow(
        referral_id=row.referral_id,
        origin_system=row.origin_system,
        ids=dict(row.ids),
        state=row.state,
        early_warning=bool(row.early_warning),
        case_no=row.case_no,
        last_snapshot=row.last_snapshot,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def get_referral(
    conn: AsyncConnection, referral_id: str, *, for_update: bool = False
) -> ReferralRow | None:
    """One referral, or ``None``. ``for_update`` locks the row on PostgreSQL."""
    query = sa.select(referrals).where(referrals.c.referral_id == referral_id)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).one_or_none()
    return None if row is None else _referral(row)


async def upsert_referral(conn: AsyncConnection, row: ReferralRow, now: datetime) -> ReferralRow:
    """Insert or update a referral; returns the row as stored.

    On update: ``ids`` are merged (the new row's entries win per system),
    ``origin_system`` and ``created_at`` are kept, ``case_no`` and
    ``last_snapshot`` are kept when the new row has ``None``, ``state`` and
    ``early_warning`` take the new row's values, and ``updated_at`` is ``now``.
    The existing row is locked while merging, so concurrent upserts on
    PostgreSQL lose no ids.
    """
    created = row.created_at or now
    inserted = await conn.execute(
        insert(conn, referrals)
        .values(
            referral_id=row.referral_id,
            origin_system=row.origin_system,
            ids=dict(row.ids),
            case_no=row.case_no,
            early_warning=row.early_warning,
            state=row.state,
            last_snapshot=row.last_snapshot,
            created_at=created,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["referral_id"])
    )
    if inserted.rowcount == 1:
        stored = await get_referral(conn, row.referral_id)
        assert stored is not None
        return stored
    old = await get_referral(conn, row.referral_id, for_update=True)
    assert old is not None
    values: dict[str, Any] = {
        "ids": {**old.ids, **row.ids},
        "case_no": row.case_no if row.case_no is not None else old.case_no,
        "early_warning": row.early_warning,
        "state": row.state,
        "last_snapshot": row.last_snapshot if row.last_snapshot is not None else old.last_snapshot,
        "updated_at": now,
    }
    await conn.execute(
        sa.update(referrals).where(referrals.c.referral_id == row.referral_id).values(**values)
    )
    stored = await get_referral(conn, row.referral_id)
    assert stored is not None
    return stored


async def list_referrals(
    conn: AsyncConnection,
    *,
    state: str | None = None,
    early_warning: bool | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[ReferralRow]:
    """Referrals matching the filters, newest first (by ``created_at``, then id)."""
    query = sa.select(referrals)
    if state is not None:
        query = query.where(referrals.c.state == state)
    if early_warning is not None:
        query = query.where(referrals.c.early_warning == early_warning)
    query = (
        query.order_by(referrals.c.created_at.desc(), referrals.c.referral_id)
        .limit(limit)
        .offset(offset)
    )
    return [_referral(row) for row in await conn.execute(query)]


async def get_last_version(conn: AsyncConnection, referral_id: str, system: str) -> int | None:
    """The last source version of ``system`` applied to ``referral_id``, or ``None``."""
    query = sa.select(source_versions.c.version).where(
        source_versions.c.referral_id == referral_id, source_versions.c.system == system
    )
    return (await conn.execute(query)).scalar_one_or_none()


async def set_last_version(
    conn: AsyncConnection, referral_id: str, system: str, version: int, now: datetime
) -> None:
    """Store the last applied source version (replaces; the caller compares first)."""
    stmt = insert(conn, source_versions).values(
        referral_id=referral_id, system=system, version=version, updated_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["referral_id", "system"],
        set_={"version": stmt.excluded.version, "updated_at": stmt.excluded.updated_at},
    )
    await conn.execute(stmt)


async def get_action(
    conn: AsyncConnection, referral_id: str, system: str, key: str
) -> ActionRow | None:
    """The recorded action with this key, or ``None``."""
    query = sa.select(actions).where(
        actions.c.referral_id == referral_id, actions.c.system == system, actions.c.key == key
    )
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        return None
    return ActionRow(
        referral_id=row.referral_id,
        system=row.system,
        key=row.key,
        kind=row.kind,
        outcome=row.outcome,
        detail=row.detail,
        at=row.at,
    )


async def action_keys(conn: AsyncConnection, referral_id: str, system: str) -> frozenset[str]:
    """The keys of every action recorded for this referral on this system."""
    query = sa.select(actions.c.key).where(
        actions.c.referral_id == referral_id, actions.c.system == system
    )
    return frozenset((await conn.execute(query)).scalars())


async def delete_action(conn: AsyncConnection, referral_id: str, system: str, key: str) -> bool:
    """Forget a recorded action (an admin replays what was parked); True if one was."""
    query = sa.delete(actions).where(
        actions.c.referral_id == referral_id, actions.c.system == system, actions.c.key == key
    )
    return (await conn.execute(query)).rowcount > 0


async def record_action(conn: AsyncConnection, row: ActionRow, now: datetime) -> bool:
    """Record an action once; returns ``False`` if its key was already recorded.

    The first record of a key is kept unchanged. A new record also appends a
    timeline event (kind = the action's kind).
    """
    at = row.at or now
    result = await conn.execute(
        insert(conn, actions)
        .values(
            referral_id=row.referral_id,
            system=row.system,
            key=row.key,
            kind=row.kind,
            outcome=row.outcome,
            detail=dict(row.detail),
            at=at,
        )
        .on_conflict_do_nothing(index_elements=["referral_id", "system", "key"])
    )
    if result.rowcount != 1:
        return False
    detail = {**row.detail, "key": row.key, "outcome": row.outcome}
    await add_event(conn, row.referral_id, row.system, row.kind, detail, at)
    return True
