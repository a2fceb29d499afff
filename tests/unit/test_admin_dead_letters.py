"""Fixing what failed over the admin API, on a node of a real store and fakes: dead
letters listed by filter in stable pages and masked for `read`, replayed one by one or
by filter as a job that reports its progress, discarded; reconciliation runs started
with 202, followed while they run, and a dry run that writes nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from adapters.base import FeedPage
from adapters.errors import NotFound, TransientError
from bridge.admin import jobs
from bridge.app import topology_of
from bridge.mapping import MappingTables, case_to_referral
from bridge.partners import Side
from bridge.partners.hotline12351.side import Intake12351
from bridge.reconcile import KINDS, Reconciler
from bridge.store import DeadLetterIn, ReferralRow, Store, tables
from schemas.hotline12351 import Case
from tests.unit.adminkit import OPERATE, READ, Admin, admin_node

NAME, PHONE = "张三", "13800138000"
TABLES = MappingTables.default()


@dataclass
class FakeRelay:
    kicks: int = 0

    def kick(self) -> None:
        self.kicks += 1


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[Admin]:
    async with admin_node(tmp_path) as admin:
        admin.node.relay = FakeRelay()  # type: ignore[assignment]
        yield admin


def transport_letter(**changes: Any) -> DeadLetterIn:
    """A message parked by the broker: replayable without any hotline."""
    body = {"caller": {"name": NAME, "phone": PHONE}, "text": "Zhang San: wages owed"}
    values: dict[str, Any] = {
        "system": "12351",
        "stage": "transport",
        "reason": "over the delivery limit (case BJ12345-20261129-000001)",
        "payload": {
            "message_id": "m-1",
            "routing_key": "to12351.shard0",
            "body": json.dumps(body, ensure_ascii=False),
        },
        "referral_id": "12345:BJ12345-20261129-000001",
    }
    return DeadLetterIn(**{**values, **changes})


async def park(store: Store, letter: DeadLetterIn | None = None, **changes: Any) -> int:
    async with store.begin() as tx:
        return await tx.park(letter or transport_letter(**changes))


async def wait_for(admin: Admin, path: str, done: Any, what: str) -> dict[str, Any]:
    """GET `path` until `done(body)`; the last body."""
    for _ in range(300):
        status, _, body = await admin.get(path, token=READ)
        assert status == 200, body
        if done(body):
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}: {body}")


# listing ------------------------------------------------------------------------------


async def test_the_list_filters_by_status_system_stage_reason_time_and_referral(
    admin: Admin,
) -> None:
    store = admin.node.store
    a = await park(store)
    b = await park(store, system="12345", stage="apply", reason="Category X9 refused")
    c = await park(store, referral_id="12351:12351-2026-0000002")
    d = await park(store)
    await store.set_dead_letter_status(d, "discarded")
    created = {i: (await store.get_dead_letter(i)).created_at for i in (a, b, c)}  # type: ignore[union-attr]

    async def ids(query: str = "") -> list[int]:
        status, _, page = await admin.get(f"/api/v1/dead-letters?{query}", token=READ)
        assert status == 200, page
        return [item["id"] for item in page["items"]]

    assert await ids() == [a, b, c]
    assert await ids("status=any") == [a, b, c, d]
    assert await ids("status=discarded") == [d]
    assert await ids("system=12345") == [b] and await ids("stage=apply") == [b]
    assert await ids("reason=category%20x9") == [b]
    assert await ids("referral_id=12351%3A12351-2026-0000002") == [c]
    since = created[b].isoformat().replace("+00:00", "Z")
    assert await ids(f"since={since}") == [b, c]
    assert await ids(f"until={since}") == [a]
    status, content_type, problem = await admin.get("/api/v1/dead-letters?stage=x", token=READ)
    assert (status, content_type) == (400, "application/problem+json")
    assert problem["errors"][0]["loc"] == "query.stage"
    status, _, problem = await admin.get("/api/v1/dead-letters?since=2026-12-01T10:00", token=READ)
    assert status == 400 and problem["errors"][0]["loc"] == "query.since"  # no offset


async def test_pages_have_no_repeats_or_gaps_while_letters_are_parked(admin: Admin) -> None:
    store = admin.node.store
    for _ in range(7):
        await park(store)
    seen: list[int] = []
    cursor = ""
    while True:
        status, _, page = await admin.get(f"/api/v1/dead-letters?limit=3{cursor}", token=READ)
        assert status == 200 and len(page["items"]) <= 3
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
        await park(store)  # parked between two pages
    every = [row.id for row in await store.list_dead_letters(status="parked", limit=100)]
    assert len(every) == 7 + 2  # a letter parked after each of the first two pages
    assert seen == every


async def test_a_read_sees_payloads_masked_an_operate_unmask_is_audited(admin: Admin) -> None:
    letter_id = await park(admin.node.store)
    for path in ("/api/v1/dead-letters", f"/api/v1/dead-letters/{letter_id}"):
        status, _, body = await admin.get(path, token=READ)
        assert status == 200
        text = json.dumps(body, ensure_ascii=False)
        assert NAME not in text and PHONE not in text and "Zhang San" not in text
        assert "BJ12345-20261129-000001" in text  # identifiers stay
    status, _, shown = await admin.get(f"/api/v1/dead-letters/{letter_id}", token=READ)
    assert shown["payload"]["routing_key"] == "to12351.shard0"
    assert json.loads(shown["payload"]["body"])["caller"] == {"name": "***", "phone": "***"}

    status, _, _ = await admin.get(f"/api/v1/dead-letters/{letter_id}?unmask=true", token=READ)
    assert status == 403
    status, _, shown = await admin.get(
        f"/api/v1/dead-letters/{letter_id}?unmask=true", token=OPERATE
    )
    assert status == 200 and json.loads(shown["payload"]["body"])["caller"]["phone"] == PHONE
    audit = await admin.node.store.list_audit(operation="showDeadLetter")
    assert [(a.status, a.detail.get("unmask"), a.detail.get("letter_id")) for a in audit] == [
        (200, True, letter_id),
        (403, True, None),  # the refused attempt too
    ]


async def test_a_publish_letters_base64_body_is_not_shown_to_read(admin: Admin) -> None:
    letter = transport_letter(
        stage="publish", payload={"routing_key": "to12351.shard0", "body_b64": "eyJhIjogMX0="}
    )
    letter_id = await park(admin.node.store, letter)
    _, _, shown = await admin.get(f"/api/v1/dead-letters/{letter_id}", token=READ)
    assert shown["payload"]["body_b64"] == "***"


# replay and discard -------------------------------------------------------------------


async def test_a_replay_queues_the_message_again_kicks_the_relay_and_is_audited(
    admin: Admin,
) -> None:
    store = admin.node.store
    letter_id = await park(store)
    status, _, body = await admin.post(f"/api/v1/dead-letters/{letter_id}/replay", {})
    assert status == 200, body
    assert body == {"id": letter_id, "status": "replayed", "outcome": "message queued again"}
    [queued] = await store.outbox_pending()
    assert queued.routing_key == "to12351.shard0" and queued.headers["x-bridge-replay"] is True
    assert admin.node.relay.kicks == 1  # type: ignore[attr-defined]
    [row] = await store.list_audit(operation="replayDeadLetter")
    assert (row.status, row.detail["letter_id"], row.detail["mapping"]) == (
        200,
        letter_id,
        "current",
    )

    status, content_type, problem = await admin.post(
        f"/api/v1/dead-letters/{letter_id}/replay", {"mapping": "current"}
    )
    assert (status, content_type) == (409, "application/problem+json")
    assert "replayed, not parked" in problem["detail"]


async def test_replay_and_discard_of_unknown_or_closed_letters_are_problems(
    admin: Admin,
) -> None:
    store = admin.node.store
    for path in ("/api/v1/dead-letters/999", "/api/v1/dead-letters/abc"):
        status, content_type, problem = await admin.get(path, token=READ)
        assert (status, content_type, problem["status"]) == (404, "application/problem+json", 404)
    for action in ("replay", "discard"):
        status, _, problem = await admin.post(f"/api/v1/dead-letters/999/{action}", {})
        assert status == 404 and problem["detail"] == "no dead letter 999"
    discarded = await park(store)
    await store.set_dead_letter_status(discarded, "discarded")
    for action in ("replay", "discard"):
        status, _, problem = await admin.post(f"/api/v1/dead-letters/{discarded}/{action}", {})
        assert status == 409 and problem["detail"].endswith("is discarded, not parked")
    parked = await park(store, payload={"nothing": "here"})
    status, _, problem = await admin.post(f"/api/v1/dead-letters/{parked}/replay", {})
    assert status == 409 and "nothing that can be replayed" in problem["detail"]
    corrupt = await park(
        store, stage="apply", payload={"snapshot": {"caller": {"name": NAME, "phone": PHONE}}}
    )
    status, _, problem = await admin.post(f"/api/v1/dead-letters/{corrupt}/replay", {})
    assert status == 409 and "ValidationError" in problem["detail"]
    assert PHONE not in json.dumps(problem) and NAME not in json.dumps(problem)
    status, _, problem = await admin.post(
        f"/api/v1/dead-letters/{parked}/replay", {"mapping": "original"}
    )  # it recorded no mapping tables
    assert status == 409 and "current tables only" in problem["detail"], problem
    status, _, problem = await admin.post(
        f"/api/v1/dead-letters/{parked}/replay", {"mapping": "yesterday"}
    )
    assert status == 400


async def test_a_discard_keeps_its_reason_in_the_audit_only(admin: Admin) -> None:
    store = admin.node.store
    letter_id = await park(store)
    before = await store.get_dead_letter(letter_id)
    why = "来电人张三要求撤回 (duplicate of BJ12345-20261129-000002)"
    status, _, body = await admin.post(f"/api/v1/dead-letters/{letter_id}/discard", {"reason": why})
    assert status == 200 and body["status"] == "discarded" and body["id"] == letter_id
    after = await store.get_dead_letter(letter_id)
    assert after is not None and before is not None
    assert after.status == "discarded" and after.reason == before.reason
    [row] = await store.list_audit(operation="discardDeadLetter")
    assert row.detail["reason"] == why and row.detail["letter_id"] == letter_id
    _, _, page = await admin.get("/api/v1/audit?operation=discardDeadLetter", token=READ)
    shown = page["items"][0]["detail"]["reason"]
    assert NAME not in shown and "BJ12345-20261129-000002" in shown  # masked for read
    _, _, page = await admin.get(
        "/api/v1/audit?operation=discardDeadLetter&unmask=true", token=OPERATE
    )
    assert page["items"][0]["detail"]["reason"] == why


# replay by filter: a job --------------------------------------------------------------


@dataclass
class GatedHotline:
    """A 12345 whose `fetch` waits until the test opens the gate."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    system: str = "12345"
    broken: bool = False

    async def fetch(self, key: str) -> dict[str, Any]:
        if self.broken:
            raise RuntimeError("a bug in the adapter")
        await self.gate.wait()
        return {"orderNo": key}


