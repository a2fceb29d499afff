"""What the 12345 intake writes in the ledger for orders in an unusual first state, so
that the 12345 side never makes a call 12345 would refuse."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_poller import order

from bridge.mapping import MappingTables
from bridge.partners.hotline12345.plan import WITHDRAWN, plan_12345
from bridge.partners.hotline12345.side import SIGNED_OUTSIDE, Intake12345
from bridge.store import Store

READ_AT = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = await Store.connect(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield store
    await store.aclose()


def intake() -> Intake12345:
    return Intake12345(unit_code="BJZGH", tables=MappingTables.default())


@pytest.mark.parametrize("status", ["20", "25"])
async def test_an_order_first_seen_signed_is_recorded_as_signed(store, status: str) -> None:  # type: ignore[no-untyped-def]
    async with store.begin() as tx:
        taken = await intake().take("dispatched", order("BJ-1", orderStatus=status), tx, READ_AT)
        assert taken is not None and taken.forward
        sign = await tx.get_action("12345:BJ-1", "12345", "sign")
    assert sign is not None and sign.outcome == SIGNED_OUTSIDE


async def test_an_order_first_seen_unsigned_is_left_to_sign(store) -> None:  # type: ignore[no-untyped-def]
    async with store.begin() as tx:
        await intake().take("dispatched", order("BJ-2"), tx, READ_AT)
        # later it is signed (by the bridge or in the UI): still nothing recorded here
        await intake().take(
            "dispatched", order("BJ-2", orderStatus="20", updateTime="2026-11-29 10:05:00"),
            tx, READ_AT,
        )
        assert await tx.get_action("12345:BJ-2", "12345", "sign") is None


async def test_a_withdrawn_order_stops_every_12345_action(store) -> None:  # type: ignore[no-untyped-def]
    async with store.begin() as tx:
        await intake().take("dispatched", order("BJ-3"), tx, READ_AT)
        await intake().take(
            "dispatched", order("BJ-3", orderStatus="70", updateTime="2026-11-29 10:05:00"),
            tx, READ_AT,
        )
        done = await tx.action_keys("12345:BJ-3", "12345")
    assert WITHDRAWN in done


def test_the_planner_plans_nothing_for_a_withdrawn_order() -> None:
    from test_planner import ORDER_NO, case, from_case

    closed = from_case(case(status="closed"))  # the union closed it on `withdrawn`
    plan = plan_12345(closed, frozenset({WITHDRAWN}), order_no=ORDER_NO, handler="h",
                      tables=MappingTables.default())
    assert plan == []
