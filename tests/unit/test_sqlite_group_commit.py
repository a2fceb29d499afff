"""SQLite group commit and the statement fast path (`bridge.store.sqlite`).

Writers that queue together share one COMMIT; each is still all-or-nothing on its
own, returns only once its data is visible to a fresh connection, and a writer that
gives up its place in the queue never leaves the others waiting.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from bridge.store import ActionRow, OutboxMessage, Store, outbox
from bridge.store import sqlite as sqlite_module
from bridge.store.sqlite import LoopSQLiteEngine


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.connect(f"sqlite:///{tmp_path / 'bridge.db'}")
    try:
        yield store
    finally:
        await store.aclose()


def engine_of(store: Store) -> LoopSQLiteEngine:
    engine = store._engine
    assert isinstance(engine, LoopSQLiteEngine)
    return engine


def outbox_ids(path: Path) -> list[str]:
    """What another process would see: a plain sqlite3 connection of its own."""
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT referral_id FROM outbox ORDER BY id")]


def msg(referral_id: str) -> OutboxMessage:
    return OutboxMessage(referral_id=referral_id, routing_key="to.12351.normal.0", body=b"{}")


async def test_concurrent_writers_share_commits_and_each_returns_durable(
    store: Store, tmp_path: Path
) -> None:
    seen_on_return: dict[int, bool] = {}

    async def write(n: int) -> None:
        async with store.begin() as tx:
            await tx.enqueue(msg(f"r{n}"))
        seen_on_return[n] = f"r{n}" in outbox_ids(tmp_path / "bridge.db")

    before = engine_of(store).commits
    await asyncio.gather(*(write(n) for n in range(30)))

    assert seen_on_return == {n: True for n in range(30)}
    commits = engine_of(store).commits - before
    assert 1 <= commits < 30, f"{commits} COMMITs for 30 queued writers: no grouping"


async def test_a_failing_writer_is_rolled_back_alone(store: Store, tmp_path: Path) -> None:
    async def write(n: int) -> None:
        async with store.begin() as tx:
            await tx.enqueue(msg(f"r{n}"))
            await tx.record_action(ActionRow(f"r{n}", "12351", "create_case", "create", "applied"))
            if n % 3 == 0:
                raise RuntimeError(f"writer {n} fails")

    results = await asyncio.gather(*(write(n) for n in range(9)), return_exceptions=True)

    failed = {n for n, r in enumerate(results) if isinstance(r, RuntimeError)}
    assert failed == {0, 3, 6}
    assert outbox_ids(tmp_path / "bridge.db") == [f"r{n}" for n in range(9) if n not in failed]
    for n in range(9):
        keys = await store.timeline(f"r{n}")
        assert (len(keys) == 1) == (n not in failed)


async def test_a_writer_cancelled_in_the_queue_does_not_strand_the_group(
    store: Store, tmp_path: Path
) -> None:
    release_a = asyncio.Event()

    async def writer_a() -> None:
        async with store.begin() as tx:
            await tx.enqueue(msg("a"))
            await release_a.wait()

    async def writer_b() -> None:
        async with store.begin() as tx:
            await tx.enqueue(msg("b"))

    a = asyncio.create_task(writer_a())
    await asyncio.sleep(0.05)  # A holds the group open
    b = asyncio.create_task(writer_b())
    await asyncio.sleep(0.05)  # B waits in line: A will leave the COMMIT to it
    release_a.set()
    await asyncio.sleep(0)  # A leaves the body and hands the lock to B ...
    b.cancel()  # ... which gives up before it runs

    await asyncio.wait_for(a, 5)  # A's data is committed all the same
    with pytest.raises(asyncio.CancelledError):
        await b
    assert outbox_ids(tmp_path / "bridge.db") == ["a"]

    async with store.begin() as tx:  # and the store goes on
        await tx.enqueue(msg("c"))
    assert outbox_ids(tmp_path / "bridge.db") == ["a", "c"]


async def test_a_failed_commit_fails_every_member(store: Store) -> None:
    engine = engine_of(store)
    gate = asyncio.Event()

    async def write(n: int) -> None:
        async with store.begin() as tx:
            await tx.enqueue(msg(f"r{n}"))
            if n == 0:
                await gate.wait()

    first = asyncio.create_task(write(0))
    await asyncio.sleep(0.05)
    rest = [asyncio.create_task(write(n)) for n in (1, 2)]
    await asyncio.sleep(0.05)
    # Break the shared transaction behind the members' backs: its COMMIT fails.
    original = engine._commit

    async def broken_commit(group):  # type: ignore[no-untyped-def]
        group.trans = _FailingCommit(group.trans)
        await original(group)

    engine._commit = broken_commit  # type: ignore[method-assign]
    gate.set()
    results = await asyncio.gather(first, *rest, return_exceptions=True)
    engine._commit = original  # type: ignore[method-assign]

    assert all(isinstance(r, sa.exc.OperationalError) for r in results), results
    assert await store.outbox_pending(10) == []
    async with store.begin() as tx:  # the store goes on after a failed COMMIT
        await tx.enqueue(msg("after"))
    assert [m.referral_id for m in await store.outbox_pending(10)] == ["after"]


class _FailingCommit:
    def __init__(self, trans: sa.engine.RootTransaction) -> None:
        self.trans = trans

    def commit(self) -> None:
        raise sa.exc.OperationalError("COMMIT", None, sqlite3.OperationalError("disk I/O error"))

    def rollback(self) -> None:
        self.trans.rollback()


async def test_fast_path_reports_constraint_errors_as_sqlalchemy_does(store: Store) -> None:
    """A prebuilt statement (`outbox._ENQUEUE`, marked `fast`) hitting a constraint raises
    SQLAlchemy's `IntegrityError`, and only that writer's transaction is rolled back."""
    params = {
        "id": 7,
        "referral_id": "r7",
        "routing_key": "to.12351.normal.0",
        "body": b"{}",
        "headers": {},
        "early_warning": False,
        "created_at": datetime.now(UTC),
        "published_at": None,
    }
    async with store.begin() as tx:
        await tx.connection.execute(outbox._ENQUEUE, params)
    with pytest.raises(sa.exc.IntegrityError) as raised:
        async with store.begin() as tx:
            await tx.enqueue(msg("r8"))
            await tx.connection.execute(outbox._ENQUEUE, params)
    assert [m.id for m in await store.outbox_pending(10)] == [7]
    # the values (personal data, in other tables) stay out of the error's text
    assert "r7" not in str(raised.value) and "hidden" in str(raised.value)


async def test_errors_through_sqlalchemy_hide_their_values_too(store: Store) -> None:
    insert = sa.text("INSERT INTO feed_seen VALUES (:s, :n, :h, 1, '2026-11-29 08:00:00')")
    values = {"s": "12345", "n": "王某 13812345678", "h": "h"}
    async with store.begin() as tx:
        await tx.connection.execute(insert, values)
    with pytest.raises(sa.exc.IntegrityError) as raised:
        async with store.begin() as tx:
            await tx.connection.execute(insert, values)
    assert "13812345678" not in str(raised.value)


async def test_fast_path_falls_back_to_sqlalchemy_when_it_cannot_prepare(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = sqlite_module._FAST[id(outbox._ENQUEUE)]
    monkeypatch.setattr(entry, "prepared", {})  # nothing cached: prepare again

    def moved_internals(*_: object) -> None:
        raise AttributeError("'SQLCompiler' object has no attribute '_bind_processors'")

    monkeypatch.setattr(entry, "_prepare", moved_internals)
    with capture_logs() as logs:
        async with store.begin() as tx:
            await tx.enqueue(msg("r1"))

    assert [m.referral_id for m in await store.outbox_pending(10)] == ["r1"]
    assert [e["event"] for e in logs] == ["store.fast_path_unavailable"]
    assert None in entry.prepared.values()  # decided once: SQLAlchemy's path from now on
