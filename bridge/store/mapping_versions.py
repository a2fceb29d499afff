"""Mapping versions: the effective mapping tables by their hash.

Events and dead letters name the version of the tables that mapped them
(``detail["mapping"]``, ``payload["mapping"]``); this table keeps the tables of
each version, so that a replay can use the tables of the time. A version never
changes once written (its name is the hash of its content), so writing one that
exists does nothing, and none is ever deleted.

Functions of an open connection; the caller owns the transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import dialect_insert, mapping_versions, per_dialect


@per_dialect
def _put(dialect: str) -> Any:
    return dialect_insert(dialect, mapping_versions).on_conflict_do_nothing(
        index_elements=["version"]
    )


async def put(conn: AsyncConnection, version: str, tables: dict[str, Any], now: datetime) -> bool:
    """Record the tables of ``version``; ``False`` if it was already recorded (kept)."""
    params = {"version": version, "tables": tables, "created_at": now}
    return (await conn.execute(_put(conn), params)).rowcount == 1


async def get(conn: AsyncConnection, version: str) -> dict[str, Any] | None:
    """The tables of ``version`` as recorded, or ``None`` for a version never recorded."""
    query = sa.select(mapping_versions.c.tables).where(mapping_versions.c.version == version)
    return (await conn.execute(query)).scalar_one_or_none()
