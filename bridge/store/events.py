"""The timeline of each referral: intakes, actions, parkings, in order.

Functions of an open connection; the caller owns the transaction. ``detail``
carries identifiers and outcomes only, never personal data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import Event
from .sqlite import fast
from .tables import events

# Built once, executed with a parameter dict (see tables.per_dialect and sqlite.fast).
_ADD_EVENT = fast(sa.insert(events))


async def add_event(
    conn: AsyncConnection,
    referral_id: str,
    system: str,
    kind: str,
    detail: dict[str, Any],
    now: datetime,
) -> int:
    """Append one event to ``referral_id``'s timeline; returns its id."""
    params = {
        "referral_id": referral_id,
        "system": system,
        "kind": kind,
        "detail": detail,
        "at": now,
    }
    result = await conn.execute(_ADD_EVENT, params)
    return int(result.inserted_primary_key[0])


async def timeline(conn: AsyncConnection, referral_id: str) -> list[Event]:
    """Every event of ``referral_id``, oldest first (ties in insertion order)."""
    query = (
        sa.select(events)
        .where(events.c.referral_id == referral_id)
        .order_by(events.c.at, events.c.id)
    )
    return [
        Event(
            id=row.id,
            referral_id=row.referral_id,
            system=row.system,
            kind=row.kind,
            detail=row.detail,
            at=row.at,
        )
        for row in await conn.execute(query)
    ]
