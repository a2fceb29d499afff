"""The partner each referral goes to (``referrals.target``): kept on upsert when a row
names none, written by intake (the intake's partner) and by the applier (its own system
unless the snapshot names one), and filled by migration 0006 from what the ledger held.
Each store test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bridge.engine.applier import _row
from bridge.engine.intake import Intake, record_intake
from bridge.store import ReferralRow, Store
from bridge.store.tables import JSONType, UTCDateTime
from bridge.transport import Topology
from schemas.canonical import Lifecycle, Priority, Referral
from tests.unit.test_store_numbers import alembic, run, schema_diff

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
TOPOLOGY = Topology(targets=("12345", "12351", "12385"))


def case(**changes: Any) -> Referral:
    """A union case (12351-origin) as read from 12351, naming no target."""
    values: dict[str, Any] = {
        "referral_id": "12351:C1",
        "origin": "12351",
        "source": "12351",
        "source_version": 1,
        "source_no": "C1",
        "ids": {"12351": "c-uuid-1"},
        "numbers": {"12351": "C1"},
        "read_at": T0,
        "state": Lifecycle.OPENED,
        "native_status": "received",
        "priority": Priority.NORMAL,
    }
    return Referral(**(values | changes))


# --- the ledger --------------------------------------------------------------------------


async def test_an_upsert_without_a_target_keeps_the_stored_one_and_a_new_one_wins(
    store: Store,
) -> None:
    row = ReferralRow("12351:C1", "12351", {"12351": "c-1"}, "created", target="12345")
    async with store.begin() as tx:
        first = await tx.upsert_referral(row)
    async with store.begin() as tx:
        kept = await tx.upsert_referral(ReferralRow("12351:C1", "12351", {}, "signed"))
    async with store.begin() as tx:
        await tx.upsert_referral(ReferralRow("12351:C1", "12351", {}, "signed", target="12385"))
    read = await store.get_referral("12351:C1")
    assert (first.target, kept.target, kept.state) == ("12345", "12345", "signed")
    assert read is not None and read.target == "12385"


async def test_intake_records_the_partner_it_sends_the_referral_to(store: Store) -> None:
    async with store.begin() as tx:
        await record_intake(tx, TOPOLOGY, Intake(case(), target="12385"))
    async with store.begin() as tx:  # a later read it does not forward names no partner
        await record_intake(tx, TOPOLOGY, Intake(case(source_version=2), forward=False))
    async with store.begin() as tx:
        await record_intake(tx, TOPOLOGY, Intake(case(referral_id="12351:C2", target="12345")))
    first, second = await store.get_referral("12351:C1"), await store.get_referral("12351:C2")
    assert first is not None and second is not None
    assert (first.target, second.target) == ("12385", "12345")


@pytest.mark.parametrize(
    ("snapshot", "system", "target"),
    [
        pytest.param({}, "12385", "12385", id="names-none-goes-to-the-applier"),
        pytest.param({"target": "12345"}, "12385", "12345", id="names-its-target"),
        pytest.param({"source": "12385"}, "12351", None, id="began-on-the-applier"),
    ],
)
def test_the_applier_records_its_own_system_unless_the_snapshot_names_the_target(
    snapshot: dict[str, Any], system: str, target: str | None
) -> None:
    assert _row(case(**snapshot), system).target == target


# --- migration 0006 ----------------------------------------------------------------------

_at_0005 = sa.table(
    "referrals",
    sa.column("referral_id", sa.String),
    sa.column("origin_system", sa.String),
    sa.column("ids", JSONType),
    sa.column("numbers", JSONType),
    sa.column("early_warning", sa.Boolean),
    sa.column("state", sa.String),
    sa.column("last_snapshot", JSONType),
    sa.column("created_at", UTCDateTime),
    sa.column("updated_at", UTCDateTime),
)

Row = tuple[str, dict[str, str], dict[str, Any] | None]
"""(referral_id, the row's ids, its snapshot or None: no snapshot, SQL ``NULL``)"""

CASES: list[tuple[Row, str | None]] = [
    (("12351:C1", {}, {"target": "12345", "ids": {"12385": "g-1"}}), "12345"),
    (("12351:C2", {}, {"transfer": {"to": "12385"}}), "12385"),
    (("12351:C3", {}, {"ids": {"12351": "c-3", "12385": "g-3"}}), "12385"),
    (("12345:BJ4", {}, {"numbers": {"12345": "BJ4", "12351": "C4"}}), "12351"),
    (("12345:BJ5", {"12345": "BJ5", "12351": "c-5"}, None), "12351"),  # only applied here
    (("12351:C6", {}, {"ids": {"12345": "BJ6", "12385": "g-6"}}), None),  # which one?
    (("12351:C7", {"12351": "c-7"}, None), None),  # nothing names a partner
    (("12351:C8", {}, {"target": "12351"}), None),  # never its own origin
]
MANY = 1200
"""More rows than one chunk of the migration (1000)."""


async def at_0005(url: str, rows: list[Row]) -> None:
    """A ledger at revision 0005 holding `rows`."""

    def fill(conn: Connection) -> None:
        alembic(conn, "upgrade", "0005", {})
        values = [
            {
                "referral_id": referral_id,
                "origin_system": referral_id.partition(":")[0],
                "ids": ids,
                "numbers": {},
                "early_warning": False,
                "state": "delivered",
                "last_snapshot": snapshot,
                "created_at": T0,
                "updated_at": T0,
            }
            for referral_id, ids, snapshot in rows
        ]
        with_snapshot = [v for v in values if v["last_snapshot"] is not None]
        if with_snapshot:
            conn.execute(sa.insert(_at_0005), with_snapshot)
        for value in values:  # SQL NULL, not JSON null: one statement each
            if value["last_snapshot"] is None:
                conn.execute(sa.insert(_at_0005).values(value | {"last_snapshot": sa.null()}))

    await run(url, fill)


async def targets_after_upgrade(url: str) -> dict[str, str | None]:
    store = await Store.connect(url)  # migrates to head, as a node does at start
    try:
        rows = await store.list_referrals(limit=MANY + 100)
        return {row.referral_id: row.target for row in rows}
    finally:
        await store.aclose()


async def test_the_upgrade_fills_each_target_the_ledger_shows_and_only_those(url: str) -> None:
    many: list[Row] = [
        (f"12351:M{n:04d}", {}, {"target": "12345" if n % 2 else "12385"}) for n in range(MANY)
    ]
    await at_0005(url, [row for row, _ in CASES] + many)

    targets = await targets_after_upgrade(url)

    assert {rid: targets[rid] for (rid, _, _), _ in CASES} == {
        rid: target for (rid, _, _), target in CASES
    }
    assert [targets[rid] for rid, _, _ in many] == [
        "12345" if n % 2 else "12385" for n in range(MANY)
    ]
    assert await run(url, schema_diff) == []  # the column and its index, as a fresh one


async def test_the_downgrade_drops_the_column_and_its_index(url: str) -> None:
    await at_0005(url, [row for row, _ in CASES[:2]])
    await targets_after_upgrade(url)

    def downgrade(conn: Connection) -> Any:
        alembic(conn, "downgrade", "0005", {})
        columns = {c["name"] for c in sa.inspect(conn).get_columns("referrals")}
        indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("referrals")}
        alembic(conn, "upgrade", "head", {})
        return "target" in columns, "ix_referrals_origin_target" in indexes

    assert await run(url, downgrade) == (False, False)
    assert await targets_after_upgrade(url) == {"12351:C1": "12345", "12351:C2": "12385"}
