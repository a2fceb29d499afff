"""Dead letters: what can never succeed as it is, parked with its reason.

Authoritative, browsable and replayable by an admin. Lifecycle::

    parked ──replay──▶ replayed      (attempts + 1; a new failure parks anew)
       └────discard──▶ discarded

Replayed and discarded letters are deleted after a retention (:func:`purge_closed`);
parked ones stay until an admin acts.

Functions of an open connection; the caller owns the transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from .events import add_event
from .models import (
    DEAD_LETTER_STAGES,
    DEAD_LETTER_STATUSES,
    DeadLetterFilter,
    DeadLetterIn,
    DeadLetterRow,
)
from .tables import dead_letters


def _check(value: str | None, allowed: tuple[str, ...], what: str) -> None:
    if value is not None and value not in allowed:
        raise ValueError(f"unknown dead-letter {what} {value!r}; expected one of {allowed}")


def _row(row: Row[Any]) -> DeadLetterRow:
    return DeadLetterRow(
        id=row.id,
        referral_id=row.referral_id,
        system=row.system,
        stage=row.stage,
        reason=row.reason,
        field=row.field,
        payload=row.payload,
        status=row.status,
        attempts=row.attempts,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def park(conn: AsyncConnection, letter: DeadLetterIn, now: datetime) -> int:
    """Park a dead letter with status ``"parked"``; returns its id.

    Also appends a ``"parked"`` event to the referral's timeline when the
    letter names a referral, with the mapping version of the payload
    (``payload["mapping"]``) when it has one. Raises :class:`ValueError` for an
    unknown stage.
    """
    _check(letter.stage, DEAD_LETTER_STAGES, "stage")
    result = await conn.execute(
        sa.insert(dead_letters).values(
            referral_id=letter.referral_id,
            system=letter.system,
            stage=letter.stage,
            reason=letter.reason,
            field=letter.field,
            payload=letter.payload,
            status="parked",
            attempts=letter.attempts,
            created_at=now,
            updated_at=now,
        )
    )
    letter_id = int(result.inserted_primary_key[0])
    if letter.referral_id is not None:
        detail = {"dead_letter_id": letter_id, "stage": letter.stage, "field": letter.field}
        if letter.payload.get("mapping") is not None:
            detail["mapping"] = letter.payload["mapping"]
        await add_event(conn, letter.referral_id, letter.system, "parked", detail, now)
    return letter_id


async def get(conn: AsyncConnection, letter_id: int) -> DeadLetterRow | None:
    """One dead letter, or ``None``."""
    query = sa.select(dead_letters).where(dead_letters.c.id == letter_id)
    row = (await conn.execute(query)).one_or_none()
    return None if row is None else _row(row)


async def list_(
    conn: AsyncConnection,
    *,
    status: str | None = None,
    system: str | None = None,
    stage: str | None = None,
    referral_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[DeadLetterRow]:
    """Dead letters matching every given filter, oldest first.

    Raises :class:`ValueError` for an unknown status or stage.
    """
    _check(status, DEAD_LETTER_STATUSES, "status")
    _check(stage, DEAD_LETTER_STAGES, "stage")
    query = sa.select(dead_letters)
    for column, value in (
        (dead_letters.c.status, status),
        (dead_letters.c.system, system),
        (dead_letters.c.stage, stage),
        (dead_letters.c.referral_id, referral_id),
    ):
        if value is not None:
            query = query.where(column == value)
    query = query.order_by(dead_letters.c.id).limit(limit).offset(offset)
    return [_row(row) for row in await conn.execute(query)]


def _matching(
    query: sa.Select[Any],
    match: DeadLetterFilter,
    after_id: int | None = None,
    up_to_id: int | None = None,
) -> sa.Select[Any]:
    _check(match.status, DEAD_LETTER_STATUSES, "status")
    _check(match.stage, DEAD_LETTER_STAGES, "stage")
    c = dead_letters.c
    for column, value in (
        (c.status, match.status),
        (c.system, match.system),
        (c.stage, match.stage),
        (c.referral_id, match.referral_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if match.reason:
        query = query.where(c.reason.icontains(match.reason, autoescape=True))
    if match.since is not None:
        query = query.where(c.created_at >= match.since)
    if match.until is not None:
        query = query.where(c.created_at < match.until)
    if after_id is not None:
        query = query.where(c.id > after_id)
    if up_to_id is not None:
        query = query.where(c.id <= up_to_id)
    return query


async def page(
    conn: AsyncConnection, match: DeadLetterFilter, *, after_id: int | None = None, limit: int
) -> list[DeadLetterRow]:
    """Up to ``limit`` letters matching ``match`` with an id above ``after_id``, by id
    (keyset: a letter parked meanwhile comes on a later page, never twice, none skipped).

    Raises :class:`ValueError` for an unknown status or stage.
    """
    query = _matching(sa.select(dead_letters), match, after_id)
    query = query.order_by(dead_letters.c.id).limit(limit)
    return [_row(row) for row in await conn.execute(query)]


async def ids(
    conn: AsyncConnection,
    match: DeadLetterFilter,
    *,
    after_id: int | None,
    up_to_id: int | None,
    limit: int,
) -> list[int]:
    """The ids of the next ``limit`` matching letters in ``(after_id, up_to_id]``."""
    query = _matching(sa.select(dead_letters.c.id), match, after_id, up_to_id)
    query = query.order_by(dead_letters.c.id).limit(limit)
    return [int(letter_id) for letter_id in (await conn.execute(query)).scalars()]


async def count(conn: AsyncConnection, match: DeadLetterFilter, *, up_to_id: int | None) -> int:
    """How many letters match ``match`` with an id up to ``up_to_id``."""
    query = _matching(sa.select(sa.func.count()).select_from(dead_letters), match, None, up_to_id)
    return int((await conn.execute(query)).scalar_one())


async def last_id(conn: AsyncConnection) -> int:
    """The highest dead-letter id so far (0: none): bounds a replay job to the letters
    that exist when it starts, so that a letter parked again is not replayed again."""
    return int((await conn.execute(sa.select(sa.func.max(dead_letters.c.id)))).scalar() or 0)


async def set_status(
    conn: AsyncConnection, letter_id: int, status: str, now: datetime
) -> DeadLetterRow | None:
    """Set a dead letter's status; returns the updated row, ``None`` if not found.

    Setting ``"replayed"`` counts one more attempt. Raises :class:`ValueError`
    for an unknown status.
    """
    _check(status, DEAD_LETTER_STATUSES, "status")
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if status == "replayed":
        values["attempts"] = dead_letters.c.attempts + 1
    result = await conn.execute(
        sa.update(dead_letters).where(dead_letters.c.id == letter_id).values(**values)
    )
    if result.rowcount == 0:
        return None
    return await get(conn, letter_id)


async def count_by_status(conn: AsyncConnection) -> dict[str, int]:
    """How many dead letters are in each status; every status is present."""
    query = sa.select(dead_letters.c.status, sa.func.count()).group_by(dead_letters.c.status)
    counts = dict.fromkeys(DEAD_LETTER_STATUSES, 0)
    for status, count in await conn.execute(query):
        counts[status] = int(count)
    return counts


CLOSED_STATUSES: Final[tuple[str, ...]] = ("replayed", "discarded")
"""Statuses of letters an admin is done with; only these are ever purged."""


async def purge_closed(conn: AsyncConnection, older_than: datetime, limit: int = 500) -> int:
    """Delete up to ``limit`` replayed or discarded letters last changed before
    ``older_than``; returns how many. Parked letters are never deleted."""
    batch = (
        sa.select(dead_letters.c.id)
        .where(dead_letters.c.status.in_(CLOSED_STATUSES), dead_letters.c.updated_at < older_than)
        .limit(limit)
    )
    result = await conn.execute(sa.delete(dead_letters).where(dead_letters.c.id.in_(batch)))
    return result.rowcount
