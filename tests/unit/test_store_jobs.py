"""The store's side of the admin API's fixing calls, on SQLite; the same bodies run on
PostgreSQL (``tests/integration/test_store_postgres.py``): dead letters by filter in
keyset pages, jobs and their lifecycle, reconciliation runs with progress and a report.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.store import DeadLetterFilter, DeadLetterIn, Store

START = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def letter(**changes: Any) -> DeadLetterIn:
    values: dict[str, Any] = {
        "system": "12345",
        "stage": "intake",
        "reason": "category: unknown code 'X9' (case BJ1)",
        "payload": {"record": {"orderNo": "BJ1"}},
        "referral_id": "12345:BJ1",
    }
    return DeadLetterIn(**{**values, **changes})


class JobsBehaviour:
    """Behaviour every backend shares; subclasses provide ``db_url``."""

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    async def store(self, db_url: str, clock: FakeClock) -> AsyncIterator[Store]:
        store = await Store.connect(db_url, clock=clock)
        yield store
        await store.aclose()

    async def _park(self, store: Store, **changes: Any) -> int:
        async with store.begin() as tx:
            return await tx.park(letter(**changes))

    async def test_dead_letters_by_every_filter(self, store: Store, clock: FakeClock) -> None:
        a = await self._park(store)
        clock.advance(60)
        b = await self._park(
            store, system="12351", stage="apply", reason="Transfer.To refused", referral_id="x"
        )
        clock.advance(60)
        c = await self._park(store, reason="content: 100% over the limit", referral_id=None)
        d = await self._park(store, stage="transport")
        await store.set_dead_letter_status(d, "discarded")

        async def ids(**match: Any) -> list[int]:
            rows = await store.page_dead_letters(DeadLetterFilter(**match), limit=10)
            return [row.id for row in rows]

        assert await ids() == [a, b, c]  # parked by default
        assert await ids(status=None) == [a, b, c, d]
        assert await ids(status="discarded") == [d]
        assert await ids(system="12351") == [b]
        assert await ids(stage="intake") == [a, c]
        assert await ids(reason="transfer.to") == [b]  # a substring, any case
        assert await ids(reason="100%") == [c] and await ids(reason="1_0") == []  # literal
        assert await ids(since=START + timedelta(seconds=60)) == [b, c]
        assert await ids(until=START + timedelta(seconds=60)) == [a]
        assert await ids(referral_id="12345:BJ1") == [a]
        with pytest.raises(ValueError, match="stage"):
            await ids(stage="nowhere")

    async def test_keyset_pages_ids_and_counts_are_bounded(self, store: Store) -> None:
        parked = [await self._park(store) for _ in range(5)]
        first = await store.page_dead_letters(DeadLetterFilter(), limit=2)
        rest = await store.page_dead_letters(DeadLetterFilter(), after_id=first[-1].id, limit=10)
        assert [r.id for r in first + rest] == parked
        last = await store.last_dead_letter_id()
        assert last == parked[-1]
        later = await self._park(store)
        match = DeadLetterFilter()
        assert await store.count_matching_dead_letters(match, up_to_id=last) == 5
        assert await store.count_matching_dead_letters(match) == 6
        assert await store.dead_letter_ids(match, after_id=parked[1], up_to_id=last) == parked[2:]
        assert later not in await store.dead_letter_ids(match, up_to_id=last)

    async def test_a_job_is_queued_runs_and_finishes_once(
        self, store: Store, clock: FakeClock
    ) -> None:
        job_id = await store.create_job("replay", {"filter": {}, "node": "n1"}, "fp")
        job = await store.get_job(job_id)
        assert job is not None
        assert (job.status, job.total, job.done, job.failed, job.finished_at) == (
            "queued",
            None,
            0,
            0,
            None,
        )
        assert await store.start_job(job_id, 7)
        assert not await store.start_job(job_id, 7)  # runs once
        clock.advance(5)
        assert await store.job_progress(job_id, 3, 1)
        job = await store.get_job(job_id)
        assert job is not None
        assert (job.status, job.total, job.done, job.failed) == ("running", 7, 3, 1)
        assert job.updated_at == clock.now
        assert await store.finish_job(job_id, "done", {"failures": []})
        assert not await store.finish_job(job_id, "failed", {"error": "late"})
        assert not await store.job_progress(job_id, 9, 9)
        job = await store.get_job(job_id)
        assert job is not None
        assert (job.status, job.done, job.result, job.finished_at) == (
            "done",
            3,
            {"failures": []},
            clock.now,
        )
        with pytest.raises(ValueError, match="done or failed"):
            await store.finish_job(job_id, "running", {})
        assert await store.get_job(999_999) is None

    async def test_jobs_no_node_runs_any_more_are_failed(
        self, store: Store, clock: FakeClock
    ) -> None:
        mine = await store.create_job("replay", {"node": "n1"}, "fp")
        await store.start_job(mine, 3)
        gone = await store.create_job("replay", {"node": "n0"}, "fp")
        clock.advance(600)
        alive = await store.create_job("replay", {"node": "n2"}, "fp")
        await store.start_job(alive, 3)
        finished = await store.create_job("replay", {"node": "n1"}, "fp")
        await store.finish_job(finished, "done", {})

        failed = await store.fail_interrupted_jobs("n1", 300, "interrupted by a restart")
        assert sorted(failed) == sorted([mine, gone])
        for job_id, status in ((mine, "failed"), (gone, "failed"), (alive, "running")):
            job = await store.get_job(job_id)
            assert job is not None and job.status == status
        job = await store.get_job(mine)
        assert job is not None and job.result == {"error": "interrupted by a restart"}
        job = await store.get_job(finished)
        assert job is not None and job.status == "done"

    async def test_a_job_looked_at_is_failed_once_stale(
        self, store: Store, clock: FakeClock
    ) -> None:
        job_id = await store.create_job("replay", {"node": "n0"}, "fp")
        await store.start_job(job_id, 3)
        clock.advance(299)
        assert not await store.fail_stale_job(job_id, 300, "interrupted by a restart")
        clock.advance(2)
        assert await store.fail_stale_job(job_id, 300, "interrupted by a restart")
        job = await store.get_job(job_id)
        assert job is not None and (job.status, job.finished_at) == ("failed", clock.now)
        assert not await store.fail_stale_job(job_id, 300, "again")

    async def test_a_run_shows_progress_then_its_report(self, store: Store) -> None:
        run_id = await store.create_reconciliation("api", dry_run=True)
        assert await store.reconciliation_progress(run_id, {"checked": 2})
        run = await store.get_reconciliation(run_id)
        assert run is not None
        assert (run.status, run.dry_run, run.counts, run.report) == (
            "running",
            True,
            {"checked": 2},
            None,
        )
        report = {"missing": [{"referral_id": "12345:BJ1", "system": "12345"}]}
        assert await store.finish_reconciliation(run_id, "done", {"checked": 3}, report)
        assert not await store.reconciliation_progress(run_id, {"checked": 4})
        run = await store.get_reconciliation(run_id)
        assert run is not None
        assert (run.status, run.counts, run.report) == ("done", {"checked": 3}, report)
        plain = await store.get_reconciliation(await store.create_reconciliation("periodic"))
        assert plain is not None and plain.dry_run is False


class TestJobsOnSQLite(JobsBehaviour):
    @pytest.fixture
    def db_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'bridge.db'}"
