"""The SLA watch on a real (SQLite) store: rows, crossings logged once, batches, lease."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bridge.config import SlaConfig, load_settings, settings_to_toml
from bridge.engine.sla import SlaWatch
from bridge.errors import ConfigError
from bridge.mapping.times import BEIJING
from bridge.store import ActionRow, ReferralRow, SlaRow, Store
from schemas.canonical import Caller, Lifecycle, Priority, Referral

DISPATCHED = datetime(2026, 11, 30, 9, 20, tzinfo=BEIJING).astimezone(UTC)
NAME, PHONE = "王某某", "13812345678"


class MovableClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def at(self, **delta: float) -> None:
        self.now = DISPATCHED + timedelta(**delta)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.connect(f"sqlite:///{tmp_path}/bridge.db")
    yield store
    await store.aclose()


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(DISPATCHED)


def watch(store: Store, clock: MovableClock, **kwargs: Any) -> SlaWatch:
    values: dict[str, Any] = {
        "store": store,
        "config": SlaConfig(interval_s=1, warn_before_s=1800),
        "node_id": "node-a",
        "systems": {"12345", "12351"},
        "clock": clock,
    }
    values.update(kwargs)
    return SlaWatch(**values)


def order(no: str, **changes: Any) -> Referral:
    """An urgent order dispatched to the union (deadline 24 h), as 12345 shows it: not
    signed yet."""
    values: dict[str, Any] = {
        "referral_id": f"12345:{no}",
        "origin": "12345",
        "source": "12345",
        "source_version": 1,
        "source_no": no,
        "ids": {"12345": no},
        "read_at": DISPATCHED,
        "state": Lifecycle.DELIVERED,
        "native_status": "10",
        "priority": Priority.URGENT,
        "caller": Caller(name=NAME, phone=PHONE),
        "subject": "公司拖欠三个月工资",
        "dispatched_at": DISPATCHED,
        "deadline": DISPATCHED + timedelta(hours=24),
    }
    values.update(changes)
    return Referral(**values)


async def record(store: Store, ref: Referral, *actions: str) -> None:
    async with store.begin() as tx:
        await tx.upsert_referral(
            ReferralRow(
                referral_id=ref.referral_id,
                origin_system=ref.origin,
                ids=dict(ref.ids),
                state=ref.state.value,
                early_warning=ref.early_warning,
                last_snapshot=ref.model_dump(mode="json"),
            )
        )
        for key in actions:
            await tx.record_action(
                ActionRow(ref.referral_id, "12345", key, key, "applied", {}, DISPATCHED)
            )


def states(rows: list[SlaRow]) -> dict[str, str]:
    return {row.kind: row.state for row in rows}


def sla_events(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if str(entry["event"]).startswith("sla.")]


async def test_each_crossing_is_logged_once_and_a_restart_logs_nothing_again(
    store: Store, clock: MovableClock
) -> None:
    ref = order("BJ1")
    await record(store, ref, "sign")
    first = watch(store, clock)
    with capture_logs() as logs:
        clock.at(hours=1)
        await first.scan()
        assert states(await store.sla_for(ref.referral_id)) == {"sign": "met", "reply": "ok"}
        clock.at(hours=23, minutes=40)
        await first.scan()
        await first.scan()
        clock.at(hours=24)
        await first.scan()
        await first.scan()
        await watch(store, clock, node_id="node-b").scan()  # a restart, or a new holder
    assert [(e["event"], e["kind"]) for e in sla_events(logs)] == [
        ("sla.at_risk", "reply"),
        ("sla.breached", "reply"),
    ]
    for entry in sla_events(logs):
        assert set(entry) == {"event", "log_level", "referral_id", "kind", "system", "due_at"}
        assert entry["referral_id"] == ref.referral_id and entry["system"] == "12345"
        assert entry["due_at"] == (DISPATCHED + timedelta(hours=24)).isoformat()
        assert NAME not in str(entry) and PHONE not in str(entry)
    reply = {row.kind: row for row in await store.sla_for(ref.referral_id)}["reply"]
    assert reply.changed_at == DISPATCHED + timedelta(hours=24)


async def test_a_deadline_met_after_its_breach_becomes_met_without_a_log(
    store: Store, clock: MovableClock
) -> None:
    ref = order("BJ2")
    await record(store, ref, "sign")
    clock.at(hours=25)
    await watch(store, clock).scan()
    assert states(await store.sla_for(ref.referral_id))["reply"] == "breached"
    await record(store, ref.model_copy(update={"source_version": 2}), "reply:0")
    with capture_logs() as logs:
        await watch(store, clock).scan()
    assert states(await store.sla_for(ref.referral_id))["reply"] == "met"
    assert sla_events(logs) == []


async def test_more_referrals_than_one_batch_are_all_judged(
    store: Store, clock: MovableClock
) -> None:
    refs = [order(f"BJ-{n:02d}") for n in range(7)]
    for ref in refs:
        await record(store, ref)
    clock.at(hours=3)  # none is signed: every sign deadline (2 h) is missed
    with capture_logs() as logs:
        crossings = await watch(store, clock, batch_size=3).scan()
    assert sorted(c.referral_id for c in crossings) == sorted(r.referral_id for r in refs)
    assert len(sla_events(logs)) == 7
    for ref in refs:
        assert states(await store.sla_for(ref.referral_id))["sign"] == "breached"
    assert (await store.sla_counts())[("12345", "sign", "breached")] == 7


async def test_a_withdrawn_referral_closes_its_open_deadlines_and_leaves_the_scan(
    store: Store, clock: MovableClock
) -> None:
    ref = order("BJ3")
    await record(store, ref)
    clock.at(hours=3)
    await watch(store, clock).scan()
    assert states(await store.sla_for(ref.referral_id))["sign"] == "breached"
    withdrawn = ref.model_copy(
        update={"source_version": 2, "state": Lifecycle.WITHDRAWN, "native_status": "70"}
    )
    await record(store, withdrawn)
    await watch(store, clock).scan()
    assert states(await store.sla_for(ref.referral_id)) == {"sign": "met", "reply": "met"}
    assert await store.sla_batch(None, 10, ["12345"]) == []


async def test_only_the_lease_holder_scans(store: Store, clock: MovableClock) -> None:
    await record(store, order("BJ4"))
    holder, other = watch(store, clock), watch(store, clock, node_id="node-b")
    assert await holder.tick() is True
    assert await other.tick() is False
    assert (holder.scans, other.scans) == (1, 0)


async def test_a_referral_without_a_snapshot_yet_is_skipped(
    store: Store, clock: MovableClock
) -> None:
    async with store.begin() as tx:
        await tx.upsert_referral(
            ReferralRow(referral_id="12345:BJ5", origin_system="12345", ids={}, state="signed")
        )
    assert await watch(store, clock).scan() == []
    assert await store.sla_for("12345:BJ5") == []


def test_sla_config_reads_toml_dates_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(
        '[bridge]\nsides = ["12351"]\n'
        '[hotline12351]\nbase_url = "http://127.0.0.1:1/integration/v1"\napi_key = "k"\n'
        '[sla]\ninterval_s = 5\nholidays = [2026-10-01, "2026-10-02"]\n'
        "extra_workdays = [2026-10-10]\n",
        encoding="utf-8",
    )
    settings = load_settings(path)
    assert settings.sla.holidays == [date(2026, 10, 1), date(2026, 10, 2)]
    assert settings.sla.extra_workdays == [date(2026, 10, 10)]
    again = tmp_path / "again.toml"
    again.write_text(settings_to_toml(settings), encoding="utf-8")
    assert load_settings(again).sla == settings.sla


def test_a_day_cannot_be_both_a_holiday_and_a_working_day(tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text("[sla]\nholidays = [2026-10-10]\nextra_workdays = [2026-10-10]\n")
    with pytest.raises(ConfigError, match="2026-10-10"):
        load_settings(path)
