"""The reconciler of issue 9 against fake hotlines and a real store: window lists through
the intake, keyset reads of what they did not cover, the checks, dry runs that report
the same list and write nothing, and the rate share it runs inside."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from test_poller import order

from adapters.base import FeedPage
from adapters.errors import NotFound, TransientError
from adapters.ratelimit import RequestBudget, urgent
from bridge.app import topology_of
from bridge.config import Settings
from bridge.engine.intake import record_intake
from bridge.mapping import MappingTables
from bridge.partners import Side
from bridge.partners.hotline12345.side import Intake12345
from bridge.partners.hotline12351.side import Intake12351
from bridge.reconcile import KINDS, Reconciler
from bridge.store import ActionRow, DeadLetterIn, ReferralRow, Store, tables
from schemas.hotline12345 import Order
from schemas.hotline12351 import Case
from tests.unit.adminkit import STORE_KINDS, store_url

TABLES = MappingTables.default()
TOPOLOGY = topology_of(Settings())
NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


@pytest.fixture(params=STORE_KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with store_url(request.param, tmp_path) as url:
        store = await Store.connect(url)
        try:
            yield store
        finally:
            await store.aclose()


@dataclass
class Fake12345:
    """12345 whose list returns `orders` but those in `unlisted` (outside the window),
    two a page; `fetch` finds `orders`, fails for `down`."""

    orders: dict[str, Order]
    unlisted: set[str] = field(default_factory=set)
    down: set[str] = field(default_factory=set)
    budget: RequestBudget | None = None
    fetched: list[str] = field(default_factory=list)
    since: datetime | None = None
    system: str = "12345"
    feeds: tuple[str, ...] = ("dispatched",)
    window_current: bool = True
    mark: datetime | None = None  # how far its feed has read (None: nothing yet)

    def window_position(self, feed: str, since: datetime) -> str:
        self.since = since
        return "0"

    def read_up_to(self, feed: str, position: str | None) -> datetime | None:
        return self.mark

    async def read_feed(self, feed: str, position: str | None) -> FeedPage[Order]:
        listed = sorted(
            (o for no, o in self.orders.items() if no not in self.unlisted),
            key=lambda o: (o.updateTime, o.orderNo),
        )
        start = int(position or 0)
        page = listed[start : start + 2]
        end = start + len(page)
        return FeedPage(page, str(end), more=end < len(listed))

    async def fetch(self, native_id: str) -> Order:
        if self.budget is not None:
            await self.budget.acquire()
        self.fetched.append(native_id)
        if native_id in self.down:
            raise TransientError("12345", "503")
        if native_id not in self.orders:
            raise NotFound("12345")
        return self.orders[native_id]


@dataclass
class Fake12351:
    """12351 whose feed is `history` (past states), and whose cases are as `cases`."""

    cases: dict[str, Case]
    history: list[Case] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    system: str = "12351"
    feeds: tuple[str, ...] = ("cases",)
    window_current: bool = False

    def window_position(self, feed: str, since: datetime) -> str:
        return "0"

    def read_up_to(self, feed: str, position: str | None) -> datetime | None:
        return None

    async def read_feed(self, feed: str, position: str | None) -> FeedPage[Case]:
        start = int(position or 0)
        page = self.history[start : start + 2]
        return FeedPage(page, str(start + len(page)), more=bool(page))

    async def fetch(self, native_id: str) -> Case:
        self.fetched.append(native_id)
        if native_id not in self.cases:
            raise NotFound("12351")
        return self.cases[native_id]


def case(case_id: str, n: int, **changes: Any) -> Case:
    data: dict[str, Any] = {
        "id": case_id,
        "case_no": f"12351-2026-{n:07d}",
        "channel": "partner",
        "created_at": "2026-11-29T09:30:00+08:00",
        "updated_at": "2026-11-29T10:00:00+08:00",
        "version": 3,
        "service_type": "legal_aid",
        "priority": "normal",
        "subject": "拖欠工资",
        "status": "received",
        "origin": {
            "system": "12345",
            "external_no": f"BJ-{n}",
            "deadline": "2026-12-06T09:20:03+08:00",
        },
    }
    return Case.model_validate({**data, **changes})


def reconciler(store: Store, *sides: Side, **options: Any) -> Reconciler:
    return Reconciler(
        store=store,
        sides={side.system: side for side in sides},
        topology=TOPOLOGY,
        systems=("12345", "12351"),
        node_id="test",
        interval_s=3600,
        progress_every_s=0,
        page_size=2,
        clock=lambda: NOW,
        **options,
    )


def side12345(hotline: Fake12345) -> Side:
    intake = Intake12345(unit_code="BJZGH", tables=TABLES)
    return Side("12345", hotline, intake, None, hotline.budget)  # type: ignore[arg-type]


async def seen(store: Store, intake: Any, feed: str, record: Any) -> None:
    """The bridge read `record` from its feed (as the poller does)."""
    async with store.begin() as tx:
        taken = await intake.take(feed, record, tx, NOW)
        assert taken is not None
        await record_intake(tx, TOPOLOGY, taken)


async def dump(store: Store) -> dict[str, list[Any]]:
    """Everything a run could write, to compare before and after."""
    out = {}
    async with store.begin() as tx:
        for table in (
            tables.referrals,
            tables.outbox,
            tables.dead_letters,
            tables.feed_seen,
            tables.events,
            tables.actions,
            tables.created_index,
        ):
            rows = await tx.connection.execute(sa.select(table))
            out[table.name] = sorted(json.dumps(list(r), default=str) for r in rows)
    return out


def found(report: dict[str, Any]) -> set[tuple[str, str | None]]:
    return {(i["kind"], i["referral_id"]) for i in report["items"]}


def without_repairs(report: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(
        ({k: v for k, v in i.items() if k not in ("repaired", "why")} for i in report["items"]),
        key=lambda i: (i["kind"], i["referral_id"] or ""),
    )


async def seed_every_kind(store: Store) -> Fake12345:
    """A 12345 with one order behind each finding kind (see the comments)."""
    intake = Intake12345(unit_code="BJZGH", tables=TABLES)
    orders = {
        "BJ-U": order("BJ-U"),  # unseen: listed, never read
        "BJ-C": order("BJ-C"),  # changed: read at 10, now at 20 in the list
        "BJ-S": order("BJ-S"),  # action_missing: signed in the ledger, 10 at 12345
        "BJ-P": order("BJ-P"),  # parked_unresolved: a dead letter still parked
        "BJ-X": order("BJ-X", category="X9"),  # parked: does not map
        "BJ-R": order("BJ-R"),  # changed, found by a read (not in the window)
        "BJ-F": order("BJ-F"),  # failed: the read fails
        "BJ-Q": order("BJ-Q", orderStatus="30", reply=None),  # state_mismatch
        "BJ-K": order("BJ-K"),  # as last read: no finding
    }
    for no in ("BJ-C", "BJ-S", "BJ-P", "BJ-R", "BJ-F", "BJ-Q", "BJ-K"):
        await seen(store, intake, "dispatched", orders[no])
    await seen(store, intake, "dispatched", order("BJ-M"))  # missing: gone at 12345
    orders["BJ-C"] = order("BJ-C", orderStatus="20", updateTime="2026-11-29 10:05:00")
    orders["BJ-R"] = order("BJ-R", orderStatus="20", updateTime="2026-11-29 10:05:00")
    async with store.begin() as tx:
        await tx.record_action(ActionRow("12345:BJ-S", "12345", "sign", "sign", "applied", {}))
        await tx.park(
            DeadLetterIn("12351", "apply", "refused", {"snapshot": {}}, "12345:BJ-P", "x")
        )
        # both sides' snapshots applied on the other side, and they disagree: 12345 has
        # the reply, 12351 is still handling the case
        await tx.set_last_version("12345:BJ-Q", "12345", 1)
        await tx.add_event(
            "12345:BJ-Q",
            "12351",
            "snapshot.read",
            {"version": 3, "status": "handling", "state": "in_progress"},
        )
        await tx.set_last_version("12345:BJ-Q", "12351", 3)
    return Fake12345(orders, unlisted={"BJ-R", "BJ-F", "BJ-M"}, down={"BJ-F"})


EVERY_KIND = {
    ("unseen", "12345:BJ-U"),
    ("changed", "12345:BJ-C"),
    ("action_missing", "12345:BJ-S"),
    ("parked_unresolved", "12345:BJ-P"),
    ("parked", None),
    ("changed", "12345:BJ-R"),
    ("failed", "12345:BJ-F"),
    ("missing", "12345:BJ-M"),
    ("state_mismatch", "12345:BJ-Q"),
}


async def test_each_kind_is_found_and_a_dry_run_reports_the_same_and_writes_nothing(
    store: Store,
) -> None:
    hotline = await seed_every_kind(store)
    before = await dump(store)

    dry_id = await reconciler(store, side12345(hotline)).run_once("test", dry_run=True)
    dry = await store.get_reconciliation(dry_id)
    assert dry is not None and dry.status == "done" and dry.report is not None
    assert await dump(store) == before  # referrals, outbox, dead letters, feed_seen, …
    assert found(dry.report) == EVERY_KIND
    assert all((i["repaired"], i["why"] is not None) == (False, True) for i in dry.report["items"])
    assert hotline.since is not None and (NOW - hotline.since).total_seconds() == 86_400

    hotline.fetched.clear()
    real_id = await reconciler(store, side12345(hotline)).run_once("test")
    real = await store.get_reconciliation(real_id)
    assert real is not None and real.status == "done" and real.report is not None
    assert without_repairs(real.report) == without_repairs(dry.report)
    assert {k: real.counts[k] for k in KINDS} == {k: dry.counts[k] for k in KINDS}
    assert real.counts["unseen"] == 1 and real.counts["changed"] == 2
    assert real.counts["listed"] == 7 and real.counts["read"] == 3
    repaired = {i["referral_id"] for i in real.report["items"] if i["repaired"]}
    assert repaired == {"12345:BJ-U", "12345:BJ-C", "12345:BJ-R"}
    assert real.counts["repaired"] == real.counts["republished"] == 3

    # the covered set: only what the window did not list was read
    assert sorted(hotline.fetched) == ["BJ-F", "BJ-M", "BJ-R"]
    # a real run recorded, queued and parked
    queued = {m.referral_id for m in await store.outbox_pending(limit=500)}
    assert {"12345:BJ-U", "12345:BJ-C", "12345:BJ-R"} <= queued
    assert await store.get_referral("12345:BJ-U") is not None
    [parked] = [d for d in await store.list_dead_letters(status="parked") if d.stage == "intake"]
    assert parked.field == "category" and "BJ-X" in parked.reason

    [unseen] = [i for i in real.report["items"] if i["kind"] == "unseen"]
    assert unseen["numbers"] == {"12345": "BJ-U", "12351": None}
    assert unseen["detail"]["source_state"] == "delivered"
    [mismatch] = [i for i in real.report["items"] if i["kind"] == "state_mismatch"]
    assert mismatch["detail"]["states"] == {"12345": "replied", "12351": "in_progress"}
    [missing_action] = [i for i in real.report["items"] if i["kind"] == "action_missing"]
    assert missing_action["detail"]["actions"] == ["sign"]

    # a second run finds what is still wrong and nothing it repaired
    again = await store.get_reconciliation(
        await reconciler(store, side12345(hotline)).run_once("test")
    )
    assert again is not None and again.report is not None
    assert found(again.report) == {
        ("action_missing", "12345:BJ-S"),
        ("parked_unresolved", "12345:BJ-P"),
        ("failed", "12345:BJ-F"),
        ("missing", "12345:BJ-M"),
        ("state_mismatch", "12345:BJ-Q"),
    }


async def test_reads_go_over_the_ledger_in_keyset_pages_and_every_open_case_is_read(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """12351's feed is a history, so even a case it lists is read; settled referrals and
    those without a 12351 id are not; the ledger is never paged by offset."""
    cases = {f"c{n}": case(f"c{n}", n) for n in range(1, 8)}
    intake = Intake12351(tables=TABLES)
    for c in cases.values():
        await seen(store, intake, "cases", c)
    async with store.begin() as tx:
        await tx.upsert_referral(ReferralRow("12345:BJ-9", "12345", {"12351": "c9"}, "closed"))
        await tx.upsert_referral(ReferralRow("12345:BJ-8", "12345", {"12345": "BJ-8"}, "signed"))
    cases["c5"] = case("c5", 5, version=4, status="dispatched")  # no feed entry for it
    hotline = Fake12351(cases, history=[case("c2", 2)])

    async def no_offsets(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the reconciler paged the ledger by offset")

    monkeypatch.setattr(store, "list_referrals", no_offsets)
    side = Side("12351", hotline, intake, None)  # type: ignore[arg-type]
    run = await store.get_reconciliation(await reconciler(store, side).run_once("test"))
    assert run is not None and run.report is not None
    assert sorted(hotline.fetched) == sorted(cases)  # 7 open, 4 pages of 2, each once
    assert run.counts["read"] == 7 and run.counts["listed"] == 1
    assert found(run.report) == {("changed", "12345:BJ-5")}
    [changed] = run.report["items"]
    assert changed["numbers"] == {"12345": "BJ-5", "12351": "12351-2026-0000005"}
    assert changed["repaired"] is True


async def test_the_run_reads_inside_its_share_of_the_budget(store: Store) -> None:
    """A 100 requests/s budget and a share of 0.1: 9 reads take over 0.9 s."""
    intake = Intake12345(unit_code="BJZGH", tables=TABLES)
    orders = {f"BJ-{n}": order(f"BJ-{n}") for n in range(9)}
    for o in orders.values():
        await seen(store, intake, "dispatched", o)
    hotline = Fake12345(orders, unlisted=set(orders), budget=RequestBudget("12345", 100))
    loop = asyncio.get_running_loop()
    start = loop.time()
    await reconciler(store, side12345(hotline), rate_share=0.1).run_once("test")
    assert len(hotline.fetched) == 9
    assert loop.time() - start >= 8 / (100 / 1.2 * 0.1)


# the share of a budget -----------------------------------------------------------------


async def test_a_share_takes_at_most_its_fraction_and_others_get_the_rest() -> None:
    """20 requests/s, a share of 0.25: shared calls at most 5/s while other callers go on."""
    budget = RequestBudget("12345", 20)
    loop = asyncio.get_running_loop()
    shared: list[float] = []
    other: list[float] = []

    async def caller(stamps: list[float], share: bool) -> None:
        while True:
            if share:
                with budget.share(0.25):
                    await budget.acquire()
            else:
                await budget.acquire()
            stamps.append(loop.time())

    start = loop.time()
    tasks = [asyncio.create_task(caller(shared, True)) for _ in range(4)]
    tasks += [asyncio.create_task(caller(other, False)) for _ in range(2)]
    await asyncio.sleep(2.0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = loop.time() - start
    assert len(shared) <= 5 * elapsed + 1
    assert len(shared) >= 3  # it does get its share
    assert len(other) >= (20 / 1.2) * elapsed * 0.6  # the rest stays with the others


async def test_an_urgent_call_never_waits_on_a_share() -> None:
    budget = RequestBudget("12345", 20)
    loop = asyncio.get_running_loop()
    with budget.share(0.05):  # one shared call every 1.2 s
        await budget.acquire()
        start = loop.time()
        with urgent():
            await budget.acquire()
        assert loop.time() - start < 0.2
        start = loop.time()
        await budget.acquire()
        assert loop.time() - start >= 1.0


async def test_no_limit_means_no_share_limit() -> None:
    budget = RequestBudget("12351", None)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with budget.share(0.01):
        for _ in range(50):
            await budget.acquire()
    assert loop.time() - start < 0.1
    with pytest.raises(ValueError):
        with budget.share(0):
            pass


async def test_a_case_fixed_by_hand_at_its_version_is_found_by_a_read_not_by_its_feed(
    store: Store,
) -> None:
    """12351 keeps the version of a case fixed in its database: the feed's older entry
    at that version is a repeat, the case read now is a change."""
    intake = Intake12351(tables=TABLES)
    await seen(store, intake, "cases", case("c1", 1))
    fixed = case("c1", 1, subject="改正后")  # same version 3, other content
    async with store.begin() as tx:
        assert await intake.take("cases", fixed, tx, NOW) is None  # a feed entry
        assert await intake.take("reconcile", fixed, tx, NOW, current=True) is not None
        assert await intake.take("cases", case("c1", 1), tx, NOW) is None  # the old entry


async def test_a_change_the_feed_has_not_reached_yet_is_taken_but_not_reported(
    store: Store,
) -> None:
    """What changed at or after the feed's mark may be on its way: a run takes it (the
    other side gets it at once) and reports only what lies below the mark."""
    intake = Intake12345(unit_code="BJZGH", tables=TABLES)
    for no in ("BJ-OLD", "BJ-NEW"):
        await seen(store, intake, "dispatched", order(no))
    orders = {
        "BJ-OLD": order("BJ-OLD", orderStatus="20", updateTime="2026-11-29 10:05:00"),
        "BJ-NEW": order("BJ-NEW", orderStatus="20", updateTime="2026-11-29 10:30:00"),
    }
    mark = datetime(2026, 11, 29, 2, 30, tzinfo=UTC)  # 10:30 in Beijing
    hotline = Fake12345(orders, mark=mark)
    run_id = await reconciler(store, side12345(hotline)).run_once("test")
    run = await store.get_reconciliation(run_id)
    assert run is not None and run.report is not None
    assert found(run.report) == {("changed", "12345:BJ-OLD")}
    assert run.counts["republished"] == 2  # both went to the other side


async def test_a_case_recorded_by_version_alone_is_taken_as_seen_once_then_by_content(
    store: Store,
) -> None:
    """A ledger written before cases were compared by content holds `v<version>`: the
    first read at that version records the content instead of reporting a change."""
    intake = Intake12351(tables=TABLES)
    async with store.begin() as tx:
        await tx.put_seen("12351", "c1", "v3", 3)
        assert await intake.take("reconcile", case("c1", 1), tx, NOW, current=True) is None
        recorded = await tx.get_seen("12351", "c1")
        assert recorded is not None and recorded.content_hash != "v3" and recorded.seq == 3
        fixed = case("c1", 1, subject="改正后")
        assert await intake.take("reconcile", fixed, tx, NOW, current=True) is not None
