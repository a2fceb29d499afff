"""`GET /api/v1/referrals` and `GET /api/v1/referrals/{referral_id}` over real HTTP, on
SQLite and PostgreSQL: pages without repeats or gaps while referrals are added, each
filter, lookup by either side's number or id, both native statuses and the timeline,
masking for read tokens and for confidential callers, audited unmasked reads."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.admin.api import encode_cursor
from bridge.admin.auth import fingerprint
from bridge.store import ActionRow, DeadLetterIn, ReferralRow
from bridge.store.tables import sla_deadlines
from tests.unit.adminkit import (
    OPERATE,
    READ,
    T0,
    Admin,
    admin_node,
)
from tests.unit.adminkit import MovableClock as Clock

NAME, PHONE, TEXT = "张伟", "13800138000", "公司拖欠工资三个月"
SECRET_NAME, SECRET_PHONE = "李秘密", "13600136000"
A, B, C = (
    "12345:BJ12345-20261130-000001",
    "12351:12351-2026-0000002",
    "12345:BJ12345-20261130-000003",
)


def _snapshot(rid: str, source: str, **fields: Any) -> dict[str, Any]:
    origin, _, number = rid.partition(":")
    return {
        "referral_id": rid,
        "origin": origin,
        "source": source,
        "source_version": 1,
        "numbers": {origin: number},
        "ids": {},
        "native_status": "12",
        "priority": "normal",
        "district_code": None,
        "caller": {"name": NAME, "phone": PHONE, "confidential": False},
        "text": TEXT,
        **fields,
    }


async def _seed(admin: Admin, clock: Clock) -> None:
    """A: 12345-origin, early warning, breached, a parked letter, a case on 12351.
    B: 12351-origin, an order on 12345, at risk, a discarded letter.
    C: 12345-origin, closed, urgent, a confidential caller, changed last."""
    store = admin.node.store
    clock.now = T0
    async with store.begin() as tx:
        await tx.upsert_referral(
            ReferralRow(
                referral_id=A,
                origin_system="12345",
                ids={"12345": "BJ12345-20261130-000001", "12351": "uuid-a"},
                state="delivered",
                early_warning=True,
                numbers={"12351": "12351-2026-0000001"},
                last_snapshot=_snapshot(
                    A, "12345", priority="early_warning", district_code="110108"
                ),
            )
        )
        await tx.add_event(A, "12345", "snapshot.read", {"version": 1, "status": "12"})
    clock.now = T0 + timedelta(seconds=1)
    async with store.begin() as tx:
        await tx.upsert_referral(
            ReferralRow(
                referral_id=B,
                origin_system="12351",
                ids={"12351": "uuid-b", "12345": "BJ12345-20261130-000777"},
                state="in_progress",
                numbers={"12351": "12351-2026-0000002"},
                last_snapshot=_snapshot(
                    B, "12351", district_code="110105", native_status="handling"
                ),
            )
        )
        await tx.record_action(
            ActionRow(
                A,
                "12351",
                "create",
                "create",
                "applied",
                {"native_id": "uuid-a", "attempt": 2, "mapping": "9f3c0a", "note": PHONE},
            )
        )
        await tx.add_event(
            A, "12345", "snapshot.read", {"version": 2, "status": "21", "mapping": "9f3c0a"}
        )
        await tx.add_event(A, "12351", "not_forwarded", {"version": 4, "status": "accepted"})
        parked = await tx.park(
            DeadLetterIn(
                system="12351",
                stage="apply",
                reason="case 12351-2026-0000001: refused",
                payload={"snapshot": {"caller": {"name": NAME}}, "mapping": "9f3c0a"},
                referral_id=A,
                field="district_code",
                attempts=3,
            )
        )
        closed = await tx.park(
            DeadLetterIn(system="12345", stage="apply", reason="x", payload={}, referral_id=B)
        )
        await tx.connection.execute(
            sa.insert(sla_deadlines),
            [
                {"referral_id": rid, "kind": kind, "system": system, "state": state}
                | {"due_at": T0 + timedelta(hours=hours), "changed_at": T0}
                for rid, kind, system, state, hours in [
                    (A, "answer", "12351", "breached", 1),
                    (A, "sign", "12351", "met", 2),
                    (B, "answer", "12345", "at_risk", 3),
                ]
            ],
        )
    await store.set_dead_letter_status(closed, "discarded")
    assert parked
    clock.now = T0 + timedelta(seconds=10)
    async with store.begin() as tx:
        secret = {"name": SECRET_NAME, "phone": SECRET_PHONE, "confidential": True}
        await tx.upsert_referral(
            ReferralRow(
                referral_id=C,
                origin_system="12345",
                ids={"12345": "BJ12345-20261130-000003"},
                state="closed",
                last_snapshot=_snapshot(
                    C, "12345", priority="urgent", district_code="110108", caller=secret
                ),
            )
        )


async def _ids(admin: Admin, query: str, token: str = READ) -> list[str]:
    status, _, body = await admin.get(f"/api/v1/referrals?{query}", token=token)
    assert status == 200, body
    return [item["referral_id"] for item in body["items"]]


async def test_pages_have_no_repeats_or_gaps_while_referrals_are_added(
    clock_admin: tuple[Admin, Clock],
) -> None:
    admin, clock = clock_admin
    store = admin.node.store
    originals: list[tuple[datetime, str]] = []
    for n in range(120):
        clock.now = T0 + timedelta(seconds=n // 3)  # three share each created_at
        rid = f"12345:BJ12345-20261130-{(n * 37) % 1000:06d}"
        async with store.begin() as tx:
            await tx.upsert_referral(
                ReferralRow(rid, "12345", {"12345": rid[6:]}, "delivered", last_snapshot={})
            )
        originals.append((clock.now, rid))
    seen: list[str] = []
    cursor, pages, added = "", 0, 0
    while True:
        status, _, page = await admin.get(f"/api/v1/referrals?limit=25{cursor}", token=READ)
        assert status == 200
        seen += [item["referral_id"] for item in page["items"]]
        pages += 1
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
        for _ in range(3):  # new referrals arrive between two pages
            clock.now += timedelta(milliseconds=1)
            added += 1
            async with store.begin() as tx:
                await tx.upsert_referral(
                    ReferralRow(f"12351:12351-2026-{added:07d}", "12351", {}, "opened")
                )
    expected = [rid for _, rid in sorted(originals, key=lambda p: (-p[0].timestamp(), p[1]))]
    originals_seen = [rid for rid in seen if rid.startswith("12345:")]
    assert originals_seen == expected  # each once, newest first, ties by id
    assert len(seen) == len(set(seen)) and pages == 5 and added == 12


async def test_each_filter_selects_what_it_names(clock_admin: tuple[Admin, Clock]) -> None:
    admin, clock = clock_admin
    await _seed(admin, clock)
    assert await _ids(admin, "") == [C, B, A]
    assert await _ids(admin, "state=delivered") == [A]
    assert await _ids(admin, "state=closed") == [C]
    assert await _ids(admin, "direction=12345-12351") == [C, A]
    assert await _ids(admin, "direction=12351-12345") == [B]
    assert await _ids(admin, "direction=12345-12345") == []
    assert await _ids(admin, "district=110108") == [C, A]
    assert await _ids(admin, "priority=urgent") == [C]
    assert await _ids(admin, "priority=early_warning") == [A]
    assert await _ids(admin, "early_warning=true") == [A]
    assert await _ids(admin, "early_warning=false") == [C, B]
    assert await _ids(admin, "overdue=true") == [A]
    assert await _ids(admin, "overdue=false") == [C, B]
    assert await _ids(admin, "at_risk=true") == [B]
    assert await _ids(admin, "parked=true") == [A]
    assert await _ids(admin, "parked=false") == [C, B]
    since = (T0 + timedelta(seconds=5)).isoformat().replace("+00:00", "Z")
    assert await _ids(admin, f"updated_since={since}") == [C]
    assert await _ids(admin, "direction=12345-12351&district=110108&parked=false") == [C]
    _, _, body = await admin.get("/api/v1/referrals?overdue=true", token=READ)
    (item,) = body["items"]
    assert item["sla"] == [
        {
            "kind": "answer",
            "system": "12351",
            "due_at": "2026-11-30T10:00:00Z",
            "state": "breached",
        },
        {"kind": "sign", "system": "12351", "due_at": "2026-11-30T11:00:00Z", "state": "met"},
    ]
    assert item["parked"] == 1 and item["direction"] == "12345-12351"
    assert item["ids"] == {"12345": "BJ12345-20261130-000001", "12351": "uuid-a"}
    assert item["numbers"] == {"12345": "BJ12345-20261130-000001", "12351": "12351-2026-0000001"}
    assert (item["priority"], item["district_code"], item["early_warning"]) == (
        "early_warning",
        "110108",
        True,
    )


@pytest.mark.parametrize(
    "query",
    ["state=dispatched", "priority=high", "direction=12345", "overdue=maybe", "cursor=e30"],
)
async def test_an_invalid_filter_or_cursor_is_a_400(tmp_path: Path, query: str) -> None:
    async with admin_node(tmp_path) as admin:  # refused before the store: SQLite is enough
        status, content_type, body = await admin.get(f"/api/v1/referrals?{query}", token=READ)
        assert (status, content_type) == (400, "application/problem+json")
        assert body["title"] == "invalid request"
        cursor = encode_cursor(["not a time", "12345:x"])
        status, _, _ = await admin.get(f"/api/v1/referrals?cursor={cursor}", token=READ)
        assert status == 400
        status, _, body = await admin.get("/api/v1/referrals/12345:BJ1?nonsense=1", token=READ)
        assert (status, body["errors"][0]["loc"]) == (400, "query.nonsense")


FOUND_BY = [
    (A, A),  # the referral id
    ("12351:12351-2026-0000001", A),  # the 12351 case number of a 12345 order
    ("12351:uuid-a", A),  # the 12351 native id
    ("12345:BJ12345-20261130-000777", B),  # the 12345 order number of a 12351 case
    ("12351:uuid-b", B),
    ("12351%3A12351-2026-0000002", B),  # a URL-encoded colon
    ("12345%3ABJ12345-20261130-000003", C),
]
NOT_FOUND = ["12351:12351-2026-9999999", "12345:uuid-b", "nocolon", "12345:", ":BJ1"]


async def test_a_referral_is_found_by_either_sides_number_or_id_else_404(
    clock_admin: tuple[Admin, Clock],
) -> None:
    admin, clock = clock_admin
    await _seed(admin, clock)
    for path, expected in FOUND_BY:
        status, _, body = await admin.get(f"/api/v1/referrals/{path}", token=READ)
        assert (status, body["referral_id"]) == (200, expected), path
    for path in NOT_FOUND:
        status, content_type, body = await admin.get(f"/api/v1/referrals/{path}", token=READ)
        assert (status, content_type, body["title"]) == (
            404,
            "application/problem+json",
            "not found",
        ), path


async def test_the_detail_shows_both_sides_statuses_timeline_and_letters(
    clock_admin: tuple[Admin, Clock],
) -> None:
    admin, clock = clock_admin
    await _seed(admin, clock)
    status, _, body = await admin.get(f"/api/v1/referrals/{A}", token=READ)
    assert status == 200
    assert body["native_status"] == {"12345": "21", "12351": "accepted"}
    assert [(e["system"], e["kind"]) for e in body["timeline"]] == [
        ("12345", "snapshot.read"),
        ("12351", "create"),
        ("12345", "snapshot.read"),
        ("12351", "not_forwarded"),
        ("12351", "parked"),
    ]
    create = body["timeline"][1]
    assert (create["outcome"], create["attempt"], create["mapping"]) == ("applied", 2, "9f3c0a")
    assert create["detail"] == {"native_id": "uuid-a", "key": "create", "note": "***"}
    assert body["timeline"][2]["mapping"] == "9f3c0a" and body["timeline"][0]["mapping"] is None
    assert body["timeline"][0]["detail"] == {"version": 1, "status": "12"}
    assert body["timeline"][0]["at"] == "2026-11-30T09:00:00Z"
    (letter,) = body["dead_letters"]
    assert (letter["status"], letter["stage"], letter["field"], letter["attempts"]) == (
        "parked",
        "apply",
        "district_code",
        3,
    )
    assert letter["mapping"] == "9f3c0a" and "payload" not in letter
    assert body["snapshot"]["district_code"] == "110108"
    assert body["sla"][0]["state"] == "breached" and body["parked"] == 1


async def test_a_read_token_sees_no_personal_data(clock_admin: tuple[Admin, Clock]) -> None:
    admin, clock = clock_admin
    await _seed(admin, clock)
    texts = []
    for path in ["/api/v1/referrals", f"/api/v1/referrals/{A}", f"/api/v1/referrals/{C}"]:
        status, _, body = await admin.get(path, token=READ)
        assert status == 200
        texts.append(json.dumps(body, ensure_ascii=False))
    for secret in (NAME, PHONE, TEXT, SECRET_NAME, SECRET_PHONE):
        assert all(secret not in text for text in texts), secret
    _, _, body = await admin.get(f"/api/v1/referrals/{A}", token=READ)
    assert body["snapshot"]["caller"] == {"name": "***", "phone": "***", "confidential": False}
    assert await admin.node.store.list_audit() == []  # a masked read is not audited


async def test_unmask_shows_personal_data_to_operate_and_is_audited(
    clock_admin: tuple[Admin, Clock],
) -> None:
    admin, clock = clock_admin
    await _seed(admin, clock)
    status, _, body = await admin.get(f"/api/v1/referrals/{A}?unmask=true", token=OPERATE)
    assert status == 200
    assert body["snapshot"]["caller"] == {"name": NAME, "phone": PHONE, "confidential": False}
    assert body["snapshot"]["text"] == TEXT
    assert body["timeline"][1]["detail"]["note"] == PHONE
    (row,) = await admin.node.store.list_audit()
    assert (row.token, row.operation, row.status) == (fingerprint(OPERATE), "showReferral", 200)
    assert row.detail["unmask"] is True and row.detail["referral_id"] == A
    status, content_type, _ = await admin.get(f"/api/v1/referrals/{A}?unmask=true", token=READ)
    assert (status, content_type) == (403, "application/problem+json")
    status, _, _ = await admin.get("/api/v1/referrals?unmask=true", token=OPERATE)
    assert status == 200
    audited = [(a.operation, a.role, a.status) for a in await admin.node.store.list_audit()]
    assert audited == [  # newest first; the refused attempt is audited too
        ("listReferrals", "operate", 200),
        ("showReferral", "read", 403),
        ("showReferral", "operate", 200),
    ]


async def test_a_confidential_callers_identity_stays_masked_even_unmasked(
    clock_admin: tuple[Admin, Clock],
) -> None:
    admin, clock = clock_admin
    await _seed(admin, clock)
    status, _, body = await admin.get(f"/api/v1/referrals/{C}?unmask=true", token=OPERATE)
    assert status == 200
    assert body["snapshot"]["caller"] == {"name": "***", "phone": "***", "confidential": True}
    assert body["snapshot"]["text"] == TEXT  # the case text is not the caller's identity
    text = json.dumps(body, ensure_ascii=False)
    assert SECRET_NAME not in text and SECRET_PHONE not in text
