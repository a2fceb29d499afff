"""The SLA watch's store functions, on SQLite and on the local PostgreSQL."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bridge.store import ActionRow, ReferralRow, SlaRow, Store
from bridge.store import sla as store_sla
from bridge.store.tables import referrals

PG_ADMIN_URL = os.environ.get(
    "HB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
T0 = datetime(2026, 11, 30, 1, 20, tzinfo=UTC)


async def _pg(statement: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh store; on PostgreSQL a database of its own, dropped afterwards."""
    database = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/bridge.db"
    else:
        database = f"hb_test_sla_{secrets.token_hex(5)}"
        await _pg(f'CREATE DATABASE "{database}"')
        url = make_url(PG_ADMIN_URL).set(database=database).render_as_string(False)
    store = await Store.connect(url)
    try:
        yield store
    finally:
        await store.aclose()
        if database is not None:
            await _pg(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def deadline(rid: str, kind: str, state: str, *, hours: float = 2, system: str = "12345") -> SlaRow:
    return SlaRow(rid, kind, system, T0 + timedelta(hours=hours), state, T0)


async def referral(
    store: Store, rid: str, *, state: str = "signed", origin: str = "12345", early: bool = False
) -> None:
    async with store.begin() as tx:
        await tx.upsert_referral(
            ReferralRow(
                referral_id=rid,
                origin_system=origin,
                ids={origin: rid.split(":", 1)[1]},
                state=state,
                early_warning=early,
                last_snapshot={"referral_id": rid},
            )
        )


async def test_upsert_inserts_then_replaces_in_one_batch(store: Store) -> None:
    await store.upsert_sla(
        [deadline("12345:A", "sign", "ok", hours=2), deadline("12345:A", "reply", "ok", hours=24)]
    )
    moved = SlaRow("12345:A", "reply", "12345", T0 + timedelta(hours=48), "at_risk", T0)
    await store.upsert_sla([moved, deadline("12345:B", "sign", "breached")])
    rows = await store.sla_for("12345:A")
    assert [(r.kind, r.state, r.due_at) for r in rows] == [
        ("sign", "ok", T0 + timedelta(hours=2)),
        ("reply", "at_risk", T0 + timedelta(hours=48)),
    ]
    assert rows[0].due_at.tzinfo is not None
    assert await store.sla_for("12345:none") == []
    await store.upsert_sla([])


async def test_counts_by_system_kind_and_state(store: Store) -> None:
    await store.upsert_sla(
        [
            deadline("12345:A", "sign", "met"),
            deadline("12345:A", "reply", "breached"),
            deadline("12345:B", "reply", "breached"),
            deadline("12345:B", "answer", "at_risk", system="12351"),
        ]
    )
    assert await store.sla_counts() == {
        ("12345", "sign", "met"): 1,
        ("12345", "reply", "breached"): 2,
        ("12351", "answer", "at_risk"): 1,
    }


async def test_flagged_filters_referral_lists_by_deadline_state(store: Store) -> None:
    for rid in ("12345:A", "12345:B", "12345:C"):
        await referral(store, rid)
    await store.upsert_sla(
        [
            deadline("12345:A", "reply", "breached"),
            deadline("12345:A", "sign", "met"),
            deadline("12345:B", "answer", "at_risk", system="12351"),
            deadline("12345:B", "sign", "met"),
            deadline("12345:C", "sign", "met"),
        ]
    )

    async def ids(states: tuple[str, ...]) -> list[str]:
        query = (
            sa.select(referrals.c.referral_id)
            .where(store_sla.flagged(states))
            .order_by(referrals.c.referral_id)
        )
        async with store._read() as conn:
            return list((await conn.execute(query)).scalars())

    assert await ids(store_sla.OVERDUE) == ["12345:A"]
    assert await ids(store_sla.AT_RISK) == ["12345:B"]
    assert await ids(("at_risk", "breached")) == ["12345:A", "12345:B"]


async def test_scan_batches_by_id_after_a_key_and_skips_what_owes_nothing(store: Store) -> None:
    for n in range(5):
        await referral(store, f"12345:O{n}")
    await referral(store, "12351:T1", origin="12351")  # transferred case: no deadlines
    await referral(store, "12345:X1", state="closed")  # over, nothing open
    await referral(store, "12345:X2", state="withdrawn")  # over, one deadline still open
    await store.upsert_sla([deadline("12345:X2", "reply", "breached")])
    async with store.begin() as tx:
        await tx.record_action(ActionRow("12345:O1", "12345", "sign", "sign", "applied", {}, T0))
    seen: list[str] = []
    after = None
    while batch := await store.sla_batch(after, 2, ["12345"]):
        assert len(batch) <= 2
        seen += [s.referral_id for s in batch]
        after = batch[-1].referral_id
        if "12345:O1" in [s.referral_id for s in batch]:
            subject = next(s for s in batch if s.referral_id == "12345:O1")
            assert [(a.system, a.key, a.outcome, a.at) for a in subject.actions] == [
                ("12345", "sign", "applied", T0)
            ]
    assert seen == [f"12345:O{n}" for n in range(5)] + ["12345:X2"]
    subject = (await store.sla_batch("12345:X1", 1, ["12345"]))[0]
    assert subject.referral_id == "12345:X2" and subject.state == "withdrawn"
    assert subject.deadlines["reply"].state == "breached"
    assert subject.last_snapshot == {"referral_id": "12345:X2"}


async def test_figures_count_deadlines_and_open_early_warnings(store: Store) -> None:
    await referral(store, "12345:E1", early=True)
    await referral(store, "12345:E2", early=True, state="closed")
    await referral(store, "12345:N1")
    await store.upsert_sla([deadline("12345:E1", "sign", "breached")])
    figures = await store.figures()
    assert figures.early_warnings_open == 1
    assert figures.sla == {("12345", "sign", "breached"): 1}
