"""Feed bookkeeping: positions, what was seen, and the index of created cases.

Functions of an open connection; the caller owns the transaction. A position
written here becomes visible only when that transaction commits, together with
the outbox rows of what was read.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import Seen
from .tables import created_index, feed_positions, feed_seen, insert


async def get_position(conn: AsyncConnection, system: str, feed: str) -> str | None:
    """The stored position of ``system``'s ``feed``, or ``None`` before the first read."""
    query = sa.select(feed_positions.c.position).where(
        feed_positions.c.system == system, feed_positions.c.feed == feed
    )
    return (await conn.execute(query)).scalar_one_or_none()


async def set_position(
    conn: AsyncConnection, system: str, feed: str, position: str, now: datetime
) -> None:
    """Store ``position`` for ``system``'s ``feed`` (insert or replace)."""
    stmt = insert(conn, feed_positions).values(
        system=system, feed=feed, position=position, updated_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["system", "feed"],
        set_={"position": stmt.excluded.position, "updated_at": stmt.excluded.updated_at},
    )
    await conn.execute(stmt)


async def get_seen(conn: AsyncConnection, system: str, native_id: str) -> Seen | None:
    """What was last seen of one native record, or ``None``."""
    query = sa.select(feed_seen.c.content_hash, feed_seen.c.seq).where(
        feed_seen.c.system == system, feed_seen.c.native_id == native_id
    )
    row = (await conn.execute(query)).one_or_none()
    return None if row is None else Seen(content_hash=row.content_hash, seq=row.seq)


async def put_seen(
    conn: AsyncConnection,
    system: str,
    native_id: str,
    content_hash: str,
    seq: int,
    now: datetime,
) -> None:
    """Record the content hash and sequence number last seen of one native record."""
    stmt = insert(conn, feed_seen).values(
        system=system, native_id=native_id, content_hash=content_hash, seq=seq, updated_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["system", "native_id"],
        set_={
            "content_hash": stmt.excluded.content_hash,
            "seq": stmt.excluded.seq,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    await conn.execute(stmt)


async def lookup_created(conn: AsyncConnection, system: str, origin_ref: str) -> str | None:
    """The native id of the case this node created on ``system`` for ``origin_ref``."""
    query = sa.select(created_index.c.native_id).where(
        created_index.c.system == system, created_index.c.origin_ref == origin_ref
    )
    return (await conn.execute(query)).scalar_one_or_none()


async def put_created(
    conn: AsyncConnection, system: str, origin_ref: str, native_id: str, now: datetime
) -> str:
    """Index a created case; the first entry for ``(system, origin_ref)`` wins.

    Returns the native id now indexed, which differs from ``native_id`` only if
    another case was indexed first (the caller should treat that as a conflict).
    """
    stmt = insert(conn, created_index).values(
        system=system, origin_ref=origin_ref, native_id=native_id, created_at=now
    )
    await conn.execute(stmt.on_conflict_do_nothing(index_elements=["system", "origin_ref"]))
    stored = await lookup_created(conn, system, origin_ref)
    assert stored is not None
    return stored
