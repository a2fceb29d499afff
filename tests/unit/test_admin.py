"""The admin server over real HTTP on port 0: /livez, /readyz and /metrics of a node
made of a real store and supervisor and fakes of the broker and the feed pollers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge.admin import serve_admin
from bridge.config import Settings
from bridge.store import DeadLetterIn, OutboxMessage, ReferralRow
from tests.unit.adminkit import Admin, admin_node


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[Admin]:
    async with admin_node(tmp_path) as admin:
        yield admin


async def test_livez_answers_live(admin: Admin) -> None:
    assert await admin.get("/livez") == (200, "application/json", {"status": "live"})


async def test_readyz_is_200_when_every_check_is_ok(admin: Admin) -> None:
    status, _, body = await admin.get("/readyz")
    assert status == 200
    assert body["status"] == "ready"
    assert set(body["checks"]) == {
        "store",
        "broker",
        "consumers.12345",
        "consumers.12351",
        "hotline.12345",
        "hotline.12351",
    }
    assert set(body["checks"].values()) == {"ok"}


async def test_readyz_names_a_crashing_task(admin: Admin) -> None:
    async def crash() -> None:
        raise OSError("disk full at /home/张三")

    admin.node.spawn("poller.12345.dispatched", crash)
    await asyncio.sleep(0.1)
    status, content_type, body = await admin.get("/readyz")
    assert (status, content_type) == (503, "application/problem+json")
    assert body["title"] == "not ready" and body["status"] == 503 and body["type"]
    check = body["checks"]["task.poller.12345.dispatched"]
    assert check.startswith("crashing: OSError, ") and "crashes" in check
    assert "张三" not in str(body)
    assert body["checks"]["store"] == "ok"


async def test_readyz_names_a_paused_hotline(admin: Admin) -> None:
    admin.node.paused.add("12351")
    admin.node.transport.states["12351"] = "paused"  # type: ignore[attr-defined]
    status, _, body = await admin.get("/readyz")
    assert status == 503
    assert body["checks"]["hotline.12351"].startswith("unavailable")
    assert body["checks"]["consumers.12351"] == "paused"
    assert body["checks"]["hotline.12345"] == "ok"


async def test_readyz_names_a_failing_feed(admin: Admin) -> None:
    poller: Any = admin.node.pollers[1]
    poller.failing, poller.last_error = True, "Unavailable"
    status, _, body = await admin.get("/readyz")
    assert status == 503
    assert body["checks"]["hotline.12351"] == "failing: feed changes (Unavailable)"


async def test_readyz_names_the_store_when_it_is_closed(admin: Admin) -> None:
    await admin.node.store.aclose()
    status, _, body = await admin.get("/readyz")
    assert status == 503
    assert body["checks"]["store"] == "unreachable: RuntimeError"
    assert body["checks"]["broker"] == "ok"


async def test_readyz_names_the_broker_when_it_is_down(admin: Admin) -> None:
    admin.node.transport.connected = False  # type: ignore[misc]
    status, _, body = await admin.get("/readyz")
    assert status == 503 and body["checks"]["broker"] == "down"


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample(family: Any, **labels: str) -> float:
    values = [s.value for s in family.samples if s.labels == labels]
    assert len(values) == 1, (labels, family.samples)
    return values[0]


async def test_metrics_carry_the_store_and_runtime_families(admin: Admin) -> None:
    store = admin.node.store
    async with store.begin() as tx:
        await tx.upsert_referral(
            ReferralRow("12345:BJ1", "12345", {"12345": "BJ1"}, "created", numbers={"12351": "BJ1"})
        )
        await tx.upsert_referral(ReferralRow("12351:C1", "12351", {"12351": "C1"}, "created"))
        await tx.enqueue(OutboxMessage("12345:BJ1", "12351.normal.0", b"{}"))
        await tx.park(DeadLetterIn("12351", "apply", "refused", {"x": 1}, "12345:BJ1"))
    admin.node.paused.add("12351")
    budget = admin.node.sides["12345"].budget
    assert budget is not None
    budget.outcomes.update({"ok": 3, "rate_limited": 1})
    await admin.get("/livez")

    status, content_type, text = await admin.get("/metrics")
    assert (status, content_type) == (200, "text/plain")
    found = families(text)
    p = "hotline_bridge_"
    assert sample(found[p + "referrals"], direction="12345-12351", state="created") == 1
    assert sample(found[p + "referrals"], direction="12351-12345", state="created") == 1
    assert sample(found[p + "outbox_depth"]) == 1
    assert sample(found[p + "outbox_oldest_age_seconds"]) >= 0
    assert sample(found[p + "dead_letters_parked"], system="12351", stage="apply") == 1
    assert sample(found[p + "store_up"]) == 1
    assert sample(found[p + "broker_connected"]) == 1
    assert sample(found[p + "feed_lag_seconds"], system="12345", feed="dispatched") >= 3
    assert sample(found[p + "feed_failing"], system="12351", feed="changes") == 0
    assert sample(found[p + "tasks_failing"]) == 0
    assert sample(found[p + "target_paused"], system="12351") == 1
    assert sample(found[p + "target_paused"], system="12345") == 0
    requests = found[p + "hotline_requests"]
    assert requests.type == "counter"
    assert sample(requests, system="12345", outcome="rate_limited") == 1
    assert sample(requests, system="12345", outcome="ok") == 3
    admin_requests = found[p + "admin_requests"]
    assert sample(admin_requests, route="/livez", method="GET", status="200") == 1
    assert "BJ1" not in text and "C1" not in text


async def test_metrics_still_answer_when_the_store_is_closed(admin: Admin) -> None:
    await admin.node.store.aclose()
    status, _, text = await admin.get("/metrics")
    found = families(text)
    assert status == 200
    assert sample(found["hotline_bridge_store_up"]) == 0
    assert "hotline_bridge_referrals" not in found


async def test_an_unknown_path_is_counted_without_its_text(admin: Admin) -> None:
    status, _, _ = await admin.get("/referrals/12345:BJ12345-0001")
    assert status == 404
    _, _, text = await admin.get("/metrics")
    assert "BJ12345" not in text
    assert 'route="unmatched"' in text


async def test_disabled_admin_serves_nothing(tmp_path: Path) -> None:
    settings = Settings(admin={"enabled": False})
    node: Any = type("N", (), {"settings": settings})()
    async with AsyncExitStack() as stack:
        assert await serve_admin(node, stack) is None
