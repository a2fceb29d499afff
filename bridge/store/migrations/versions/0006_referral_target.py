"""The partner each referral goes to: a nullable ``referrals.target`` and an index on
``(origin_system, target)``, so that the admin API pages one direction exactly and the
metrics count by direction, whatever the number of partners.

The copy: a referral's target is its ``last_snapshot``'s ``target``, else the
``transfer.to`` of an older snapshot, else the one system other than the origin that
the snapshot's ``ids`` and ``numbers`` name, together with the row's own ``ids`` and
``numbers`` columns (a node that only applied a referral holds no snapshot of it, but
its ids name the node's own system, which the referral went to). When these name no
system or several other than the origin, the target stays ``NULL`` ("not known"): a
guess would put the referral in a direction it may not have. This migration names no partner; the next
upsert of a referral that names its target writes it. Rows are read in chunks by
``referral_id`` (keyset): a large ledger is never in memory at once.

The downgrade drops the index and the column.

Revision ID: 0006
Revises: 0005
Create Date: 2027-01-02
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Frozen copies of the types: a migration must not change when tables.py does.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
CHUNK: Final = 1000

_referrals = sa.table(
    "referrals",
    sa.column("referral_id", sa.String),
    sa.column("origin_system", sa.String),
    sa.column("ids", JSON),
    sa.column("numbers", JSON),
    sa.column("last_snapshot", JSON),
    sa.column("target", sa.String),
)


def _system(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _others(origin: str, *maps: Any) -> set[str]:
    """The systems other than ``origin`` that the JSON objects ``maps`` have keys for."""
    return {
        key for entries in maps if isinstance(entries, dict) for key in entries if key != origin
    }


def target_of(origin: str, snapshot: Any, *maps: Any) -> str | None:
    """The target a stored snapshot shows (or the referral's own ``maps``: its ``ids``
    and ``numbers`` columns), or ``None`` when they show none for sure."""
    snapshot = snapshot if isinstance(snapshot, dict) else {}
    transfer = snapshot.get("transfer")
    named = _system(snapshot.get("target")) or (
        _system(transfer.get("to")) if isinstance(transfer, dict) else None
    )
    if named is not None:
        return named if named != origin else None
    others = _others(origin, snapshot.get("ids"), snapshot.get("numbers"), *maps)
    return others.pop() if len(others) == 1 else None


def _chunks(conn: sa.Connection) -> Iterator[list[sa.Row[Any]]]:
    """The referrals' keys, origins, ids, numbers and snapshots, ``CHUNK`` rows at a
    time."""
    r = _referrals.c
    after: str | None = None
    while True:
        query = sa.select(r.referral_id, r.origin_system, r.ids, r.numbers, r.last_snapshot)
        if after is not None:
            query = query.where(r.referral_id > after)
        rows = conn.execute(query.order_by(r.referral_id).limit(CHUNK)).all()
        if not rows:
            return
        after = rows[-1].referral_id
        yield rows


def _target(row: sa.Row[Any]) -> str | None:
    return target_of(row.origin_system, row.last_snapshot, row.ids, row.numbers)


def _copy_targets(conn: sa.Connection) -> None:
    r = _referrals.c
    for rows in _chunks(conn):
        updates = [
            {"rid": row.referral_id, "target": target}
            for row in rows
            if (target := _target(row)) is not None
        ]
        if updates:
            conn.execute(
                sa.update(_referrals)
                .where(r.referral_id == sa.bindparam("rid"))
                .values(target=sa.bindparam("target")),
                updates,
            )


def upgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column("target", sa.String(32)))
    op.create_index("ix_referrals_origin_target", "referrals", ["origin_system", "target"])
    _copy_targets(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_referrals_origin_target", table_name="referrals")
    with op.batch_alter_table("referrals") as batch:
        batch.drop_column("target")
