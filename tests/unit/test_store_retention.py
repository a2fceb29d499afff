"""Outbox retries and the store's retention, on SQLite; the same bodies run on PostgreSQL.

:class:`RetentionBehaviour` holds what both backends share (as
``tests/unit/test_store.py`` does); ``tests/integration/test_store_postgres.py`` runs it
on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.engine.retention import Retention, RetentionPolicy
from bridge.store import DeadLetterIn, OutboxMessage, Store

START = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
DAY_S = 86_400
POLICY = RetentionPolicy(
    outbox_s=7 * DAY_S, dead_letters_s=30 * DAY_S, reconciliations_s=30 * DAY_S, leases_s=DAY_S
)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def message(referral_id: str, n: int = 0) -> OutboxMessage:
    return OutboxMessage(referral_id, f"to.12351.normal.{n % 2}", f'{{"n": {n}}}'.encode())


def letter(**changes: Any) -> DeadLetterIn:
    values: dict[str, Any] = {
        "system": "12345",
        "stage": "intake",
        "reason": "order BJ1: unknown category code 'X9' in field category",
        "payload": {"orderNo": "BJ1"},
        "referral_id": "12345:BJ1",
    }
    return DeadLetterIn(**{**values, **changes})


async def outbox_ids(store: Store) -> set[int]:
    async with store.begin() as tx:
        result = await tx.connection.exec_driver_sql("SELECT id FROM outbox")
        return {row[0] for row in result}


class RetentionBehaviour:
    """Behaviour every backend shares; subclasses provide ``db_url``."""

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    async def store(self, db_url: str, clock: FakeClock) -> AsyncIterator[Store]:
        store = await Store.connect(db_url, clock=clock)
        yield store
        await store.aclose()

    async def test_a_deferred_message_is_not_pending_until_its_next_attempt(
        self, store: Store, clock: FakeClock
    ) -> None:
        async with store.begin() as tx:
            first = await tx.enqueue(message("r1", n=1))
            await tx.enqueue(message("r2", n=2))
        (row, _) = await store.outbox_pending(10)
        async with store.begin() as tx:
            assert await tx.defer_outbox(row, 30)
            assert not await tx.defer_outbox(row, 30), "a stale read changes nothing"

        assert [m.referral_id for m in await store.outbox_pending(10)] == ["r2"]
        clock.advance(30)
        again = await store.outbox_pending(10)
        assert [(m.id, m.attempts) for m in again] == [(first, 1), (first + 1, 0)]

    async def test_parking_a_message_moves_it_to_the_dead_letters_once(self, store: Store) -> None:
        async with store.begin() as tx:
            row_id = await tx.enqueue(message("r1", n=1))
        parked = letter(stage="publish", referral_id="r1", payload={"outbox_id": row_id})
        async with store.begin() as tx:
            letter_id = await tx.park_outbox(row_id, parked)
            assert await tx.park_outbox(row_id, parked) is None
        assert await store.outbox_pending(10) == []
        assert (await store.stats())["outbox_backlog"] == 0
        stored = await store.get_dead_letter(letter_id or 0)
        assert stored is not None
        assert (stored.stage, stored.status, stored.payload) == (
            "publish",
            "parked",
            {"outbox_id": row_id},
        )

    async def test_purge_deletes_published_messages_past_retention_and_nothing_else(
        self, store: Store, clock: FakeClock
    ) -> None:
        async with store.begin() as tx:
            old_published = [await tx.enqueue(message(f"p{n}", n=n)) for n in range(5)]
            never_published = await tx.enqueue(message("u", n=9))
        await store.mark_published(old_published)
        clock.advance(8 * DAY_S)
        async with store.begin() as tx:
            recent = await tx.enqueue(message("recent", n=10))
        await store.mark_published([recent])
        clock.advance(DAY_S)

        retention = Retention(store=store, policy=replace(POLICY, batch=2), clock=clock)
        counts = await retention.purge_once()

        assert counts["outbox"] == 5
        assert await outbox_ids(store) == {never_published, recent}
        assert [m.referral_id for m in await store.outbox_pending(10)] == ["u"]
        assert (await retention.purge_once())["outbox"] == 0

    async def test_purge_deletes_closed_dead_letters_past_retention_never_parked_ones(
        self, store: Store, clock: FakeClock
    ) -> None:
        async with store.begin() as tx:
            parked, replayed, discarded, recent = [await tx.park(letter()) for _ in range(4)]
        await store.set_dead_letter_status(replayed, "replayed")
        await store.set_dead_letter_status(discarded, "discarded")
        clock.advance(29 * DAY_S)
        await store.set_dead_letter_status(recent, "discarded")
        clock.advance(2 * DAY_S)

        counts = await Retention(store=store, policy=POLICY).purge_once(clock.now)

        assert counts["dead_letters"] == 2
        assert [d.id for d in await store.list_dead_letters()] == [parked, recent]

    async def test_purge_deletes_finished_runs_past_retention_never_running_ones(
        self, store: Store, clock: FakeClock
    ) -> None:
        running = await store.create_reconciliation("periodic")
        old = await store.create_reconciliation("periodic")
        await store.finish_reconciliation(old, "succeeded", {})
        clock.advance(29 * DAY_S)
        recent = await store.create_reconciliation("admin")
        await store.finish_reconciliation(recent, "failed", {})
        clock.advance(2 * DAY_S)

        counts = await Retention(store=store, policy=POLICY).purge_once(clock.now)

        assert counts["reconciliation_runs"] == 1
        assert {r.id for r in await store.list_reconciliations()} == {running, recent}

    async def test_purge_deletes_leases_expired_past_retention_only(
        self, store: Store, clock: FakeClock
    ) -> None:
        assert await store.try_acquire_lease("old", "node-a", 60)
        clock.advance(2 * DAY_S)
        assert await store.try_acquire_lease("recently-expired", "node-a", 60)
        assert await store.try_acquire_lease("live", "node-b", 3 * DAY_S)
        clock.advance(3600)

        counts = await Retention(store=store, policy=POLICY).purge_once(clock.now)

        assert counts["leases"] == 1
        assert await store.leases_held_by("node-b") == ["live"]
        clock.advance(-3600)  # the remaining expired lease is still there
        assert await store.leases_held_by("node-a") == ["recently-expired"]
        assert await store.try_acquire_lease("old", "node-b", 60), "a purged lease is free"

    async def test_retention_defaults_follow_the_config(self) -> None:
        from bridge.config import StoreConfig

        policy = RetentionPolicy.from_config(StoreConfig(outbox_retention_s=60))
        assert (policy.outbox_s, policy.interval_s, policy.batch) == (60, 600, 500)
        week_s = timedelta(days=7).total_seconds()
        assert RetentionPolicy.from_config(StoreConfig()).outbox_s == week_s


class TestRetentionOnSQLite(RetentionBehaviour):
    @pytest.fixture
    def db_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/bridge.db"
