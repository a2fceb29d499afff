"""Leases: named, time-bounded ownership shared by replicas through the store.

Used for the reconciler's leadership and for sharing broker shards. Expiry is
judged by the store's clock (the caller's), so replicas need synchronised
clocks (NTP) and a TTL well above their skew. A lease that expired long ago
is deleted (:func:`purge_expired`); a missing lease is simply free.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import insert, leases


async def try_acquire(
    conn: AsyncConnection, name: str, holder: str, ttl_s: float, now: datetime
) -> bool:
    """Acquire or renew ``name`` for ``holder`` until ``now + ttl_s``.

    Succeeds if the lease is free, expired, or already ``holder``'s; one
    atomic ``INSERT … ON CONFLICT DO UPDATE … WHERE`` on both dialects, so two
    contenders never both win.
    """
    if ttl_s <= 0:
        raise ValueError("a lease needs a positive ttl_s")
    stmt = insert(conn, leases).values(
        name=name, holder=holder, expires_at=now + timedelta(seconds=ttl_s)
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={"holder": stmt.excluded.holder, "expires_at": stmt.excluded.expires_at},
        where=sa.or_(leases.c.expires_at <= now, leases.c.holder == holder),
    )
    result = await conn.execute(stmt)
    return result.rowcount == 1


async def release(conn: AsyncConnection, name: str, holder: str) -> bool:
    """Give up ``name`` if ``holder`` holds it; returns whether it did."""
    result = await conn.execute(
        sa.delete(leases).where(leases.c.name == name, leases.c.holder == holder)
    )
    return result.rowcount == 1


async def held_by(conn: AsyncConnection, holder: str, now: datetime) -> list[str]:
    """Names of the unexpired leases ``holder`` holds, sorted."""
    query = (
        sa.select(leases.c.name)
        .where(leases.c.holder == holder, leases.c.expires_at > now)
        .order_by(leases.c.name)
    )
    return list((await conn.execute(query)).scalars())


async def purge_expired(conn: AsyncConnection, expired_before: datetime, limit: int = 500) -> int:
    """Delete up to ``limit`` leases that expired before ``expired_before``; returns
    how many. Atomic per row: a lease renewed meanwhile no longer matches."""
    batch = sa.select(leases.c.name).where(leases.c.expires_at < expired_before).limit(limit)
    result = await conn.execute(
        sa.delete(leases).where(leases.c.name.in_(batch), leases.c.expires_at < expired_before)
    )
    return result.rowcount
