"""Replaying a dead letter with the original or the current mapping tables: a parked
record is re-mapped with the tables its letter recorded or with the node's own; a parked
snapshot goes back marked with its version for the applier; a letter that recorded no
version, or one the store does not hold, can be replayed with the current tables only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.engine.intake import park_record
from bridge.engine.replay import ReplayError, replay_dead_letter
from bridge.engine.versions import MAPPING_HEADER, record_tables
from bridge.errors import MappingError
from bridge.mapping import MappingTables, case_to_referral
from bridge.partners.hotline12351.side import Intake12351
from bridge.store import DeadLetterIn, Store
from bridge.transport import Topology
from schemas.hotline12351 import Case

READ_AT = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
TOPOLOGY = Topology(namespace="hb-unit", targets=("12345", "12351"), shards=2)
BROKEN = MappingTables.from_config({"transfer_targets": []})  # an edit that lost 12345
FIXED = MappingTables.default()


def transferred_case(case_no: str = "12351-2026-0000077") -> Case:
    return Case.model_validate(
        {
            "id": "c" + case_no[-3:],
            "case_no": case_no,
            "created_at": "2026-12-01T09:30:00+08:00",
            "updated_at": "2026-12-01T10:00:00+08:00",
            "version": 2,
            "district_code": "110105",
            "service_type": "other",
            "priority": "normal",
            "subject": "宿舍暖气不热",
            "status": "transferred",
            "transfer": {"to": "12345", "reason": "城市管理"},
        }
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.connect(f"sqlite:///{tmp_path / 'ledger.db'}")
    for tables in (BROKEN, FIXED):
        await record_tables(store, tables)
    yield store
    await store.aclose()


async def park_at_intake(store: Store, tables: MappingTables, case: Case) -> int:
    """What the poller does with a record that does not map under `tables`."""
    policy = Intake12351(tables=tables)
    async with store.begin() as tx:
        with pytest.raises(MappingError) as raised:
            await policy.take("changes", case, tx, READ_AT)
        await park_record(tx, policy, "changes", case, raised.value)
    return (await store.list_dead_letters(status="parked"))[-1].id


async def replay(store: Store, letter_id: int, mapping: Any) -> str:
    return await replay_dead_letter(
        store,
        letter_id,
        intake={"12351": Intake12351(tables=FIXED)},  # the node's tables now
        topology=TOPOLOGY,
        now=READ_AT,
        mapping=mapping,
    )


async def test_a_record_parked_at_intake_names_the_tables_that_refused_it(store: Store) -> None:
    letter_id = await park_at_intake(store, BROKEN, transferred_case())
    letter = await store.get_dead_letter(letter_id)
    assert letter is not None and letter.payload["mapping"] == BROKEN.version
    assert letter.field == "transfer.to"


async def test_original_tables_map_the_record_as_they_did_and_park_it_again(
    store: Store,
) -> None:
    letter_id = await park_at_intake(store, BROKEN, transferred_case())
    outcome = await replay(store, letter_id, "original")
    assert "still does not map" in outcome and BROKEN.version in outcome
    assert await store.outbox_pending() == []
    [again] = await store.list_dead_letters(status="parked")
    assert again.id != letter_id and again.payload["mapping"] == BROKEN.version


async def test_current_tables_map_the_record_and_the_timeline_names_them(store: Store) -> None:
    case = transferred_case()
    letter_id = await park_at_intake(store, BROKEN, case)
    outcome = await replay(store, letter_id, "current")
    assert "queued again" in outcome
    [message] = await store.outbox_pending()
    assert MAPPING_HEADER not in message.headers  # the applier plans with its own tables
    ref = case_to_referral(case, read_at=READ_AT, tables=FIXED)
    [read] = [e for e in await store.timeline(ref.referral_id) if e.kind == "snapshot.read"]
    assert read.detail["mapping"] == FIXED.version
    assert await store.list_dead_letters(status="parked") == []


async def apply_letter(store: Store, payload_mapping: str | None) -> int:
    ref = case_to_referral(transferred_case(), read_at=READ_AT, tables=FIXED)
    payload: dict[str, Any] = {"snapshot": ref.model_dump(mode="json")}
    if payload_mapping is not None:
        payload["mapping"] = payload_mapping
    async with store.begin() as tx:
        return await tx.park(
            DeadLetterIn(
                system="12345",
                stage="apply",
                reason="12345 refused create_order",
                payload=payload,
                referral_id=ref.referral_id,
            )
        )


@pytest.mark.parametrize(
    ("mapping", "header"),
    [
        pytest.param("original", BROKEN.version, id="original-marks-its-version"),
        pytest.param("current", None, id="current-leaves-it-to-the-applier"),
    ],
)
async def test_a_parked_snapshot_goes_back_marked_with_the_tables_to_plan_it_with(
    store: Store, mapping: str, header: str | None
) -> None:
    letter_id = await apply_letter(store, BROKEN.version)
    await replay(store, letter_id, mapping)
    [message] = await store.outbox_pending()
    assert message.headers.get(MAPPING_HEADER) == header
    assert message.headers["x-bridge-replay"] is True


async def test_a_letter_without_a_recorded_version_replays_with_current_tables_only(
    store: Store,
) -> None:
    letter_id = await apply_letter(store, None)
    with pytest.raises(ReplayError, match="current tables only"):
        await replay(store, letter_id, "original")
    letter = await store.get_dead_letter(letter_id)
    assert letter is not None and letter.status == "parked"
    assert "queued again" in await replay(store, letter_id, "current")


async def test_a_version_the_store_does_not_hold_cannot_be_replayed_as_original(
    store: Store,
) -> None:
    letter_id = await apply_letter(store, "00000000deadbeef")
    with pytest.raises(ReplayError, match="00000000deadbeef is not recorded"):
        await replay(store, letter_id, "original")
    assert await store.outbox_pending() == []
