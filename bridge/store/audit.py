"""The audit log: every mutating admin call and every unmasked read.

A row names the caller by its token's fingerprint (never the token), what was asked
(operation, method, path), when, and the outcome (HTTP status and a short text). The
detail carries identifiers only (ids, filters), never personal data.

Functions of an open connection; the caller owns the transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import AuditIn, AuditRow
from .tables import audit_log


def _row(row: Row[Any]) -> AuditRow:
    return AuditRow(
        id=row.id,
        at=row.at,
        token=row.token,
        role=row.role,
        operation=row.operation,
        method=row.method,
        path=row.path,
        status=row.status,
        outcome=row.outcome,
        detail=dict(row.detail),
    )


async def add(conn: AsyncConnection, entry: AuditIn, now: datetime) -> int:
    """Append one entry; returns its id."""
    result = await conn.execute(
        sa.insert(audit_log).values(
            at=now,
            token=entry.token,
            role=entry.role,
            operation=entry.operation,
            method=entry.method,
            path=entry.path[:500],
            status=entry.status,
            outcome=entry.outcome[:200],
            detail=dict(entry.detail),
        )
    )
    return int(result.inserted_primary_key[0])


async def list_(
    conn: AsyncConnection,
    *,
    before_id: int | None = None,
    operation: str | None = None,
    token: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[AuditRow]:
    """Entries newest first; ``before_id`` continues a page (keyset: stable while new
    entries are added, which all come before the first page)."""
    query = sa.select(audit_log)
    if before_id is not None:
        query = query.where(audit_log.c.id < before_id)
    if operation is not None:
        query = query.where(audit_log.c.operation == operation)
    if token is not None:
        query = query.where(audit_log.c.token == token)
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    query = query.order_by(audit_log.c.id.desc()).limit(limit)
    return [_row(row) for row in await conn.execute(query)]