class RecordIntake:
    """An intake policy to which every record is nothing to forward."""

    system = "12345"

    def parse(self, data: dict[str, Any]) -> dict[str, Any]:
        return data

    def fetch_key(self, record: dict[str, Any]) -> str:
        return str(record["orderNo"])

    async def take(self, feed: str, record: Any, tx: Any, read_at: Any, **_: Any) -> None:
        return None


def intake_letter(n: int) -> DeadLetterIn:
    return DeadLetterIn(
        system="12345",
        stage="intake",
        reason=f"content: too long (case BJ{n})",
        payload={"feed": "dispatched", "record": {"orderNo": f"BJ{n}"}},
    )


def gate_12345(admin: Admin, hotline: GatedHotline) -> None:
    admin.node.sides["12345"] = Side("12345", hotline, RecordIntake(), None)  # type: ignore[arg-type]


async def test_a_replay_by_filter_is_a_job_that_reports_its_progress(admin: Admin) -> None:
    store = admin.node.store
    hotline = GatedHotline()
    gate_12345(admin, hotline)
    first = [await park(store, system="12345") for _ in range(49)]
    broken = await park(store, system="12345", payload={"nothing": "here"})
    gated = [await park(store, intake_letter(n)) for n in range(10)]  # the second batch
    others = [await park(store, system="12351") for _ in range(3)]

    status, _, job = await admin.post(
        "/api/v1/dead-letters/replay", {"filter": {"system": "12345"}, "mapping": "current"}
    )
    assert status == 202, job
    assert (job["kind"], job["status"], job["done"], job["failed"]) == ("replay", "queued", 0, 0)
    path = f"/api/v1/jobs/{job['id']}"
    running = await wait_for(admin, path, lambda j: j["done"] == 49, "the first batch")
    assert (running["status"], running["total"], running["failed"]) == ("running", 60, 1)
    assert running["finished_at"] is None
    late = await park(store, system="12345")  # parked after the job began: not in it

    hotline.gate.set()
    finished = await wait_for(admin, path, lambda j: j["status"] != "running", "the job's end")
    assert (finished["status"], finished["total"], finished["done"], finished["failed"]) == (
        "done",
        60,
        59,
        1,
    )
    assert finished["finished_at"] is not None
    [failure] = finished["result"]["failures"]
    assert failure["letter_id"] == broken and "nothing that can be replayed" in failure["error"]
    for letter_id in first + gated:
        assert (await store.get_dead_letter(letter_id)).status == "replayed"  # type: ignore[union-attr]
    for letter_id in [broken, late, *others]:
        assert (await store.get_dead_letter(letter_id)).status == "parked"  # type: ignore[union-attr]
    assert len(await store.outbox_pending(limit=500)) == 49
    assert admin.node.relay.kicks >= 2  # type: ignore[attr-defined]
    [row] = await store.list_audit(operation="replayDeadLetters")
    assert (row.status, row.detail["job_id"], row.detail["filter"]) == (
        202,
        job["id"],
        {"system": "12345"},
    )


