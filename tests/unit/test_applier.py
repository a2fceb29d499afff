"""The applier against a real SQLite store and an in-memory hotline: stale and repeated
snapshots do nothing, a lost response is settled by reading, refusals are parked."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Action, ActionResult, FeedPage
from adapters.errors import StatusNotAllowed, TransientError
from adapters.retry import RetryPolicy
from bridge.engine.applier import Applier
from bridge.mapping import MappingTables, case_to_referral
from bridge.partners.hotline12345.side import Apply12345
from bridge.store import Store
from bridge.transport import Outcome, Verdict
from schemas.hotline12345 import Order
from schemas.hotline12351 import Case

ORDER_NO = "BJ12345-20261129-000001"
TABLES = MappingTables.default()


class FakeHotline12345:
    """Just enough 12345: orders by number, a call log, scripted failures."""

    system = "12345"
    feeds = ("dispatched",)

    def __init__(self) -> None:
        self.status = "10"
        self.calls: list[str] = []
        self.fail_next: list[Exception] = []

    async def read_feed(self, feed: str, position: str | None) -> FeedPage[Any]:
        return FeedPage([], position or "")

    async def fetch(self, native_id: str) -> Order:
        return Order.model_validate(
            {
                "orderNo": native_id,
                "category": "0202",
                "urgency": "1",
                "orderStatus": self.status,
                "updateTime": "2026-11-29 10:00:00",
            }
        )

    async def perform(self, action: Action) -> ActionResult:
        self.calls.append(action.kind)
        if self.fail_next:
            raise self.fail_next.pop(0)
        if action.kind == "sign":
            if self.status != "10":
                raise StatusNotAllowed("12345", "40002 status does not allow")
            self.status = "20"
        return ActionResult(native_id=action.target or "")

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...


def snapshot(version: int, **changes: Any):  # type: ignore[no-untyped-def]
    case = Case.model_validate(
        {
            "id": "c1",
            "case_no": "12351-2026-0000001",
            "channel": "partner",
            "created_at": "2026-11-29T09:30:00+08:00",
            "updated_at": "2026-11-29T10:00:00+08:00",
            "version": version,
            "service_type": "legal_aid",
            "priority": "normal",
            "subject": "拖欠工资",
            "status": "received",
            "origin": {
                "system": "12345",
                "external_no": ORDER_NO,
                "deadline": "2026-12-06T09:20:03+08:00",
            },
            **changes,
        }
    )
    return case_to_referral(case, read_at=datetime.now(UTC), tables=TABLES)


def applier_for(store: Store, hotline: FakeHotline12345) -> Applier:
    return Applier(
        store=store,
        hotline=hotline,
        policy=Apply12345(hotline=hotline, handler="h", tables=TABLES),
        retry_policy=RetryPolicy.no_wait(),
    )


@pytest.fixture
async def setup(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = await Store.connect(f"sqlite:///{tmp_path / 'ledger.db'}")
    hotline = FakeHotline12345()
    yield store, hotline, applier_for(store, hotline)
    await store.aclose()


async def test_repeated_and_stale_snapshots_do_nothing(setup) -> None:  # type: ignore[no-untyped-def]
    store, hotline, applier = setup
    assert await applier.apply(snapshot(3)) is Outcome.ACK
    assert hotline.calls == ["sign"]
    await applier.apply(snapshot(3))  # repeated
    await applier.apply(snapshot(2))  # stale
    assert hotline.calls == ["sign"]
    assert await store.list_dead_letters() == []


async def test_a_lost_response_is_settled_by_reading_the_order(setup) -> None:  # type: ignore[no-untyped-def]
    """The sign took effect but its answer was lost; the retry meets 40002, reads the
    order, sees it signed, and records the action as already applied."""
    store, hotline, applier = setup
    hotline.status = "20"  # signed by the first, unanswered attempt
    assert await applier.apply(snapshot(1)) is Outcome.ACK
    async with store.begin() as tx:
        action = await tx.get_action(f"12345:{ORDER_NO}", "12345", "sign")
    assert action is not None and action.outcome == "already_applied"
    assert await store.list_dead_letters() == []


async def test_transient_failures_go_back_to_the_broker(setup) -> None:  # type: ignore[no-untyped-def]
    _store, hotline, applier = setup
    hotline.fail_next = [TransientError("12345", "502")] * 3
    verdict = await applier.apply(snapshot(1))
    assert isinstance(verdict, Verdict) and verdict.outcome is Outcome.RETRY
    assert hotline.calls == ["sign"] * 3  # the policy's three attempts, then the broker
    assert await applier.apply(snapshot(1)) is Outcome.ACK  # same version, not stale yet
    assert hotline.status == "20"


async def test_a_refused_return_is_parked_once_with_the_reason(setup) -> None:  # type: ignore[no-untyped-def]
    store, hotline, applier = setup
    await applier.apply(snapshot(1))
    hotline.fail_next = [StatusNotAllowed("12345", "40002 return later than 24 h")]
    rejected = snapshot(2, status="rejected", rejection_reason="非工会职责")
    assert await applier.apply(rejected) is Outcome.ACK
    [letter] = await store.list_dead_letters(status="parked")
    assert "return" in letter.reason and ORDER_NO in letter.reason and "24 h" in letter.reason
    await applier.apply(snapshot(3, status="rejected", rejection_reason="非工会职责"))
    assert hotline.calls.count("return") == 1  # parked actions are not retried by themselves


class LosingHotline(FakeHotline12345):
    """Its next sign takes effect but the answer is lost (a gateway timeout)."""

    def __init__(self) -> None:
        super().__init__()
        self.lose_next = True

    async def perform(self, action: Action) -> ActionResult:
        result = await super().perform(action)
        if self.lose_next:
            self.lose_next = False
            raise TransientError("12345", "504 after sending", ambiguous=True)
        return result


async def test_after_a_lost_answer_the_order_is_read_before_signing_again(tmp_path: Path) -> None:
    """No second sign (12345 would refuse it with 40002): the retry reads the order."""
    store = await Store.connect(f"sqlite:///{tmp_path / 'ledger.db'}")
    hotline = LosingHotline()
    applier = applier_for(store, hotline)
    try:
        assert await applier.apply(snapshot(1)) is Outcome.ACK
        assert hotline.calls == ["sign"]  # one sign; the retry read the order instead
        async with store.begin() as tx:
            action = await tx.get_action(f"12345:{ORDER_NO}", "12345", "sign")
        assert action is not None and action.outcome == "already_applied"
    finally:
        await store.aclose()
