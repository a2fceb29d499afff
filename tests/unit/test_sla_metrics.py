"""`/metrics` exports the SLA watch's deadlines and the open early warnings (the admin
server of `test_admin`, over real HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime

from bridge.store import ReferralRow, SlaRow
from tests.unit.test_admin import Admin, admin, families, sample

__all__ = ["admin"]  # the fixture, shared with test_admin

T0 = datetime(2026, 11, 30, 1, 20, tzinfo=UTC)


async def test_metrics_export_sla_deadlines_and_open_early_warnings(admin: Admin) -> None:
    store = admin.node.store
    async with store.begin() as tx:
        for rid, state, early in (
            ("12345:BJ1", "signed", True),
            ("12345:BJ2", "closed", True),
            ("12345:BJ3", "signed", False),
        ):
            await tx.upsert_referral(ReferralRow(rid, "12345", {}, state, early_warning=early))
    await store.upsert_sla(
        [
            SlaRow("12345:BJ1", "sign", "12345", T0, "met", T0),
            SlaRow("12345:BJ1", "reply", "12345", T0, "breached", T0),
            SlaRow("12345:BJ3", "reply", "12345", T0, "breached", T0),
            SlaRow("12345:BJ3", "answer", "12351", T0, "at_risk", T0),
        ]
    )
    status, _, text = await admin.get("/metrics")
    assert status == 200
    found = families(text)
    deadlines = found["hotline_bridge_sla_deadlines"]
    assert sample(deadlines, system="12345", kind="reply", state="breached") == 2
    assert sample(deadlines, system="12351", kind="answer", state="at_risk") == 1
    assert sample(deadlines, system="12345", kind="sign", state="met") == 1
    # the open alarms are always there, 0 when none
    assert sample(deadlines, system="12345", kind="sign", state="breached") == 0
    assert sample(deadlines, system="12351", kind="answer", state="breached") == 0
    assert sample(found["hotline_bridge_early_warnings_open"]) == 1
    assert "BJ1" not in text and "BJ3" not in text