async def test_a_replay_by_filter_wants_a_filter_of_parked_letters(admin: Admin) -> None:
    status, _, problem = await admin.post("/api/v1/dead-letters/replay", {})
    assert status == 400 and problem["errors"][0]["loc"] == "body.filter"
    status, _, problem = await admin.post(
        "/api/v1/dead-letters/replay", {"filter": {"status": "discarded"}}
    )
    assert status == 400 and problem["errors"][0]["loc"].startswith("body.filter.status")
    status, _, problem = await admin.post(
        "/api/v1/dead-letters/replay", {"filter": {}, "mapping": "yesterday"}
    )
    assert status == 400 and problem["errors"][0]["loc"] == "body.mapping"
    status, _, problem = await admin.get("/api/v1/jobs/424242", token=READ)
    assert status == 404 and problem["detail"] == "no job 424242"


async def test_a_job_whose_task_fails_is_failed_and_logged(admin: Admin) -> None:
    gate_12345(admin, GatedHotline(broken=True))
    await park(admin.node.store, intake_letter(1))
    with capture_logs() as logs:
        status, _, job = await admin.post("/api/v1/dead-letters/replay", {"filter": {}})
        assert status == 202
        failed = await wait_for(
            admin, f"/api/v1/jobs/{job['id']}", lambda j: j["status"] == "failed", "failure"
        )
    assert failed["result"] == {"error": "RuntimeError"} and failed["finished_at"] is not None
    crashed = [e for e in logs if e["event"] == "job.crashed"]
    assert crashed and crashed[0]["error"] == "RuntimeError"
    assert "a bug" not in json.dumps(logs, default=str)  # the type only, never the text


