"""The transactional outbox: messages written with their cause, published later.

A relay reads :func:`pending`, publishes with confirms, then
:func:`mark_published`. A crash in between publishes again (at least once);
the receiving ledger absorbs the repeat. A message whose publish failed is
either deferred (:func:`defer`: out of the pending set until its next attempt)
or parked (:func:`park`: moved to the dead letters in the caller's transaction).
Published messages are deleted after a retention, a batch at a time
(:func:`purge_published`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from . import dead_letters
from .models import DeadLetterIn, OutboxMessage, OutboxRow
from .sqlite import fast
from .tables import outbox

# Built once, executed with a parameter dict (see tables.per_dialect and sqlite.fast).
_ENQUEUE = fast(sa.insert(outbox))
_PENDING = fast(
    sa.select(outbox)
    .where(
        outbox.c.published_at.is_(None),
        sa.or_(
            outbox.c.next_attempt_at.is_(None),
            outbox.c.next_attempt_at <= sa.bindparam("now", type_=outbox.c.next_attempt_at.type),
        ),
    )
    .order_by(outbox.c.early_warning.desc(), outbox.c.id)
    .limit(sa.bindparam("limit", type_=sa.Integer))
)
_DEFER = fast(
    sa.update(outbox)
    .where(
        outbox.c.id == sa.bindparam("row_id"),
        outbox.c.published_at.is_(None),
        outbox.c.attempts == sa.bindparam("seen"),
    )
    .values(attempts=outbox.c.attempts + 1, next_attempt_at=sa.bindparam("next_attempt_at"))
)
_TAKE = fast(
    sa.delete(outbox).where(outbox.c.id == sa.bindparam("row_id"), outbox.c.published_at.is_(None))
)


async def enqueue(conn: AsyncConnection, message: OutboxMessage, now: datetime) -> int:
    """Add a message to the outbox; returns its id (ids increase with time)."""
    params = {
        "referral_id": message.referral_id,
        "routing_key": message.routing_key,
        "body": bytes(message.body),
        "headers": dict(message.headers),
        "early_warning": message.early_warning,
        "created_at": now,
        "published_at": None,
    }
    result = await conn.execute(_ENQUEUE, params)
    return int(result.inserted_primary_key[0])


async def pending(conn: AsyncConnection, limit: int, now: datetime) -> list[OutboxRow]:
    """Up to ``limit`` unpublished messages due at ``now``: early-warning first, then
    oldest first. Messages waiting out a back-off (see :func:`defer`) are left out, so
    they never hold up the ones behind them; one query on the partial pending index.

    Within one referral the order is by id unless its early-warning flag
    changed between messages or one of them was deferred; snapshots carry
    versions, so a reordered older one is dropped by the applier.
    """
    rows = await conn.execute(_PENDING, {"now": now, "limit": limit})
    return [
        OutboxRow(
            id=row.id,
            referral_id=row.referral_id,
            routing_key=row.routing_key,
            body=bytes(row.body),
            headers=row.headers,
            early_warning=bool(row.early_warning),
            created_at=row.created_at,
            published_at=row.published_at,
            attempts=row.attempts,
        )
        for row in rows
    ]


async def mark_published(conn: AsyncConnection, ids: Sequence[int], now: datetime) -> int:
    """Mark messages as published; returns how many were still pending."""
    if not ids:
        return 0
    result = await conn.execute(
        sa.update(outbox)
        .where(outbox.c.id.in_(list(ids)), outbox.c.published_at.is_(None))
        .values(published_at=now)
    )
    return result.rowcount


async def defer(conn: AsyncConnection, row: OutboxRow, delay_s: float, now: datetime) -> bool:
    """Count one more failed attempt of ``row`` and keep it out of the pending set for
    ``delay_s``. Returns ``False`` (and changes nothing) if the row was published,
    parked or deferred by someone else since it was read."""
    params = {
        "row_id": row.id,
        "seen": row.attempts,
        "next_attempt_at": now + timedelta(seconds=delay_s),
    }
    return (await conn.execute(_DEFER, params)).rowcount == 1


async def park(
    conn: AsyncConnection, row_id: int, letter: DeadLetterIn, now: datetime
) -> int | None:
    """Move a pending message to the dead letters: delete it from the outbox and park
    ``letter`` (which must hold what a replay needs), in the caller's transaction.

    Returns the dead letter's id, or ``None`` (nothing parked) if the message is no
    longer pending, e.g. another replica published or parked it meanwhile.
    """
    if (await conn.execute(_TAKE, {"row_id": row_id})).rowcount != 1:
        return None
    return await dead_letters.park(conn, letter, now)


async def purge_published(conn: AsyncConnection, older_than: datetime, limit: int = 500) -> int:
    """Delete up to ``limit`` messages published before ``older_than``; returns how
    many. Unpublished messages are never deleted, however old. Call it again until it
    returns less than ``limit``, one short transaction each."""
    batch = (
        sa.select(outbox.c.id)
        .where(outbox.c.published_at.is_not(None), outbox.c.published_at < older_than)
        .limit(limit)
    )
    result = await conn.execute(sa.delete(outbox).where(outbox.c.id.in_(batch)))
    return result.rowcount


async def backlog(conn: AsyncConnection) -> tuple[int, datetime | None]:
    """How many messages wait to be published, and when the oldest was written."""
    query = sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).where(
        outbox.c.published_at.is_(None)
    )
    count, oldest = (await conn.execute(query)).one()
    return int(count), oldest
