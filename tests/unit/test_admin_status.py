"""`GET /api/v1/status` against a known backlog: every figure equals what was seeded
(feed lag, outbox depth and oldest age, dead letters by reason, SLA deadlines, open
early warnings, queue depths), the problems come first and name the broken parts
without personal data; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from bridge.store import DeadLetterIn, OutboxMessage, ReferralRow
from bridge.store.tables import sla_deadlines
from bridge.supervisor import TaskState
from tests.unit.adminkit import (
    READ,
    T0,
    Admin,
    admin_node,
)
from tests.unit.adminkit import MovableClock as Clock


def _referral(n: int, *, state: str = "delivered", early: bool = False) -> ReferralRow:
    return ReferralRow(
        referral_id=f"12345:BJ12345-20261130-{n:06d}",
        origin_system="12345",
        ids={"12345": f"BJ12345-20261130-{n:06d}"},
        state=state,
        early_warning=early,
        last_snapshot={"caller": {"name": "王小明", "phone": "13912345678"}},
    )


def _letter(n: int, system: str, stage: str, field: str | None) -> DeadLetterIn:
    return DeadLetterIn(
        system=system,
        stage=stage,  # type: ignore[arg-type]
        reason=f"order BJ{n}: unknown code in field {field}",
        payload={"callerName": "王小明"},
        referral_id=f"12345:BJ12345-20261130-{n:06d}",
        field=field,
    )


async def _seed(admin: Admin, clock: Clock) -> dict[str, int]:
    """The known backlog; returns the ids a test compares with."""
    store = admin.node.store
    clock.now = T0 - timedelta(seconds=600)
    async with store.begin() as tx:
        for n, state, early in [
            (1, "delivered", True),  # open
            (2, "in_progress", True),  # open
            (3, "closed", True),  # closed: not open any more
            (4, "withdrawn", True),  # withdrawn: neither
            (5, "delivered", False),
        ]:
            await tx.upsert_referral(_referral(n, state=state, early=early))
    clock.now = T0 - timedelta(seconds=90.5)
    async with store.begin() as tx:
        await tx.enqueue(OutboxMessage("12345:BJ1", "to.12351.normal.0", b"{}"))
    clock.now = T0 - timedelta(seconds=300)
    async with store.begin() as tx:  # older, but published: not in the backlog
        published = await tx.enqueue(OutboxMessage("12345:BJ2", "to.12351.normal.1", b"{}"))
    await store.mark_published([published])
    clock.now = T0 - timedelta(seconds=5)
    async with store.begin() as tx:
        for _ in range(2):
            await tx.enqueue(OutboxMessage("12345:BJ3", "to.12351.alert.2", b"{}"))
        for n, system, stage, field in [
            (1, "12345", "intake", "category"),
            (2, "12345", "intake", "category"),
            (3, "12351", "apply", None),
            (4, "12351", "apply", "district_code"),
        ]:
            await tx.park(_letter(n, system, stage, field))
        discarded = await tx.park(_letter(5, "12345", "intake", "category"))
        await tx.connection.execute(
            sa.insert(sla_deadlines),
            [
                {
                    "referral_id": f"12345:BJ12345-20261130-{n:06d}",
                    "kind": kind,
                    "system": "12351",
                    "due_at": T0 + timedelta(hours=n),
                    "state": state,
                    "changed_at": T0,
                }
                for n, kind, state in [
                    (1, "answer", "breached"),
                    (2, "answer", "breached"),
                    (2, "sign", "at_risk"),
                    (3, "answer", "open"),
                    (5, "answer", "met"),
                ]
            ],
        )
    await store.set_dead_letter_status(discarded, "discarded")
    old_run = await store.create_reconciliation("schedule")
    await store.finish_reconciliation(old_run, "done", {"checked": 1})
    run = await store.create_reconciliation("admin")
    await store.finish_reconciliation(run, "done", {"checked": 5, "republished": 2})
    clock.now = T0
    return {"run": run}


async def test_every_figure_of_the_status_is_the_seeded_truth(
    clock_admin: tuple[Admin, Clock],
) -> None:
    admin, clock = clock_admin
    ids = await _seed(admin, clock)
    p12345, p12351 = admin.node.pollers
    p12345.last_success, p12345.failing, p12345.last_error = (
        T0 - timedelta(seconds=42.25),
        True,
        "TransientError",
    )
    p12351.last_success = T0 - timedelta(seconds=1.5)
    admin.node.transport.depths = {"12345": 7, "12351": None}  # type: ignore[attr-defined]

    status, _, body = await admin.get("/api/v1/status", token=READ)

    assert status == 200
    assert next(iter(body)) == "problems"
    assert body["node"]["node_id"] == "test" and body["node"]["sides"] == ["12345", "12351"]
    assert body["node"]["uptime_s"] >= 0
    assert body["sides"] == {
        "12345": {
            "paused": False,
            "feeds": [
                {
                    "feed": "dispatched",
                    "last_success_at": "2026-11-30T08:59:17.750000Z",
                    "lag_s": 42.25,
                    "failing": True,
                    "last_error": "TransientError",
                }
            ],
            "queue_depth": 7,
        },
        "12351": {
            "paused": False,
            "feeds": [
                {
                    "feed": "changes",
                    "last_success_at": "2026-11-30T08:59:58.500000Z",
                    "lag_s": 1.5,
                    "failing": False,
                    "last_error": None,
                }
            ],
            "queue_depth": None,
        },
    }
    assert body["outbox"] == {"depth": 3, "oldest_age_s": 90.5}
    assert body["dead_letters"] == {
        "parked": 4,
        "by_reason": [
            {"system": "12345", "stage": "intake", "field": "category", "count": 2},
            {"system": "12351", "stage": "apply", "field": None, "count": 1},
            {"system": "12351", "stage": "apply", "field": "district_code", "count": 1},
        ],
    }
    assert body["early_warnings_open"] == 2
    assert body["sla"] == {"at_risk": 1, "breached": 2}
    last = body["last_reconciliation"]
    assert (last["id"], last["trigger"], last["status"]) == (ids["run"], "admin", "done")
    assert last["counts"] == {"checked": 5, "republished": 2}
    assert last["dry_run"] is False and last["finished_at"] is not None


async def test_problems_come_first_errors_before_warnings_without_personal_data(
    clock_admin: tuple[Admin, Clock],
) -> None:
    admin, clock = clock_admin
    await _seed(admin, clock)
    node = admin.node
    node.pollers[0].failing, node.pollers[0].last_error = True, "AuthError"
    node.paused.add("12351")
    node.supervisor.states["reconciler"] = TaskState(
        "reconciler", crashes=3, last_error="RuntimeError", failing_since=1.0
    )

    _, _, body = await admin.get("/api/v1/status", token=READ)

    assert [(p["severity"], p["what"]) for p in body["problems"]] == [
        ("error", "feed 12345/dispatched"),
        ("error", "target 12351"),
        ("error", "task reconciler"),
        ("warning", "dead letters"),
        ("warning", "sla"),
        ("warning", "outbox"),
    ]
    details = [p["detail"] for p in body["problems"]]
    assert "AuthError" in details[0] and "3 crashes" in details[2]
    assert details[3].startswith("4 parked") and details[4].startswith("2 deadlines")
    assert "90s" in details[5]
    assert body["sides"]["12351"]["paused"] is True
    text = str(body)
    for secret in ("王小明", "13912345678", "BJ12345-20261130"):
        assert secret not in text


async def test_a_quiet_node_has_no_problems_and_zero_figures(
    clock_admin: tuple[Admin, Clock],
) -> None:
    admin, _ = clock_admin
    for poller in admin.node.pollers:
        poller.last_success = T0
    _, _, body = await admin.get("/api/v1/status", token=READ)
    assert body["problems"] == []
    assert body["outbox"] == {"depth": 0, "oldest_age_s": None}
    assert body["dead_letters"] == {"parked": 0, "by_reason": []}
    assert (body["early_warnings_open"], body["sla"]) == (0, {"at_risk": 0, "breached": 0})
    assert body["last_reconciliation"] is None
    assert [f["lag_s"] for s in body["sides"].values() for f in s["feeds"]] == [0.0, 0.0]


async def test_an_outbox_younger_than_a_minute_is_no_problem(
    clock_admin: tuple[Admin, Clock],
) -> None:
    admin, clock = clock_admin
    clock.now = T0 - timedelta(seconds=59)
    async with admin.node.store.begin() as tx:
        await tx.enqueue(OutboxMessage("12345:BJ1", "to.12351.normal.0", b"{}"))
    clock.now = T0
    _, _, body = await admin.get("/api/v1/status", token=READ)
    assert body["outbox"] == {"depth": 1, "oldest_age_s": 59.0}
    assert body["problems"] == []


async def test_the_status_answers_when_the_store_does_not(tmp_path: Path) -> None:
    async with admin_node(tmp_path) as admin:
        await admin.node.store.aclose()
        status, _, body = await admin.get("/api/v1/status", token=READ)
    assert status == 200
    assert body["problems"][0] == {
        "severity": "error",
        "what": "store",
        "detail": "unreachable: RuntimeError",
    }
    assert body["outbox"] is body["dead_letters"] is body["sla"] is None
    assert body["early_warnings_open"] is None and body["last_reconciliation"] is None
    assert set(body["sides"]) == {"12345", "12351"}
