"""The ledger: referrals, the source versions applied, and the actions done.

A referral's ``numbers`` (system → that system's human-facing number) live twice: in
the ``referrals.numbers`` JSON, merged on upsert like ``ids``, and one row per system
in ``referral_numbers``, the index that finds a referral by a number. Both are written
in the same transaction by :func:`upsert_referral`.

Functions of an open connection; the caller owns the transaction. An applier
reads the ledger, performs only what is missing, and records it in the same
transaction, so that old or repeated snapshots do nothing.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from .events import add_event
from .models import ActionRow, ReferralRow
from .sqlite import fast
from .tables import (
    actions,
    dialect_insert,
    per_dialect,
    referral_numbers,
    referrals,
    source_versions,
)

# The hot statements are built once and executed with parameter dicts (see
# tables.per_dialect) and marked for SQLite's fast path (sqlite.fast); the parameter
# names are the column names.
_GET_REFERRAL = fast(
    sa.select(referrals).where(referrals.c.referral_id == sa.bindparam("referral_id"))
)
_GET_REFERRAL_FOR_UPDATE = fast(_GET_REFERRAL.with_for_update())
_GET_MAPS = fast(
    sa.select(referrals.c.ids, referrals.c.numbers).where(
        referrals.c.referral_id == sa.bindparam("referral_id")
    )
)
_UNINDEX_NUMBER = fast(
    sa.delete(referral_numbers).where(
        referral_numbers.c.referral_id == sa.bindparam("referral_id"),
        referral_numbers.c.system == sa.bindparam("system"),
    )
)
_GET_LAST_VERSION = fast(
    sa.select(source_versions.c.version).where(
        source_versions.c.referral_id == sa.bindparam("referral_id"),
        source_versions.c.system == sa.bindparam("system"),
    )
)
_ACTION_WHERE = (
    actions.c.referral_id == sa.bindparam("referral_id"),
    actions.c.system == sa.bindparam("system"),
    actions.c.key == sa.bindparam("key"),
)
_GET_ACTION = fast(sa.select(actions).where(*_ACTION_WHERE))
_DELETE_ACTION = sa.delete(actions).where(*_ACTION_WHERE)
_ACTION_KEYS = fast(
    sa.select(actions.c.key).where(
        actions.c.referral_id == sa.bindparam("referral_id"),
        actions.c.system == sa.bindparam("system"),
    )
)


def _referral(row: Row[Any]) -> ReferralRow:
    return ReferralRow(
        referral_id=row.referral_id,
        origin_system=row.origin_system,
        ids=dict(row.ids),
        state=row.state,
        early_warning=bool(row.early_warning),
        numbers=dict(row.numbers),
        target=row.target,
        last_snapshot=row.last_snapshot,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def get_referral(
    conn: AsyncConnection, referral_id: str, *, for_update: bool = False
) -> ReferralRow | None:
    """One referral, or ``None``. ``for_update`` locks the row on PostgreSQL."""
    query = _GET_REFERRAL_FOR_UPDATE if for_update else _GET_REFERRAL
    row = (await conn.execute(query, {"referral_id": referral_id})).one_or_none()
    return None if row is None else _referral(row)


def _merged(dialect: str, stored: sa.Column[Any], new: Any) -> Any:
    """The stored JSON object with the new one's entries on top, in SQL."""
    if dialect == "postgresql":
        return stored.op("||", return_type=stored.type)(new)  # jsonb
    return sa.func.json_patch(stored, new, type_=stored.type)


def _build_upsert_referral(dialect: str, *, merge: bool) -> Any:
    """``INSERT … ON CONFLICT (referral_id) DO UPDATE … RETURNING *``.

    ``merge``: the stored ``ids`` and ``numbers`` and the new ones are merged in SQL
    (the new entries win per key); otherwise the new ones replace the stored ones (the
    caller merged them). ``last_snapshot`` is kept when the ``keep_snapshot``
    parameter is true: a Python ``None`` is stored as JSON ``null``, not SQL
    ``NULL``, so ``COALESCE`` cannot tell.
    """
    stmt = dialect_insert(dialect, referrals)
    new = stmt.excluded
    ids: Any = _merged(dialect, referrals.c.ids, new.ids) if merge else new.ids
    numbers: Any = _merged(dialect, referrals.c.numbers, new.numbers) if merge else new.numbers
    keep_snapshot = sa.bindparam("keep_snapshot", type_=sa.Boolean())
    return stmt.on_conflict_do_update(
        index_elements=["referral_id"],
        set_={
            "ids": ids,
            "numbers": numbers,
            "target": sa.func.coalesce(new.target, referrals.c.target),
            "early_warning": new.early_warning,
            "state": new.state,
            "last_snapshot": sa.case(
                (keep_snapshot, referrals.c.last_snapshot), else_=new.last_snapshot
            ),
            "updated_at": new.updated_at,
        },
    ).returning(*referrals.c)


_upsert_referral_merging = per_dialect(partial(_build_upsert_referral, merge=True))
_upsert_referral_replacing = per_dialect(partial(_build_upsert_referral, merge=False))


