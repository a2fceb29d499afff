"""Fixing what failed over the running node's admin API (real HTTP, RabbitMQ, both
simulators): a dead letter replayed once its cause is fixed at the source is delivered
at the target simulator, one by one or by filter as a job that reports its progress;
a dry-run reconciliation reports what it found and changes nothing at either side."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from harness import cases_from, order, replied_order, running_node, wait_until
from sim_actions import dispatch, order_action

from bridge.app import Node
from bridge.demo import Simulators

READ, OPERATE = "e2e-read-token", "e2e-operate-token"
ADMIN = {"tokens": {READ: "read", OPERATE: "operate"}}
TOO_LONG = "长" * 4001  # over 12345's own limit: parked at intake
REPAIRED = "来电人反映拖欠工资。"


class Api:
    """The node's admin API over HTTP."""

    def __init__(self, node: Node, http: aiohttp.ClientSession) -> None:
        assert node.admin_url is not None
        self.url, self.http = node.admin_url, http

    async def call(
        self, method: str, path: str, token: str = OPERATE, body: Any = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        async with self.http.request(method, self.url + path, headers=headers, json=body) as resp:
            return resp.status, await resp.json(content_type=None)

    async def get(self, path: str, token: str = READ) -> Any:
        status, body = await self.call("GET", path, token)
        assert status == 200, body
        return body

    async def parked(self, **query: str) -> list[dict[str, Any]]:
        params = "&".join(f"{k}={v}" for k, v in {"limit": "500", **query}.items())
        return (await self.get(f"/api/v1/dead-letters?{params}"))["items"]


@asynccontextmanager
async def node_and_api(sims: Simulators, tmp_path: Path) -> AsyncIterator[tuple[Node, Api]]:
    async with (
        running_node(sims, tmp_path, admin=ADMIN) as node,
        aiohttp.ClientSession() as http,
    ):
        yield node, Api(node, http)


async def test_a_replay_from_the_api_after_a_fix_at_the_source_is_delivered(
    sims: Simulators, tmp_path: Path
) -> None:
    async with node_and_api(sims, tmp_path) as (_, api):
        no = await dispatch(sims, content=TOO_LONG)

        async def parked_one() -> bool:
            return len(await api.parked()) == 1

        await wait_until(parked_one, what="parked at intake")
        [letter] = await api.parked()
        assert (letter["stage"], letter["field"], letter["system"]) == (
            "intake",
            "content",
            "12345",
        )
        assert no in letter["reason"] and "长" not in json.dumps(letter, ensure_ascii=False)

        sims.sim12345.orders[no]["content"] = REPAIRED  # the cause, fixed at 12345
        status, body = await api.call(
            "POST", f"/api/v1/dead-letters/{letter['id']}/replay", body={}
        )
        assert status == 200, body
        assert body["status"] == "replayed" and "queued again" in body["outcome"]
        await wait_until(lambda: len(cases_from(sims, no)) == 1, what="the case at 12351")
        await wait_until(lambda: order(sims, no)["orderStatus"] == "20", what="signed at 12345")
        status, body = await api.call(
            "POST", f"/api/v1/dead-letters/{letter['id']}/replay", body={}
        )
        assert status == 409 and "replayed, not parked" in body["detail"]


async def test_a_replay_by_filter_reports_its_progress_and_delivers_each(
    sims: Simulators, tmp_path: Path
) -> None:
    async with node_and_api(sims, tmp_path) as (_, api):
        numbers = [await dispatch(sims, content=TOO_LONG) for _ in range(3)]

        async def all_parked() -> bool:
            return len(await api.parked(stage="intake")) == 3

        await wait_until(all_parked, what="three parked at intake")
        for no in numbers:
            sims.sim12345.orders[no]["content"] = REPAIRED

        status, job = await api.call(
            "POST",
            "/api/v1/dead-letters/replay",
            body={"filter": {"system": "12345", "stage": "intake"}, "mapping": "current"},
        )
        assert status == 202, job
        assert job["status"] in ("queued", "running") and job["kind"] == "replay"
        seen: list[dict[str, Any]] = []

        async def finished() -> bool:
            seen.append(await api.get(f"/api/v1/jobs/{job['id']}"))
            return seen[-1]["status"] in ("done", "failed")

        await wait_until(finished, what="the job's end")
        final = seen[-1]
        assert (final["status"], final["total"], final["done"], final["failed"]) == (
            "done",
            3,
            3,
            0,
        )
        progress = [j["done"] + j["failed"] for j in seen]
        assert progress == sorted(progress)  # it only ever moves forward
        await wait_until(
            lambda: all(len(cases_from(sims, no)) == 1 for no in numbers), what="three cases"
        )
        assert await api.parked(stage="intake") == []
        assert len(await api.parked(status="replayed")) == 3


async def test_a_dry_run_reconciliation_reports_and_changes_nothing(
    sims: Simulators, tmp_path: Path
) -> None:
    async with node_and_api(sims, tmp_path) as (node, api):
        no, _ = await replied_order(sims)

        # the 12345 feed loses the visit (as in test_replay_reconcile)
        poller = next(p for p in node.pollers if p.feed == "dispatched")
        await node.supervisor.stop(poller.name)
        await order_action(sims, no, "visit", satisfaction="2")
        later = (datetime.now(UTC) + timedelta(hours=9)).strftime("%Y-%m-%d %H:%M:%S")
        async with node.store.begin() as tx:
            await tx.set_position(
                "12345",
                "dispatched",
                json.dumps({"v": 1, "mark": later, "seen": {}, "closed": True}),
            )
        node.spawn(poller.name, poller.run)
        await asyncio.sleep(1.0)  # the node settles: nothing of its own is in flight
        orders, cases = copy.deepcopy(sims.sim12345.orders), copy.deepcopy(sims.sim12351.cases)
        outbox_before = len(await node.store.outbox_pending(limit=500))

        status, run = await api.call("POST", "/api/v1/reconciliations", body={"dry_run": True})
        assert status == 202, run
        assert run["dry_run"] is True and run["status"] == "running"
        done: dict[str, Any] = {}

        async def finished() -> bool:
            done.update(await api.get(f"/api/v1/reconciliations/{run['id']}"))
            return done["status"] != "running"

        await wait_until(finished, what="the dry run's end")
        assert done["status"] == "done" and done["report"]["dry_run"] is True
        assert done["counts"]["checked"] >= 2 and done["counts"]["republished"] >= 1
        # the visit the 12345 feed missed; 12351's feed missed nothing
        [found] = [i for i in done["report"]["items"] if i["kind"] == "changed"]
        assert (found["referral_id"], found["system"]) == (f"12345:{no}", "12345")
        assert found["numbers"] == {"12345": no, "12351": cases_from(sims, no)[0]["case_no"]}
        assert (found["repaired"], found["why"]) == (False, "dry run")
        assert done["counts"]["changed"] == 1

        await asyncio.sleep(2.0)  # what a real run queued would have been applied by now
        assert sims.sim12345.orders == orders and sims.sim12351.cases == cases
        assert cases_from(sims, no)[0]["status"] == "responded"
        assert len(await node.store.outbox_pending(limit=500)) == outbox_before

        status, real = await api.call("POST", "/api/v1/reconciliations", body={})
        assert status == 202 and real["dry_run"] is False
        await wait_until(
            lambda: cases_from(sims, no)[0]["status"] == "callback_done",
            what="callback_result after a real run",
        )
