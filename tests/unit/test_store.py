"""The store's behaviour, on SQLite; the same bodies run on PostgreSQL.

:class:`StoreBehaviour` holds every behaviour both backends must share; a
backend subclasses it and provides a ``db_url`` fixture that yields a fresh,
empty database. ``tests/integration/test_store_postgres.py`` does so for
PostgreSQL. SQLite-only behaviour (URLs, WAL, one file shared by two stores)
is tested at the end of this module.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bridge.store import (
    ActionRow,
    DeadLetterIn,
    OutboxMessage,
    ReferralRow,
    Seen,
    Store,
)
from bridge.store.engine import create_engine, head_revision, to_async_url
from bridge.store.tables import metadata


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


OpenStore = Callable[..., Awaitable[Store]]


def message(referral_id: str, *, early_warning: bool = False, n: int = 0) -> OutboxMessage:
    return OutboxMessage(
        referral_id=referral_id,
        routing_key=f"to12351.shard{n % 4}",
        body=f'{{"n": {n}}}'.encode(),
        headers={"version": n},
        early_warning=early_warning,
    )


def referral(referral_id: str = "12345:BJ1", **changes: Any) -> ReferralRow:
    values: dict[str, Any] = {
        "referral_id": referral_id,
        "origin_system": "12345",
        "ids": {"12345": "BJ1"},
        "state": "dispatched",
    }
    values.update(changes)
    return ReferralRow(**values)


def letter(**changes: Any) -> DeadLetterIn:
    values: dict[str, Any] = {
        "system": "12345",
        "stage": "intake",
        "reason": "order BJ1: unknown category code 'X9' in field category",
        "payload": {"orderNo": "BJ1"},
        "referral_id": "12345:BJ1",
        "field": "category",
    }
    values.update(changes)
    return DeadLetterIn(**values)


class StoreBehaviour:
    """Behaviour every backend shares; subclasses provide ``db_url``."""

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    async def open_store(self, db_url: str, clock: FakeClock) -> AsyncIterator[OpenStore]:
        opened: list[Store] = []

        async def _open(*, clock: Callable[[], datetime] = clock) -> Store:
            store = await Store.connect(db_url, clock=clock)
            opened.append(store)
            return store

        yield _open
        for store in opened:
            await store.aclose()

    @pytest.fixture
    async def store(self, open_store: OpenStore) -> Store:
        return await open_store()

    async def test_migrates_fresh_database_to_head_and_reconnect_is_idempotent(
        self, open_store: OpenStore
    ) -> None:
        first = await open_store()
        assert await first.schema_revision() == head_revision() is not None
        await first.mark_published([])
        async with first.begin() as tx:
            await tx.set_position("12345", "dispatched", "mark-1")
        await first.aclose()

        second = await open_store()
        assert await second.schema_revision() == head_revision()
        assert await second.get_position("12345", "dispatched") == "mark-1"

    async def test_migrated_schema_matches_the_tables_module(self, db_url: str) -> None:
        """tables.py and the migrations describe the same schema."""
        store = await Store.connect(db_url)
        await store.aclose()
        engine = create_engine(db_url)
        try:
            async with engine.connect() as conn:
                diff = await conn.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
                )
        finally:
            await engine.dispose()
        assert diff == []

    async def test_position_and_outbox_advance_only_when_the_transaction_commits(
        self, store: Store
    ) -> None:
        async with store.begin() as tx:
            await tx.set_position("12345", "dispatched", "mark-1")
            await tx.enqueue(message("12345:BJ1", n=1))

        with pytest.raises(RuntimeError, match="publish failed"):
            async with store.begin() as tx:
                await tx.set_position("12345", "dispatched", "mark-2")
                await tx.enqueue(message("12345:BJ2", n=2))
                assert await tx.get_position("12345", "dispatched") == "mark-2"
                raise RuntimeError("publish failed")

        assert await store.get_position("12345", "dispatched") == "mark-1"
        assert [m.referral_id for m in await store.outbox_pending(10)] == ["12345:BJ1"]

    async def test_outbox_gives_early_warning_first_then_oldest_and_forgets_published(
        self, store: Store, clock: FakeClock
    ) -> None:
        async with store.begin() as tx:
            for n, early in enumerate([False, True, False, True]):
                await tx.enqueue(message(f"r{n}", early_warning=early, n=n))

        pending = await store.outbox_pending(10)
        assert [m.referral_id for m in pending] == ["r1", "r3", "r0", "r2"]
        assert pending[0].body == b'{"n": 1}'
        assert pending[0].headers == {"version": 1}
        assert pending[0].created_at == clock.now
        assert [m.referral_id for m in await store.outbox_pending(2)] == ["r1", "r3"]

        assert await store.mark_published([pending[0].id, pending[2].id]) == 2
        assert await store.mark_published([pending[0].id]) == 0
        assert [m.referral_id for m in await store.outbox_pending(10)] == ["r3", "r2"]

        clock.advance(3600)
        assert await store.purge_published(clock.now - timedelta(seconds=60)) == 2
        assert (await store.stats())["outbox_backlog"] == 2

    async def test_dead_letter_lifecycle(self, store: Store, clock: FakeClock) -> None:
        async with store.begin() as tx:
            first = await tx.park(letter())
            second = await tx.park(letter(system="12351", stage="apply", referral_id=None))
        assert await store.count_dead_letters() == {"parked": 2, "replayed": 0, "discarded": 0}

        parked = await store.get_dead_letter(first)
        assert parked is not None
        assert (parked.status, parked.attempts, parked.field) == ("parked", 1, "category")
        assert parked.payload == {"orderNo": "BJ1"}
        assert [e.kind for e in await store.timeline("12345:BJ1")] == ["parked"]

        assert [d.id for d in await store.list_dead_letters(system="12351")] == [second]
        assert [d.id for d in await store.list_dead_letters(stage="intake")] == [first]
        assert [d.id for d in await store.list_dead_letters(referral_id="12345:BJ1")] == [first]
        assert [d.id for d in await store.list_dead_letters(limit=1, offset=1)] == [second]

        clock.advance(60)
        replayed = await store.set_dead_letter_status(first, "replayed")
        assert replayed is not None
        assert (replayed.status, replayed.attempts) == ("replayed", 2)
        assert replayed.updated_at == clock.now > replayed.created_at
        await store.set_dead_letter_status(second, "discarded")

        assert await store.count_dead_letters() == {"parked": 0, "replayed": 1, "discarded": 1}
        assert await store.list_dead_letters(status="parked") == []
        assert await store.set_dead_letter_status(999_999, "discarded") is None
        assert await store.get_dead_letter(999_999) is None
        with pytest.raises(ValueError, match="status"):
            await store.set_dead_letter_status(first, "lost")
        with pytest.raises(ValueError, match="stage"):
            async with store.begin() as tx:
                await tx.park(letter(stage="somewhere"))

    async def test_a_parked_event_names_the_mapping_version_of_its_letter(
        self, store: Store
    ) -> None:
        async with store.begin() as tx:
            await tx.park(letter(payload={"record": {}, "mapping": "0123456789abcdef"}))
        [event] = await store.timeline("12345:BJ1")
        assert event.kind == "parked" and event.detail["mapping"] == "0123456789abcdef"

    async def test_mapping_versions_are_written_once_and_read_back(
        self, store: Store, clock: FakeClock
    ) -> None:
        tables = {"districts": {"110101": "东城区"}, "transfer_targets": ["12345"]}
        assert await store.get_mapping_version("0123456789abcdef") is None
        assert await store.put_mapping_version("0123456789abcdef", tables) is True
        clock.advance(60)
        assert await store.put_mapping_version("0123456789abcdef", {"other": 1}) is False
        assert await store.get_mapping_version("0123456789abcdef") == tables
        assert await store.put_mapping_version("fedcba9876543210", {"other": 1}) is True
        assert await store.get_mapping_version("fedcba9876543210") == {"other": 1}

    async def test_lease_has_one_holder_until_it_expires_or_is_released(
        self, store: Store, clock: FakeClock
    ) -> None:
        assert await store.try_acquire_lease("reconciler", "node-a", ttl_s=30)
        assert not await store.try_acquire_lease("reconciler", "node-b", ttl_s=30)
        clock.advance(20)
        assert await store.try_acquire_lease("reconciler", "node-a", ttl_s=30)  # renew
        clock.advance(20)
        assert not await store.try_acquire_lease("reconciler", "node-b", ttl_s=30)
        assert await store.leases_held_by("node-a") == ["reconciler"]

        clock.advance(11)  # past the renewed expiry
        assert await store.leases_held_by("node-a") == []
        assert await store.try_acquire_lease("reconciler", "node-b", ttl_s=30)
        assert not await store.try_acquire_lease("reconciler", "node-a", ttl_s=30)

        assert not await store.release_lease("reconciler", "node-a")
        assert await store.release_lease("reconciler", "node-b")
        assert await store.try_acquire_lease("reconciler", "node-a", ttl_s=30)

    async def test_concurrent_lease_contenders_have_exactly_one_winner(self, store: Store) -> None:
        wins = await asyncio.gather(
            *(store.try_acquire_lease("shard-0", f"node-{i}", ttl_s=30) for i in range(10))
        )
        assert sum(wins) == 1

    async def test_record_action_keeps_the_first_record_of_a_key(
        self, store: Store, clock: FakeClock
    ) -> None:
        first = ActionRow("12345:BJ1", "12351", "create", "create_case", "applied", {"case": "u1"})
        async with store.begin() as tx:
            assert await tx.get_action("12345:BJ1", "12351", "create") is None
            assert await tx.record_action(first)
        clock.advance(5)
        async with store.begin() as tx:
            again = ActionRow("12345:BJ1", "12351", "create", "create_case", "already_applied")
            assert not await tx.record_action(again)
            stored = await tx.get_action("12345:BJ1", "12351", "create")

        assert stored is not None
        assert (stored.outcome, stored.detail, stored.at) == (
            "applied",
            {"case": "u1"},
            clock.now - timedelta(seconds=5),
        )
        timeline = await store.timeline("12345:BJ1")
        assert [(e.kind, e.detail["outcome"]) for e in timeline] == [("create_case", "applied")]

    async def test_upsert_referral_merges_ids_and_keeps_created_at(
        self, store: Store, clock: FakeClock
    ) -> None:
        async with store.begin() as tx:
            await tx.upsert_referral(referral(numbers={"12351": "C-1"}, last_snapshot={"v": 1}))
        created_at = clock.now
        clock.advance(60)
        async with store.begin() as tx:
            stored = await tx.upsert_referral(
                referral(ids={"12351": "case-uuid"}, state="created", early_warning=True)
            )

        assert stored == await store.get_referral("12345:BJ1")
        assert stored.ids == {"12345": "BJ1", "12351": "case-uuid"}
        assert (stored.state, stored.early_warning) == ("created", True)
        assert (stored.numbers["12351"], stored.last_snapshot) == ("C-1", {"v": 1})
        assert (stored.created_at, stored.updated_at) == (created_at, clock.now)
        assert await store.get_referral("12345:unknown") is None

    async def test_list_referrals_filters_and_pages_newest_first(
        self, store: Store, clock: FakeClock
    ) -> None:
        async with store.begin() as tx:
            for n in range(4):
                clock.advance(1)
                state = "closed" if n == 0 else "dispatched"
                await tx.upsert_referral(referral(f"12345:BJ{n}", state=state, early_warning=n > 2))

        listed = await store.list_referrals()
        assert [r.referral_id for r in listed] == [f"12345:BJ{n}" for n in (3, 2, 1, 0)]
        assert [r.referral_id for r in await store.list_referrals(state="closed")] == ["12345:BJ0"]
        early = await store.list_referrals(early_warning=True)
        assert [r.referral_id for r in early] == ["12345:BJ3"]
        page = await store.list_referrals(limit=2, offset=1)
        assert [r.referral_id for r in page] == ["12345:BJ2", "12345:BJ1"]

        stats = await store.stats()
        assert stats["referrals_total"] == 4
        assert stats["referrals_by_state"] == {"closed": 1, "dispatched": 3}
        assert stats["early_warning"] == 1

    async def test_versions_seen_records_and_created_index(self, store: Store) -> None:
        async with store.begin() as tx:
            assert await tx.get_last_version("12345:BJ1", "12345") is None
            await tx.set_last_version("12345:BJ1", "12345", 3)
            await tx.set_last_version("12345:BJ1", "12345", 4)
            assert await tx.get_seen("12345", "BJ1") is None
            await tx.put_seen("12345", "BJ1", "sha-1", 1)
            await tx.put_seen("12345", "BJ1", "sha-2", 2)
            assert await tx.put_created("12351", "BJ1", "case-a") == "case-a"
            assert await tx.put_created("12351", "BJ1", "case-b") == "case-a"
        async with store.begin() as tx:
            assert await tx.get_last_version("12345:BJ1", "12345") == 4
            assert await tx.get_last_version("12345:BJ1", "12351") is None
            assert await tx.get_seen("12345", "BJ1") == Seen("sha-2", 2)
            assert await tx.lookup_created("12351", "BJ1") == "case-a"
            assert await tx.lookup_created("12351", "BJ2") is None

    async def test_reconciliation_runs_are_created_finished_and_listed(
        self, store: Store, clock: FakeClock
    ) -> None:
        run_id = await store.create_reconciliation("periodic")
        run = await store.get_reconciliation(run_id)
        assert run is not None
        assert (run.status, run.trigger, run.finished_at, run.counts) == (
            "running",
            "periodic",
            None,
            {},
        )
        clock.advance(42)
        assert await store.finish_reconciliation(run_id, "succeeded", {"republished": 3})
        assert not await store.finish_reconciliation(999_999, "failed", {})
        later = await store.create_reconciliation("admin")
        run = await store.get_reconciliation(run_id)
        assert run is not None
        assert (run.status, run.counts, run.finished_at) == (
            "succeeded",
            {"republished": 3},
            clock.now,
        )
        assert [r.id for r in await store.list_reconciliations()] == [later, run_id]

    async def test_times_come_back_as_aware_utc(self, open_store: OpenStore) -> None:
        beijing = timezone(timedelta(hours=8))
        at = datetime(2026, 11, 29, 16, 30, tzinfo=beijing)
        store = await open_store(clock=lambda: at)
        async with store.begin() as tx:
            await tx.add_event("12345:BJ1", "12345", "intake", {"orderNo": "BJ1"})
        (event,) = await store.timeline("12345:BJ1")
        assert event.at == at
        assert event.at.tzinfo == UTC
        assert event.at.hour == 8

        naive = await open_store(clock=lambda: datetime(2026, 11, 29, 8, 0))
        with pytest.raises(sa.exc.StatementError, match="aware"):
            async with naive.begin() as tx:
                await tx.add_event("12345:BJ1", "12345", "intake", {})

    async def test_concurrent_transactions_all_commit(self, store: Store) -> None:
        """20 concurrent writers: none fails (no "database is locked"), none is lost."""

        async def write(n: int) -> None:
            async with store.begin() as tx:
                await tx.set_position("12345", f"feed-{n}", f"mark-{n}")
                await tx.enqueue(message("12345:BJ1", n=n))
                await tx.upsert_referral(referral(ids={f"system-{n}": str(n)}))
                await asyncio.sleep(0)
                await tx.record_action(ActionRow("12345:BJ1", "12351", f"k{n}", "sign", "applied"))

        await asyncio.gather(*(write(n) for n in range(20)))

        assert len(await store.outbox_pending(100)) == 20
        stored = await store.get_referral("12345:BJ1")
        assert stored is not None
        assert stored.ids == {f"system-{n}": str(n) for n in range(20)}
        assert len(await store.timeline("12345:BJ1")) == 20
        assert await store.get_position("12345", "feed-19") == "mark-19"


class TestStoreOnSQLite(StoreBehaviour):
    """The shared behaviour on a fresh SQLite file, plus SQLite specifics."""

    @pytest.fixture
    def db_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/nested/dir/bridge.db"

    async def test_connect_creates_the_directory_and_enables_wal(
        self, store: Store, tmp_path: Path
    ) -> None:
        assert (tmp_path / "nested" / "dir" / "bridge.db").is_file()
        engine = create_engine(f"sqlite:///{tmp_path}/nested/dir/bridge.db")
        try:
            async with engine.connect() as conn:
                mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
        finally:
            await engine.dispose()
        assert mode == "wal"

    async def test_two_stores_on_one_file_write_concurrently(self, open_store: OpenStore) -> None:
        """Two stores (as two processes would) do not lock each other out."""
        stores = [await open_store(), await open_store()]

        async def write(n: int) -> None:
            async with stores[n % 2].begin() as tx:
                await tx.get_position("12345", "dispatched")
                await asyncio.sleep(0)
                await tx.set_position("12345", "dispatched", f"mark-{n}")
                await tx.enqueue(message(f"r{n}", n=n))

        await asyncio.gather(*(write(n) for n in range(20)))
        assert len(await stores[0].outbox_pending(100)) == 20

    async def test_nested_write_transaction_raises_instead_of_deadlocking(
        self, store: Store
    ) -> None:
        with pytest.raises(RuntimeError, match="reentrant"):
            async with store.begin():
                await store.mark_published([1])


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        pytest.param("sqlite:////var/lib/hb/bridge.db", "sqlite+aiosqlite", id="sqlite-abs"),
        pytest.param("sqlite+aiosqlite:////x.db", "sqlite+aiosqlite", id="sqlite-async"),
        pytest.param("postgresql://u:p@db/hb", "postgresql+asyncpg", id="postgresql"),
        pytest.param("postgres://u:p@db/hb", "postgresql+asyncpg", id="postgres-alias"),
        pytest.param("postgresql+asyncpg://db/hb", "postgresql+asyncpg", id="postgresql-async"),
    ],
)
def test_config_urls_map_to_async_drivers(url: str, driver: str) -> None:
    assert to_async_url(url).drivername == driver


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("mysql://u:secret@db/hb", id="unsupported-scheme"),
        pytest.param("sqlite:///:memory:", id="sqlite-memory"),
        pytest.param("sqlite://", id="sqlite-no-path"),
    ],
)
def test_unusable_urls_are_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        to_async_url(url)
    assert "secret" not in str(caught.value)
