"""The transactional outbox: messages written with their cause, published later.

A relay reads :func:`pending`, publishes with confirms, then
:func:`mark_published`. A crash in between publishes again (at least once);
the receiving ledger absorbs the repeat.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import OutboxMessage, OutboxRow
from .sqlite import fast
from .tables import outbox

# Built once, executed with a parameter dict (see tables.per_dialect and sqlite.fast).
_ENQUEUE = fast(sa.insert(outbox))


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


async def pending(conn: AsyncConnection, limit: int) -> list[OutboxRow]:
    """Up to ``limit`` unpublished messages: early-warning first, then oldest first.

    Within one referral the order is by id unless its early-warning flag
    changed between messages; snapshots carry versions, so a reordered older
    one is dropped by the applier.
    """
    query = (
        sa.select(outbox)
        .where(outbox.c.published_at.is_(None))
        .order_by(outbox.c.early_warning.desc(), outbox.c.id)
        .limit(limit)
    )
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
        )
        for row in await conn.execute(query)
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


async def purge_published(conn: AsyncConnection, older_than: datetime) -> int:
    """Delete messages published before ``older_than``; returns how many."""
    result = await conn.execute(
        sa.delete(outbox).where(
            outbox.c.published_at.is_not(None), outbox.c.published_at < older_than
        )
    )
    return result.rowcount


async def backlog(conn: AsyncConnection) -> tuple[int, datetime | None]:
    """How many messages wait to be published, and when the oldest was written."""
    query = sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).where(
        outbox.c.published_at.is_(None)
    )
    count, oldest = (await conn.execute(query)).one()
    return int(count), oldest