@per_dialect
def _index_number(dialect: str) -> Any:
    """One ``referral_numbers`` row; an unchanged number is not rewritten."""
    stmt = dialect_insert(dialect, referral_numbers)
    return stmt.on_conflict_do_update(
        index_elements=["referral_id", "system"],
        set_={"number": stmt.excluded.number},
        where=referral_numbers.c.number != stmt.excluded.number,
    )


def _json_patch_merges(entries: dict[str, Any]) -> bool:
    """Whether SQLite's ``json_patch`` (RFC 7396) merges ``entries`` like
    ``{**old, **entries}``.

    It does unless a new value is ``null`` (which deletes the key) or an object
    (merged recursively); ids and numbers are strings, so that is the rare fallback.
    """
    return not any(value is None or isinstance(value, dict) for value in entries.values())


async def upsert_referral(conn: AsyncConnection, row: ReferralRow, now: datetime) -> ReferralRow:
    """Insert or update a referral; returns the row as stored.

    On update: ``ids`` and ``numbers`` are merged (the new row's entries win per
    system), ``origin_system`` and ``created_at`` are kept, ``last_snapshot`` and
    ``target`` are kept when the new row has ``None``, ``state`` and ``early_warning``
    take the new row's values, and ``updated_at`` is ``now``. One statement (``INSERT …
    ON CONFLICT DO UPDATE … RETURNING``) that merges in SQL on the locked existing row,
    so concurrent upserts on PostgreSQL lose no ids and no numbers; then, in the same transaction,
    the new row's numbers go into ``referral_numbers`` (a ``None`` number takes its
    system's row out, as it takes nothing findable into the JSON).
    """
    ids, numbers = dict(row.ids), dict(row.numbers)
    stmt = _upsert_referral_merging(conn)
    if conn.dialect.name == "sqlite" and not (
        _json_patch_merges(ids) and _json_patch_merges(numbers)
    ):
        # SQLite holds the write lock (BEGIN IMMEDIATE): read, merge here, replace.
        old = (await conn.execute(_GET_MAPS, {"referral_id": row.referral_id})).one_or_none()
        if old is not None:
            ids, numbers = {**old.ids, **ids}, {**old.numbers, **numbers}
        stmt = _upsert_referral_replacing(conn)
    params = {
        "referral_id": row.referral_id,
        "origin_system": row.origin_system,
        "ids": ids,
        "numbers": numbers,
        "target": row.target,
        "early_warning": row.early_warning,
        "state": row.state,
        "last_snapshot": row.last_snapshot,
        "created_at": row.created_at or now,
        "updated_at": now,
        "keep_snapshot": row.last_snapshot is None,
    }
    stored = _referral((await conn.execute(stmt, params)).one())
    for system, number in row.numbers.items():
        key = {"referral_id": row.referral_id, "system": system}
        if isinstance(number, str):
            await conn.execute(_index_number(conn), {**key, "number": number})
        else:
            await conn.execute(_UNINDEX_NUMBER, key)
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
    params = {"referral_id": referral_id, "system": system}
    return (await conn.execute(_GET_LAST_VERSION, params)).scalar_one_or_none()


@per_dialect
def _set_last_version(dialect: str) -> Any:
    stmt = dialect_insert(dialect, source_versions)
    return stmt.on_conflict_do_update(
        index_elements=["referral_id", "system"],
        set_={"version": stmt.excluded.version, "updated_at": stmt.excluded.updated_at},
    )


async def set_last_version(
    conn: AsyncConnection, referral_id: str, system: str, version: int, now: datetime
) -> None:
    """Store the last applied source version (replaces; the caller compares first)."""
    params = {"referral_id": referral_id, "system": system, "version": version, "updated_at": now}
    await conn.execute(_set_last_version(conn), params)


async def get_action(
    conn: AsyncConnection, referral_id: str, system: str, key: str
) -> ActionRow | None:
    """The recorded action with this key, or ``None``."""
    params = {"referral_id": referral_id, "system": system, "key": key}
    row = (await conn.execute(_GET_ACTION, params)).one_or_none()
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
    params = {"referral_id": referral_id, "system": system}
    return frozenset((await conn.execute(_ACTION_KEYS, params)).scalars())


async def delete_action(conn: AsyncConnection, referral_id: str, system: str, key: str) -> bool:
    """Forget a recorded action (an admin replays what was parked); True if one was."""
    params = {"referral_id": referral_id, "system": system, "key": key}
    return (await conn.execute(_DELETE_ACTION, params)).rowcount > 0


@per_dialect
def _record_action(dialect: str) -> Any:
    return dialect_insert(dialect, actions).on_conflict_do_nothing(
        index_elements=["referral_id", "system", "key"]
    )


async def record_action(conn: AsyncConnection, row: ActionRow, now: datetime) -> bool:
    """Record an action once; returns ``False`` if its key was already recorded.

    The first record of a key is kept unchanged. A new record also appends a
    timeline event (kind = the action's kind).
    """
    at = row.at or now
    params = {
        "referral_id": row.referral_id,
        "system": row.system,
        "key": row.key,
        "kind": row.kind,
        "outcome": row.outcome,
        "detail": dict(row.detail),
        "at": at,
    }
    if (await conn.execute(_record_action(conn), params)).rowcount != 1:
        return False
    detail = {**row.detail, "key": row.key, "outcome": row.outcome}
    await add_event(conn, row.referral_id, row.system, row.kind, detail, at)
    return True