async def test_a_job_stops_with_the_node_and_a_restart_fails_what_was_left(
    tmp_path: Path,
) -> None:
    async with admin_node(tmp_path) as admin:
        admin.node.relay = FakeRelay()  # type: ignore[assignment]
        gate_12345(admin, GatedHotline())
        await park(admin.node.store, intake_letter(1))
        status, _, stopped = await admin.post("/api/v1/dead-letters/replay", {"filter": {}})
        assert status == 202
        await wait_for(
            admin, f"/api/v1/jobs/{stopped['id']}", lambda j: j["status"] == "running", "start"
        )
        left = await admin.node.store.create_job("replay", {"node": "test"}, "fp")
        await admin.node.store.start_job(left, 1)  # as if its node had been killed
    store = await Store.connect(f"sqlite:///{tmp_path / 'bridge.db'}")
    try:
        job = await store.get_job(stopped["id"])
        assert job is not None and job.status == "failed"
        assert job.result == {"error": "interrupted: the node stopped"}
        assert (await store.get_job(left)).status == "running"  # type: ignore[union-attr]
        node: Any = type("N", (), {"store": store, "node_id": "test"})()
        await jobs.recover(node)
        job = await store.get_job(left)
        assert job is not None and job.status == "failed"
        assert job.result == {"error": "interrupted by a restart"}
    finally:
        await store.aclose()


