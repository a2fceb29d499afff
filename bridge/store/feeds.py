"""Feed bookkeeping: positions, what was seen, and the index of created cases.

Functions of an open connection; the caller owns the transaction. A position
written here becomes visible only when that transaction commits, together with
the outbox rows of what was read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import Seen
from .sqlite import fast
from .tables import created_index, dialect_insert, feed_positions, feed_seen, per_dialect

# Built once, executed with parameter dicts (see tables.per_dialect and sqlite.fast).
_GET_POSITION = fast(
    sa.select(feed_positions.c.position).where(
        feed_positions.c.system == sa.bindparam("system"),
        feed_positions.c.feed == sa.bindparam("feed"),
    )
)
_GET_SEEN = fast(
    sa.select(feed_seen.c.content_hash, feed_seen.c.seq).where(
        feed_seen.c.system == sa.bindparam("system"),
        feed_seen.c.native_id == sa.bindparam("native_id"),
    )
)
_LOOKUP_CREATED = fast(
    sa.select(created_index.c.native_id).where(
        created_index.c.system == sa.bindparam("system"),
        created_index.c.origin_ref == sa.bindparam("origin_ref"),
    )
)


@per_dialect
def _set_position(dialect: str) -> Any:
    stmt = dialect_insert(dialect, feed_positions)
    return stmt.on_conflict_do_update(
        index_elements=["system", "feed"],
        set_={"position": stmt.excluded.position, "updated_at": stmt.excluded.updated_at},
    )


@per_dialect
def _put_seen(dialect: str) -> Any:
    stmt = dialect_insert(dialect, feed_seen)
    return stmt.on_conflict_do_update(
        index_elements=["system", "native_id"],
        set_={
            "content_hash": stmt.excluded.content_hash,
            "seq": stmt.excluded.seq,
            "updated_at": stmt.excluded.updated_at,
        },
    )


@per_dialect
def _put_created(dialect: str) -> Any:
    return (
        dialect_insert(dialect, created_index)
        .on_conflict_do_nothing(index_elements=["system", "origin_ref"])
        .returning(created_index.c.native_id)
    )


async def get_position(conn: AsyncConnection, system: str, feed: str) -> str | None:
    """The stored position of ``system``'s ``feed``, or ``None`` before the first read."""
    params = {"system": system, "feed": feed}
    return (await conn.execute(_GET_POSITION, params)).scalar_one_or_none()


async def set_position(
    conn: AsyncConnection, system: str, feed: str, position: str, now: datetime
) -> None:
    """Store ``position`` for ``system``'s ``feed`` (insert or replace)."""
    params = {"system": system, "feed": feed, "position": position, "updated_at": now}
    await conn.execute(_set_position(conn), params)


async def get_seen(conn: AsyncConnection, system: str, native_id: str) -> Seen | None:
    """What was last seen of one native record, or ``None``."""
    params = {"system": system, "native_id": native_id}
    row = (await conn.execute(_GET_SEEN, params)).one_or_none()
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
    params = {
        "system": system,
        "native_id": native_id,
        "content_hash": content_hash,
        "seq": seq,
        "updated_at": now,
    }
    await conn.execute(_put_seen(conn), params)


async def lookup_created(conn: AsyncConnection, system: str, origin_ref: str) -> str | None:
    """The native id of the case this node created on ``system`` for ``origin_ref``."""
    params = {"system": system, "origin_ref": origin_ref}
    return (await conn.execute(_LOOKUP_CREATED, params)).scalar_one_or_none()


async def put_created(
    conn: AsyncConnection, system: str, origin_ref: str, native_id: str, now: datetime
) -> str:
    """Index a created case; the first entry for ``(system, origin_ref)`` wins.

    Returns the native id now indexed, which differs from ``native_id`` only if
    another case was indexed first (the caller should treat that as a conflict).
    """
    params = {"system": system, "origin_ref": origin_ref, "native_id": native_id, "created_at": now}
    inserted: str | None = (await conn.execute(_put_created(conn), params)).scalar_one_or_none()
    if inserted is not None:  # RETURNING: the row this call inserted
        return inserted
    stored = await lookup_created(conn, system, origin_ref)
    assert stored is not None
    return stored
