"""The applier records the mapping version and the attempt with every action and parked
snapshot, plans a replay marked with another version with that version's tables, and
counts actions, retries and parkings in its engine metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Action, ActionResult, FeedPage
from adapters.errors import Rejected, TransientError
from adapters.retry import RetryPolicy
from bridge.engine.applier import Applier
from bridge.engine.intake import REPLAY_HEADER
from bridge.engine.metrics import EngineMetrics
from bridge.engine.versions import MAPPING_HEADER, record_tables
from bridge.mapping import MappingTables, case_to_referral
from bridge.partners.hotline12345.side import Apply12345
from bridge.store import Store
from bridge.transport import Outcome, Verdict
from bridge.transport.delivery import Delivery
from schemas.canonical import Referral
from schemas.hotline12351 import Case

ORIGINAL = MappingTables.default()  # legal_aid → 12345 category 0299
CURRENT = MappingTables.from_config({"service_type_to_category": {"legal_aid": "0213"}})
CASE_NO = "12351-2026-0000042"


class FakeHotline12345:
    """Records what it is asked to do; scripted failures."""

    system = "12345"
    feeds = ("dispatched",)

    def __init__(self) -> None:
        self.calls: list[Action] = []
        self.fail: Exception | None = None

    async def read_feed(self, feed: str, position: str | None) -> FeedPage[Any]:
        return FeedPage([], position or "")

    async def fetch(self, native_id: str) -> Any:
        raise AssertionError("not read in these tests")

    async def perform(self, action: Action) -> ActionResult:
        self.calls.append(action)
        if self.fail is not None:
            raise self.fail
        return ActionResult(native_id="BJ12345-20261201-000009")

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...


def transferred() -> Referral:
    """A 12351 case an agent transferred to 12345 (legal aid, no category of its own)."""
    case = Case.model_validate(
        {
            "id": "c42",
            "case_no": CASE_NO,
            "channel": "phone",
            "created_at": "2026-12-01T09:30:00+08:00",
            "updated_at": "2026-12-01T10:00:00+08:00",
            "version": 3,
            "district_code": "110105",
            "service_type": "legal_aid",
            "priority": "normal",
            "subject": "拖欠工资",
            "status": "transferred",
            "transfer": {"to": "12345", "reason": "劳动监察"},
        }
    )
    return case_to_referral(case, read_at=datetime.now(UTC), tables=ORIGINAL)


def delivery(ref: Referral, *, attempt: int = 0, **headers: Any) -> Delivery:
    return Delivery(
        body=ref.model_dump_json().encode(),
        routing_key="to.12345.normal.0",
        message_id=ref.message_id,
        headers=headers,
        attempt=attempt,
        redelivered=False,
    )


@dataclass
class Setup:
    store: Store
    hotline: FakeHotline12345
    applier: Applier
    metrics: EngineMetrics

    def count(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    store = await Store.connect(f"sqlite:///{tmp_path / 'ledger.db'}")
    hotline = FakeHotline12345()
    metrics = EngineMetrics()
    applier = Applier(
        store=store,
        hotline=hotline,
        policy=Apply12345(hotline=hotline, handler="h", tables=CURRENT),
        retry_policy=RetryPolicy.no_wait(),
        metrics=metrics,
    )
    yield Setup(store, hotline, applier, metrics)
    await store.aclose()


async def test_an_action_records_the_mapping_version_and_its_attempt(setup: Setup) -> None:
    ref = transferred()
    assert await setup.applier.handle(delivery(ref, attempt=2)) is Outcome.ACK
    [call] = setup.hotline.calls
    assert call.kind == "create_order" and call.body.category == "0213"  # current tables
    async with setup.store.begin() as tx:
        action = await tx.get_action(ref.referral_id, "12345", "create_order")
    assert action is not None
    assert action.detail["mapping"] == CURRENT.version and action.detail["attempt"] == 3
    [event] = [e for e in await setup.store.timeline(ref.referral_id) if e.kind == "create_order"]
    assert event.detail["mapping"] == CURRENT.version and event.detail["attempt"] == 3
    assert event.detail["outcome"] == "applied"
    labels = {"system": "12345", "kind": "create_order", "outcome": "applied"}
    assert setup.count("hotline_bridge_actions_total", **labels) == 1


async def test_a_replay_marked_with_the_original_version_is_planned_with_its_tables(
    setup: Setup,
) -> None:
    await record_tables(setup.store, ORIGINAL)
    ref = transferred()
    headers = {MAPPING_HEADER: ORIGINAL.version, REPLAY_HEADER: True}
    assert await setup.applier.handle(delivery(ref, **headers)) is Outcome.ACK
    [call] = setup.hotline.calls
    assert call.body.category == "0299"  # the original tables' row, not the current one
    async with setup.store.begin() as tx:
        action = await tx.get_action(ref.referral_id, "12345", "create_order")
    assert action is not None and action.detail["mapping"] == ORIGINAL.version


async def test_a_replay_naming_a_version_the_store_lacks_is_parked(setup: Setup) -> None:
    ref = transferred()
    outcome = await setup.applier.handle(delivery(ref, **{MAPPING_HEADER: "00000000deadbeef"}))
    assert outcome is Outcome.ACK and setup.hotline.calls == []
    [letter] = await setup.store.list_dead_letters(status="parked")
    assert letter.stage == "apply" and letter.field == "mapping"
    assert "00000000deadbeef" in letter.reason and letter.payload["mapping"] == "00000000deadbeef"
    labels = {"system": "12345", "stage": "apply", "reason": "unknown_mapping"}
    assert setup.count("hotline_bridge_parked_total", **labels) == 1


async def test_a_refusal_parks_the_snapshot_with_its_version_and_attempts(setup: Setup) -> None:
    setup.hotline.fail = Rejected("12345", "40001 category not allowed")
    ref = transferred()
    assert await setup.applier.handle(delivery(ref, attempt=1)) is Outcome.ACK
    [letter] = await setup.store.list_dead_letters(status="parked")
    assert letter.payload["mapping"] == CURRENT.version and letter.attempts == 2
    timeline = {e.kind: e.detail for e in await setup.store.timeline(ref.referral_id)}
    assert timeline["parked"]["mapping"] == CURRENT.version
    assert timeline["create_order"]["outcome"] == "parked"
    assert timeline["create_order"]["attempt"] == 2
    labels = {"system": "12345", "kind": "create_order", "outcome": "parked"}
    assert setup.count("hotline_bridge_actions_total", **labels) == 1
    labels = {"system": "12345", "stage": "apply", "reason": "refused"}
    assert setup.count("hotline_bridge_parked_total", **labels) == 1


async def test_a_transient_failure_is_counted_as_a_retry(setup: Setup) -> None:
    setup.hotline.fail = TransientError("12345", "502 bad gateway")
    verdict = await setup.applier.handle(delivery(transferred()))
    assert isinstance(verdict, Verdict) and verdict.outcome is Outcome.RETRY
    assert setup.count("hotline_bridge_retries_total", system="12345") == 1
    assert await setup.store.list_dead_letters() == []