async def test_a_job_of_a_node_gone_is_failed_when_looked_at_once_stale(admin: Admin) -> None:
    store = admin.node.store
    fresh = await store.create_job("replay", {"node": "elsewhere"}, "fp")
    stale = await store.create_job("replay", {"node": "elsewhere"}, "fp")
    for job_id in (fresh, stale):
        await store.start_job(job_id, 1)
    long_ago = datetime.now(UTC) - timedelta(seconds=jobs.STALE_S + 1)
    async with store.begin() as tx:
        await tx.connection.execute(
            sa.update(tables.jobs).where(tables.jobs.c.id == stale).values(updated_at=long_ago)
        )
    _, _, shown = await admin.get(f"/api/v1/jobs/{fresh}", token=READ)
    assert shown["status"] == "running"  # its node may be at work
    _, _, shown = await admin.get(f"/api/v1/jobs/{stale}", token=READ)
    assert (shown["status"], shown["result"]) == ("failed", {"error": "interrupted by a restart"})


# reconciliations ----------------------------------------------------------------------


@dataclass
class CaseHotline:
    """A 12351 that has case c1, not c2, is down for c3, and holds c4 until the gate
    (then has it not either)."""

    case: Case
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    system: str = "12351"
    feeds: tuple[str, ...] = ("cases",)

    def window_position(self, feed: str, since: datetime) -> str:
        return "window"

    def read_up_to(self, feed: str, position: str | None) -> datetime | None:
        return None  # its feed has read nothing: every difference is reported

    async def read_feed(self, feed: str, position: str | None) -> FeedPage[Case]:
        return FeedPage([], "window")  # its feed lists nothing: every case is read

    async def fetch(self, native_id: str) -> Case:
        if native_id == "c2":
            raise NotFound("12351")
        if native_id == "c3":
            raise TransientError("12351", "503")
        if native_id == "c4":
            await self.gate.wait()
            raise NotFound("12351")
        return self.case


def case() -> Case:
    return Case.model_validate(
        {
            "id": "c1",
            "case_no": "12351-2026-0000001",
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
                "external_no": "BJ12345-20261129-000001",
                "deadline": "2026-12-06T09:20:03+08:00",
            },
        }
    )


async def reconciling(admin: Admin, hotline: CaseHotline) -> str:
    """A reconciler of a 12351 side over `hotline`, with referrals for c1..c4 in the
    ledger; returns c1's referral id."""
    node = admin.node
    side = Side("12351", hotline, Intake12351(tables=TABLES), None)  # type: ignore[arg-type]
    node.reconciler = Reconciler(
        store=node.store,
        sides={"12351": side},
        topology=topology_of(node.settings),
        systems=("12345", "12351"),
        node_id=node.node_id,
        interval_s=3600,
        progress_every_s=0,
    )
    c1 = case_to_referral(hotline.case, read_at=datetime.now(UTC), tables=TABLES).referral_id
    for n, referral_id in [(4, "r4"), (1, c1), (2, "r2"), (3, "r3")]:  # r4: the oldest,
        async with node.store.begin() as tx:  # read last (newest first), held by the gate
            await tx.upsert_referral(
                ReferralRow(referral_id, "12345", {"12351": f"c{n}"}, state="delivered")
            )
    return c1


