"""What the 12385 side makes of its `updates` feed and of the union's snapshots, on a
real (SQLite) ledger: each update once, the union's own posts not taken back, a
withdrawal that stops every 12385 call, reopen rounds, the first snapshot of a request
the bridge created queued by the apply side."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.engine.intake import Intake, record_intake
from bridge.errors import MappingError
from bridge.mapping import MappingTables
from bridge.partners.open311.side import WITHDRAWN, Apply385, Intake385
from bridge.store import Store, Tx
from bridge.transport import Topology
from schemas.canonical import Caller, Lifecycle, Priority, Referral, Transfer
from schemas.open311 import UpdateRecord

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TOPOLOGY = Topology(namespace="t-open311", targets=("12351", "12385"))
REQUEST = {
    "service_request_id": "2026000007",
    "status": "open",
    "service_code": "DP-RIGHTS",
    "description": "工资被拖欠\n单位拖欠三个月工资。",
    "agency_responsible": "12351",
    "requested_datetime": T0.isoformat(),
    "last_name": "张",
    "first_name": "伟",
    "phone": "13900001111",
    "attributes": {"confidential": "false"},
}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.connect(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield store
    await store.aclose()


def intake() -> Intake385:
    return Intake385(system="12385", tables=MappingTables.default())


def record(update_id: str, status: str, text: str = "", *, with_request: bool = False) -> Any:
    update = {
        "update_id": update_id,
        "service_request_id": "2026000007",
        "status": status,
        "description": text,
        "updated_datetime": (T0 + timedelta(minutes=int(update_id[1:]))).isoformat(),
    }
    return UpdateRecord.model_validate(
        {"update": update, "request": REQUEST if with_request else None}
    )


async def take(tx: Tx, item: Any) -> Intake | None:
    taken = await intake().take("updates", item, tx, T0)
    if taken is not None:
        await record_intake(tx, TOPOLOGY, taken)
    return taken


async def test_a_referral_is_taken_once_however_often_it_is_read(store: Store) -> None:
    async with store.begin() as tx:
        first = await take(tx, record("u1", "internal_referral", with_request=True))
        again = await take(tx, record("u1", "internal_referral", with_request=True))
    assert first is not None and first.referral.state is Lifecycle.DELIVERED
    assert first.to == "12351" and again is None


async def test_the_unions_own_posts_are_not_taken_back(store: Store) -> None:
    async with store.begin() as tx:
        await take(tx, record("u1", "internal_referral", with_request=True))
        assert await take(tx, record("u2", "in_progress")) is None
        assert await take(tx, record("u3", "fixed", "已答复")) is None


async def test_reopens_count_rounds_and_a_cancel_stops_every_12385_call(store: Store) -> None:
    async with store.begin() as tx:
        await take(tx, record("u1", "internal_referral", with_request=True))
        reopened = await take(tx, record("u2", "reopen", "不满意"))
        cancelled = await take(tx, record("u3", "cancelled", "撤回"))
        done = await tx.action_keys("12385:2026000007", "12385")
    assert reopened is not None and cancelled is not None
    assert (reopened.referral.reopen_count, reopened.referral.reopen_reason) == (1, "不满意")
    assert (reopened.referral.source_version, cancelled.referral.source_version) == (2, 3)
    assert cancelled.referral.state is Lifecycle.WITHDRAWN
    assert cancelled.referral.caller == Caller(name="张伟", phone="13900001111")
    assert WITHDRAWN in done


async def test_updates_on_requests_that_are_not_the_bridges_are_ignored(store: Store) -> None:
    async with store.begin() as tx:
        assert await take(tx, record("u1", "fixed", "答复")) is None


async def test_a_referral_whose_request_is_gone_does_not_map(store: Store) -> None:
    async with store.begin() as tx:
        with pytest.raises(MappingError):
            await take(tx, record("u1", "internal_referral"))


def transferred_case() -> Referral:
    return Referral(
        referral_id="12351:12351-2026-0000042",
        origin="12351",
        source="12351",
        target="12385",
        source_version=3,
        source_no="12351-2026-0000042",
        read_at=T0,
        state=Lifecycle.DELIVERED,
        native_status="transferred",
        classification={"12351": "skills"},
        priority=Priority.NORMAL,
        caller=Caller(name="王小明", phone="13812345678"),
        subject="就业咨询",
        transfer=Transfer(to="12385"),
    )


async def test_a_created_request_is_told_to_the_union_and_its_staff_updates_follow(
    store: Store,
) -> None:
    queued: list[Intake] = []

    async def publish(tx: Tx, made: Intake) -> None:
        queued.append(made)

    apply = Apply385(
        system="12385",
        hotline=None,
        tables=MappingTables.default(),
        publish=publish,  # type: ignore[arg-type]
    )
    case = transferred_case()
    async with store.begin() as tx:
        (step,) = await apply.plan(case, frozenset(), tx)
        assert step.kind == "create_request" and step.body.service_code == "DP-EMPLOY"  # type: ignore[attr-defined]
        await apply.after_create(case, "2026000007", tx)
        assert await apply.plan(case, frozenset(), tx) == []  # created once
        fixed = await take(tx, record("u4", "fixed", "已登记就业"))
    (first,) = queued
    assert (first.referral.native_status, first.referral.numbers) == (
        "open",
        {"12385": "2026000007"},
    )
    assert fixed is not None and fixed.referral.referral_id == case.referral_id
    assert fixed.referral.reply is not None and fixed.referral.reply.text == "已登记就业"
    assert fixed.referral.source_version == 2
