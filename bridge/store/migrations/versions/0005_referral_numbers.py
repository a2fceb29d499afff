"""Every partner's number, generically: ``referrals.numbers`` (system → that system's
human-facing number, merged on upsert like ``ids``) and the index table
``referral_numbers (referral_id, system, number)`` that finds a referral by a number of
any system, in place of the one partner's ``case_no`` column and its index.

The copy: a referral's numbers are those of its ``last_snapshot["numbers"]`` plus the
old ``case_no``. That column names no system, and this migration names no partner, so
its system is learnt from the ledger: a first pass finds the systems whose snapshot
number equals ``case_no``. If every such match is the same one system, each
``case_no`` is that system's number, also on the referrals whose snapshot lacks it
(a node that only applied a referral holds no snapshot of it, only the column). If the
matches disagree, or there are none, only the snapshots' numbers are copied and a
``case_no`` no snapshot entry equals is left out. ``-x case_no_system=<system>`` (or
``config.attributes["case_no_system"]``) names the system instead of learning it.
Both passes read in chunks by ``referral_id`` (keyset): a large ledger is never in
memory at once.

The downgrade brings back the column and its index, filled from ``referral_numbers``
when told which system's number the column held (``-x case_no_system=<system>``, as
above), else empty. An empty ``case_no`` loses little there: the code of 0004 also
reads the snapshot's numbers, and writes the column again on the next upsert.

Revision ID: 0005
Revises: 0004
Create Date: 2027-01-01
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Frozen copies of the types: a migration must not change when tables.py does.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
CHUNK: Final = 1000

_referrals = sa.table(
    "referrals",
    sa.column("referral_id", sa.String),
    sa.column("case_no", sa.String),
    sa.column("last_snapshot", JSON),
    sa.column("numbers", JSON),
)
_numbers = sa.table(
    "referral_numbers",
    sa.column("referral_id", sa.String),
    sa.column("system", sa.String),
    sa.column("number", sa.String),
)


def _snapshot_numbers(snapshot: Any) -> dict[str, str]:
    """The ``numbers`` of a stored snapshot: its entries whose number is a string."""
    numbers = snapshot.get("numbers") if isinstance(snapshot, dict) else None
    if not isinstance(numbers, dict):
        return {}
    return {system: no for system, no in numbers.items() if isinstance(no, str) and no}


def _chunks(conn: sa.Connection, *where: Any) -> Iterator[list[sa.Row[Any]]]:
    """The referrals' ids, ``case_no`` and snapshots, ``CHUNK`` rows at a time."""
    r = _referrals.c
    after: str | None = None
    while True:
        query = sa.select(r.referral_id, r.case_no, r.last_snapshot).where(*where)
        if after is not None:
            query = query.where(r.referral_id > after)
        rows = conn.execute(query.order_by(r.referral_id).limit(CHUNK)).all()
        if not rows:
            return
        after = rows[-1].referral_id
        yield rows


def _learn_case_no_system(conn: sa.Connection) -> str | None:
    """The one system whose snapshot number equals ``case_no`` wherever one does."""
    matched: set[str] = set()
    r = _referrals.c
    for rows in _chunks(conn, r.case_no.is_not(None), r.last_snapshot.is_not(None)):
        for row in rows:
            numbers = _snapshot_numbers(row.last_snapshot)
            matched.update(system for system, no in numbers.items() if no == row.case_no)
        if len(matched) > 1:
            return None
    return next(iter(matched), None)


def _copy_numbers(conn: sa.Connection, case_no_system: str | None) -> None:
    r = _referrals.c
    for rows in _chunks(conn):
        updates: list[dict[str, Any]] = []
        index: list[dict[str, Any]] = []
        for row in rows:
            numbers = _snapshot_numbers(row.last_snapshot)
            if row.case_no and case_no_system is not None:
                numbers[case_no_system] = row.case_no  # every upsert wrote the column
            if not numbers:
                continue
            updates.append({"rid": row.referral_id, "numbers": numbers})
            index += [
                {"referral_id": row.referral_id, "system": system, "number": number}
                for system, number in numbers.items()
            ]
        if updates:
            conn.execute(
                sa.update(_referrals)
                .where(r.referral_id == sa.bindparam("rid"))
                .values(numbers=sa.bindparam("numbers", type_=JSON)),
                updates,
            )
            conn.execute(sa.insert(_numbers), index)


def upgrade() -> None:
    op.add_column(
        "referrals",
        sa.Column("numbers", JSON, nullable=False, server_default=sa.text("'{}'")),
    )
    op.create_table(
        "referral_numbers",
        sa.Column("referral_id", sa.String(200), primary_key=True),
        sa.Column("system", sa.String(32), primary_key=True),
        sa.Column("number", sa.String(200), nullable=False),
    )
    op.create_index("ix_referral_numbers_number", "referral_numbers", ["number"])
    op.create_index("ix_referral_numbers_system_number", "referral_numbers", ["system", "number"])
    conn = op.get_bind()
    _copy_numbers(conn, _case_no_system() or _learn_case_no_system(conn))
    op.drop_index("ix_referrals_case_no", table_name="referrals")
    with op.batch_alter_table("referrals") as batch:
        batch.drop_column("case_no")
        # The default only filled the rows there were; the ledger always writes numbers.
        batch.alter_column("numbers", existing_type=JSON, server_default=None)


def _case_no_system() -> str | None:
    """The system named by ``-x case_no_system=…`` or the config's attributes, if any."""
    given = context.get_x_argument(as_dictionary=True).get("case_no_system")
    return given or context.config.attributes.get("case_no_system")


def downgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column("case_no", sa.String(100)))
    op.create_index("ix_referrals_case_no", "referrals", ["case_no"])
    system = _case_no_system()
    if system is not None:
        n = _numbers.c
        number = (
            sa.select(n.number)
            .where(n.referral_id == _referrals.c.referral_id, n.system == system)
            .scalar_subquery()
        )
        op.get_bind().execute(sa.update(_referrals).values(case_no=number))
    op.drop_index("ix_referral_numbers_system_number", table_name="referral_numbers")
    op.drop_index("ix_referral_numbers_number", table_name="referral_numbers")
    op.drop_table("referral_numbers")
    with op.batch_alter_table("referrals") as batch:
        batch.drop_column("numbers")
