"""Every system's number of a referral: merged on upsert like ``ids``, found through
the ``referral_numbers`` index for any system, and carried over from the old
``case_no`` column by migration 0005. Each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from bridge.store import ReferralRow, Store
from bridge.store.browse import _numbered
from bridge.store.engine import alembic_config, to_async_url
from bridge.store.tables import JSONType, UTCDateTime, metadata, referral_numbers

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def referral(numbers: dict[str, str], **changes: Any) -> ReferralRow:
    values: dict[str, Any] = {
        "referral_id": "12345:BJ1",
        "origin_system": "12345",
        "ids": {"12345": "BJ1"},
        "state": "dispatched",
        "numbers": numbers,
    }
    return ReferralRow(**(values | changes))


async def run(url: str, work: Any, *args: Any) -> Any:
    """`work(sync_connection, *args)` in one transaction of a plain engine on `url`."""
    engine = create_async_engine(to_async_url(url))
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(work, *args)
    finally:
        await engine.dispose()


def index_rows(conn: Connection) -> set[tuple[str, str, str]]:
    n = referral_numbers.c
    return {tuple(row) for row in conn.execute(sa.select(n.referral_id, n.system, n.number))}


# --- the ledger --------------------------------------------------------------------------


async def test_numbers_are_merged_on_upsert_the_new_entry_winning_per_system(
    store: Store, url: str
) -> None:
    async with store.begin() as tx:
        await tx.upsert_referral(referral({"12345": "BJ1"}))
    async with store.begin() as tx:
        await tx.upsert_referral(referral({"12351": "12351-2026-0000001"}))
    async with store.begin() as tx:
        stored = await tx.upsert_referral(referral({"12345": "BJ1-renumbered"}))
    async with store.begin() as tx:
        await tx.upsert_referral(referral({}, state="signed"))

    expected = {"12345": "BJ1-renumbered", "12351": "12351-2026-0000001"}
    assert stored.numbers == expected
    read = await store.get_referral("12345:BJ1")
    assert read is not None and (read.numbers, read.state) == (expected, "signed")
    assert await run(url, index_rows) == {
        ("12345:BJ1", system, number) for system, number in expected.items()
    }
    found = await store.find_referral("12351", "12351-2026-0000001")
    assert found is not None and found.referral_id == "12345:BJ1"


async def test_a_third_systems_number_finds_the_referral_through_the_index(
    store: Store,
) -> None:
    async with store.begin() as tx:
        await tx.upsert_referral(referral({"12385": "GZ-2026-77"}, ids={"12385": "g-uuid"}))
        await tx.upsert_referral(
            referral({"12385": "GZ-2026-78"}, referral_id="12345:BJ2", ids={"12345": "BJ2"})
        )

    found = await store.find_referral("12385", "GZ-2026-77")
    assert found is not None and found.referral_id == "12345:BJ1"
    assert found.numbers == {"12385": "GZ-2026-77"}
    assert await store.find_referral("12351", "GZ-2026-77") is None  # another system's
    assert [r.referral_id for r in await store.numbered("GZ-2026-78")] == ["12345:BJ2"]
    assert await store.numbered("GZ-2026-79") == []
    by_id = await store.find_referral("12385", "g-uuid")  # a native id still finds it
    assert by_id is not None and by_id.referral_id == "12345:BJ1"


async def test_the_number_lookups_read_the_index_not_the_table(store: Store, url: str) -> None:
    """The plans of both lookups name an index of ``referral_numbers``."""
    n = referral_numbers.c
    lookups = {
        "by system": _numbered(n.system == "12385", n.number == "GZ-2026-77").limit(1),
        "by any system": _numbered(n.number == "GZ-2026-77"),
    }

    def plans(conn: Connection) -> dict[str, str]:
        out = {}
        for what, query in lookups.items():
            sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a table of no rows
                plan = conn.exec_driver_sql(f"EXPLAIN {sql}").scalars()
            else:
                plan = (row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
            out[what] = "\n".join(plan)
        return out

    for what, plan in (await run(url, plans)).items():
        assert "ix_referral_numbers_" in plan, (what, plan)


async def test_a_number_set_to_none_is_no_longer_found(store: Store) -> None:
    """The JSON and the index agree: a ``None`` number finds nothing any more."""
    async with store.begin() as tx:
        await tx.upsert_referral(referral({"A": "a-1", "B": "b-1"}))
    async with store.begin() as tx:
        stored = await tx.upsert_referral(referral({"A": None}))  # type: ignore[dict-item]

    assert stored.numbers == {"A": None, "B": "b-1"}
    assert await store.find_referral("A", "a-1") is None
    assert [r.referral_id for r in await store.numbered("b-1")] == ["12345:BJ1"]


async def test_concurrent_upserts_lose_no_number(store: Store) -> None:
    async def write(n: int) -> None:
        async with store.begin() as tx:
            await tx.upsert_referral(referral({f"system-{n}": f"no-{n}"}))
            await asyncio.sleep(0)

    await asyncio.gather(*(write(n) for n in range(20)))

    stored = await store.get_referral("12345:BJ1")
    assert stored is not None
    assert stored.numbers == {f"system-{n}": f"no-{n}" for n in range(20)}
    for n in (0, 19):
        found = await store.find_referral(f"system-{n}", f"no-{n}")
        assert found is not None and found.referral_id == "12345:BJ1"


# --- migration 0005 ----------------------------------------------------------------------

_at_0004 = sa.table(
    "referrals",
    sa.column("referral_id", sa.String),
    sa.column("origin_system", sa.String),
    sa.column("ids", JSONType),
    sa.column("case_no", sa.String),
    sa.column("early_warning", sa.Boolean),
    sa.column("state", sa.String),
    sa.column("last_snapshot", JSONType),
    sa.column("created_at", UTCDateTime),
    sa.column("updated_at", UTCDateTime),
)


def alembic(conn: Connection, direction: str, revision: str, attributes: dict[str, str]) -> None:
    config = alembic_config()
    config.attributes["connection"] = conn
    config.attributes.update(attributes)
    getattr(command, direction)(config, revision)


async def at_0004(url: str, rows: list[tuple[str, str | None, dict[str, Any] | None]]) -> None:
    """A ledger at revision 0004 holding `(referral_id, case_no, snapshot numbers)`
    rows (``None`` numbers: no snapshot at all, SQL ``NULL``)."""

    def fill(conn: Connection) -> None:
        alembic(conn, "upgrade", "0004", {})
        for referral_id, case_no, numbers in rows:
            snapshot: Any = sa.null() if numbers is None else {"numbers": numbers, "v": 1}
            origin = referral_id.partition(":")[0]
            conn.execute(
                sa.insert(_at_0004).values(
                    referral_id=referral_id,
                    origin_system=origin,
                    ids={},
                    case_no=case_no,
                    early_warning=False,
                    state="delivered",
                    last_snapshot=snapshot,
                    created_at=T0,
                    updated_at=T0,
                )
            )

    await run(url, fill)


async def numbers_after_upgrade(url: str) -> dict[str, dict[str, str]]:
    store = await Store.connect(url)  # migrates to head, as a node does at start
    try:
        rows = await store.list_referrals(limit=100)
        return {row.referral_id: row.numbers for row in rows}
    finally:
        await store.aclose()


def schema_diff(conn: Connection) -> list[Any]:
    return compare_metadata(MigrationContext.configure(conn), metadata)


async def test_the_upgrade_copies_snapshot_numbers_and_the_case_no_of_every_referral(
    url: str,
) -> None:
    """case_no's system is learnt from the rows whose snapshot number equals it, so a
    referral with no snapshot (only applied on this node) keeps its number too."""
    await at_0004(
        url,
        [
            ("12345:BJ1", "12351-2026-0000001", {"12345": "BJ1", "12351": "12351-2026-0000001"}),
            ("12345:BJ2", "12351-2026-0000002", None),
            ("12345:BJ3", None, {"12345": "BJ3"}),
            ("12351:12351-2026-0000004", "12351-2026-0000004", {"12351": "12351-2026-0000004"}),
            ("12345:BJ5", None, None),
        ],
    )

    assert await numbers_after_upgrade(url) == {
        "12345:BJ1": {"12345": "BJ1", "12351": "12351-2026-0000001"},
        "12345:BJ2": {"12351": "12351-2026-0000002"},
        "12345:BJ3": {"12345": "BJ3"},
        "12351:12351-2026-0000004": {"12351": "12351-2026-0000004"},
        "12345:BJ5": {},
    }
    assert await run(url, index_rows) == {
        ("12345:BJ1", "12345", "BJ1"),
        ("12345:BJ1", "12351", "12351-2026-0000001"),
        ("12345:BJ2", "12351", "12351-2026-0000002"),
        ("12345:BJ3", "12345", "BJ3"),
        ("12351:12351-2026-0000004", "12351", "12351-2026-0000004"),
    }
    assert await run(url, schema_diff) == []  # no case_no, its index gone, as a fresh one
    store = await Store.connect(url)
    try:
        found = await store.find_referral("12351", "12351-2026-0000002")
        assert found is not None and found.referral_id == "12345:BJ2"
    finally:
        await store.aclose()


async def test_a_case_no_of_no_single_system_is_copied_only_where_a_snapshot_shows_it(
    url: str,
) -> None:
    await at_0004(
        url,
        [
            ("A:1", "a-1", {"A": "a-1"}),
            ("B:1", "b-1", {"B": "b-1", "A": "a-9"}),
            ("C:1", "c-1", None),
        ],
    )

    assert await numbers_after_upgrade(url) == {
        "A:1": {"A": "a-1"},
        "B:1": {"B": "b-1", "A": "a-9"},
        "C:1": {},
    }


async def test_the_downgrade_restores_case_no_for_the_system_it_is_told(url: str) -> None:
    await at_0004(url, [("A:1", "b-1", {"A": "a-1", "B": "b-1"}), ("A:2", None, {"A": "a-2"})])
    await numbers_after_upgrade(url)

    def downgrade(conn: Connection, attributes: dict[str, str]) -> Any:
        alembic(conn, "downgrade", "0004", attributes)
        tables = sa.inspect(conn).get_table_names()
        indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("referrals")}
        r = _at_0004.c
        case_nos = dict(conn.execute(sa.select(r.referral_id, r.case_no)).all())
        alembic(conn, "upgrade", "head", {})
        return "referral_numbers" in tables, "ix_referrals_case_no" in indexes, case_nos

    told = await run(url, downgrade, {"case_no_system": "B"})
    assert told == (False, True, {"A:1": "b-1", "A:2": None})
    untold = await run(url, downgrade, {})
    assert untold == (False, True, {"A:1": None, "A:2": None})