async def test_a_dry_run_compares_and_counts_and_changes_nothing(admin: Admin) -> None:
    store = admin.node.store
    hotline = CaseHotline(case())
    c1 = await reconciling(admin, hotline)
    source_state = case_to_referral(hotline.case, read_at=datetime.now(UTC), tables=TABLES).state
    assert source_state != "delivered"  # what the dry run is to notice

    status, _, run = await admin.post("/api/v1/reconciliations", {"dry_run": True})
    assert status == 202, run
    assert (run["status"], run["dry_run"], run["trigger"], run["report"]) == (
        "running",
        True,
        "api",
        None,
    )
    path = f"/api/v1/reconciliations/{run['id']}"
    progress = await wait_for(admin, path, lambda r: r["counts"].get("missing", 0) == 1, "r2")
    assert progress["status"] == "running" and progress["finished_at"] is None
    assert progress["counts"]["checked"] >= 2 and progress["report"] is None
    status, _, problem = await admin.post("/api/v1/reconciliations", {})
    assert status == 409 and problem["title"] == "conflict"  # one at a time

    hotline.gate.set()
    done = await wait_for(admin, path, lambda r: r["status"] != "running", "the run's end")
    assert done["status"] == "done" and done["finished_at"] is not None
    assert done["counts"] == {
        **dict.fromkeys(KINDS, 0),
        "checked": 4,
        "listed": 0,
        "read": 4,
        "republished": 1,  # would be
        "repaired": 0,
        "changed": 1,
        "missing": 2,
        "failed": 1,
    }
    report = done["report"]
    assert report["dry_run"] is True and report["truncated"] is False
    items = {kind: [i for i in report["items"] if i["kind"] == kind] for kind in KINDS}
    assert sorted(m["referral_id"] for m in items["missing"]) == ["r2", "r4"]
    [failed] = items["failed"]
    assert (failed["referral_id"], failed["system"], failed["detail"]["error"]) == (
        "r3",
        "12351",
        "TransientError",
    )
    [changed] = items["changed"]
    assert changed["referral_id"] == c1 and changed["system"] == "12351"
    assert changed["detail"]["ledger_state"] == "delivered"
    assert changed["detail"]["source_state"] == source_state.value
    assert (changed["repaired"], changed["why"]) == (False, "dry run")
    assert changed["numbers"] == {"12345": "BJ12345-20261129-000001", "12351": "12351-2026-0000001"}
    # nothing written: no message queued, the ledger and the version seen unchanged
    assert await store.outbox_pending() == []
    assert (await store.get_referral(c1)).state == "delivered"  # type: ignore[union-attr]
    async with store.begin() as tx:
        assert await tx.get_seen("12351", "c1") is None
    refused, row = await store.list_audit(operation="startReconciliation")  # newest first
    assert (refused.status, row.status, row.detail["dry_run"]) == (409, 202, True)
    assert row.detail["run_id"] == run["id"]

    status, _, real = await admin.post("/api/v1/reconciliations", {"dry_run": False})
    assert status == 202 and real["dry_run"] is False
    done = await wait_for(
        admin, f"/api/v1/reconciliations/{real['id']}", lambda r: r["status"] == "done", "end"
    )
    assert done["counts"]["republished"] == 1 and done["counts"]["repaired"] == 1
    [changed] = [i for i in done["report"]["items"] if i["kind"] == "changed"]
    assert (changed["referral_id"], changed["repaired"], changed["why"]) == (c1, True, None)
    assert len(await store.outbox_pending()) == 1  # a real run queues the snapshot


async def test_reconciliation_problems(admin: Admin) -> None:
    status, _, problem = await admin.post("/api/v1/reconciliations", {"dry_run": True})
    assert status == 409 and problem["detail"] == "this node runs no reconciler"
    status, _, problem = await admin.get("/api/v1/reconciliations/77", token=READ)
    assert status == 404 and problem["detail"] == "no reconciliation run 77"
    status, _, problem = await admin.post("/api/v1/reconciliations", {"dry_run": "perhaps"})
    assert status == 400 and problem["errors"][0]["loc"] == "body.dry_run"
