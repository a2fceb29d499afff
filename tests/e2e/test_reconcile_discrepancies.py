"""Reconciliation finds what the feeds missed (issue 9), each discrepancy seeded on
purpose at the simulators while a node runs (real RabbitMQ, admin API over HTTP):

- (a) an order dispatched by a 12345 server with a slow clock: its `updateTime` lies
  below the mark the bridge's feed has already read, so no incremental read returns it;
- (b) a visit written by such a server: the change's `updateTime` is set back;
- (c) a 12351 case answered by a hand fix in the union's database: no feed entry;
- (d) an order parked at intake (its content over 12345's own limit) whose cause was
  then fixed by hand at 12345, without its `updateTime` moving.

A dry run first reports all four and changes nothing at either simulator; a real run
then reports the same list and repairs each, exactly once, until both simulators agree;
a second run finds nothing left.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from harness import Flow, assert_exactly_once, cases_from, order, running_node, wait_until
from sim_actions import agent, dispatch, order_action

from bridge.app import Node
from bridge.demo import Simulators

READ, OPERATE = "e2e-read-token", "e2e-operate-token"
ADMIN = {"tokens": {READ: "read", OPERATE: "operate"}}
SLOW_S = 3600  # how far behind the slow 12345 server's clock runs
TOO_LONG = "长" * 4001  # over 12345's own limit: parked at intake
REPAIRED = "来电人反映单位拖欠三个月工资。"
HAND_RESPONSE = {
    "text": "已协调用人单位补发工资。",
    "responder": "王芳",
    "responded_at": "2026-11-29T10:00:00.000+08:00",
    "resolved": True,
}


class AdminApi:
    """The node's admin API over HTTP: start a reconciliation and follow it to its end."""

    def __init__(self, node: Node, http: aiohttp.ClientSession) -> None:
        assert node.admin_url is not None
        self.url, self.http = node.admin_url, http

    async def call(self, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        async with self.http.request(method, self.url + path, headers=headers, json=body) as resp:
            return resp.status, await resp.json(content_type=None)

    async def reconcile(self, *, dry_run: bool) -> dict[str, Any]:
        """POST /api/v1/reconciliations (202), then GET it until it is no longer running."""
        status, run = await self.call(
            "POST", "/api/v1/reconciliations", OPERATE, {"dry_run": dry_run}
        )
        assert status == 202, run
        assert run["dry_run"] is dry_run
        final: dict[str, Any] = {}

        async def finished() -> bool:
            status, body = await self.call("GET", f"/api/v1/reconciliations/{run['id']}", READ)
            assert status == 200, body
            final.update(body)
            return body["status"] != "running"

        await wait_until(finished, 60, what=f"reconciliation {run['id']} to finish")
        assert final["status"] == "done", final
        return final


@asynccontextmanager
async def node_and_api(
    sims: Simulators, tmp_path: Path, **settings: Any
) -> AsyncIterator[tuple[Node, AdminApi]]:
    async with (
        running_node(sims, tmp_path, admin=ADMIN, reconcile_interval_s=3600, **settings) as node,
        aiohttp.ClientSession() as http,
    ):
        yield node, AdminApi(node, http)


@dataclass
class Seeded:
    """The order numbers behind each seed (and the baseline referral's)."""

    baseline: str
    a: str  # dispatched on a slow clock
    b: str  # its visit written on a slow clock
    c: str  # its 12351 case answered by a hand fix
    c_case: str
    d: str  # parked, then fixed by hand at 12345

    def seeds(self) -> dict[str, str]:
        return {"a": self.a, "b": self.b, "c": self.c, "d": self.d}


async def signed_case(sims: Simulators, no: str) -> dict[str, Any]:
    """Waits until the bridge made order `no`'s case at 12351 and signed the order."""
    await wait_until(lambda: len(cases_from(sims, no)) == 1, what=f"the case of {no}")
    await wait_until(lambda: order(sims, no)["orderStatus"] == "20", what=f"{no} signed")
    return cases_from(sims, no)[0]


async def settled(node: Node) -> None:
    """Waits until the node has nothing of its own in flight (outbox empty, 1 s quiet)."""

    async def idle() -> bool:
        return not await node.store.outbox_pending(limit=10)

    await wait_until(idle, what="the outbox drained")
    await asyncio.sleep(1.0)
    await wait_until(idle, what="the outbox drained")


async def seed(sims: Simulators, node: Node) -> Seeded:
    """Traffic the feeds carry, then the four changes they miss (module docstring)."""
    baseline = await dispatch(sims)
    await signed_case(sims, baseline)
    d = await dispatch(sims, content=TOO_LONG)

    async def parked() -> bool:
        return len(await node.store.list_dead_letters(status="parked")) == 1

    await wait_until(parked, what="the long order parked at intake")
    # later changes move the feed's mark past (d)'s second: a state at the mark's own
    # second is read again when it changes (the feed's `seen`), one below it never
    b = await dispatch(sims)
    b_case = await signed_case(sims, b)
    for step in ("dispatch", "handle"):
        await agent(sims, b_case["id"], step)
    await agent(sims, b_case["id"], "respond", text="已协调处理。", resolved=True)
    await wait_until(lambda: order(sims, b)["orderStatus"] == "30", what="the reply to 12345")
    c = await dispatch(sims)
    c_case = await signed_case(sims, c)
    for step in ("dispatch", "handle"):
        await agent(sims, c_case["id"], step)
    await settled(node)

    a = await dispatch(sims, clock_behind_s=SLOW_S)
    await order_action(sims, b, "visit", satisfaction="2", clock_behind_s=SLOW_S)
    await sims.control(
        "12351",
        "POST",
        f"/cases/{c_case['id']}/fix",
        {"status": "responded", "response": HAND_RESPONSE},
    )
    await order_action(sims, d, "edit", fields={"content": REPAIRED})
    await asyncio.sleep(2.0)  # ten polls of each feed: none of it comes through
    # later traffic moves the feed's mark past the second of the last seeded change
    await signed_case(sims, await dispatch(sims))

    position = json.loads(await node.store.get_position("12345", "dispatched") or "{}")
    for no in (a, b, d):
        assert order(sims, no)["updateTime"] < position["mark"], f"{no} not below the mark"
    assert cases_from(sims, a) == [] and cases_from(sims, d) == []
    assert cases_from(sims, b)[0]["status"] == "responded"  # the visit did not cross
    assert order(sims, c)["orderStatus"] == "20"  # the hand-fixed answer did not cross
    await settled(node)  # the push order's own traffic done: a baseline that holds still
    return Seeded(baseline, a, b, c, c_case["id"], d)


def findings(report: dict[str, Any], seeded: Seeded) -> None:
    """Fails on an item without both numbers or about no seeded discrepancy."""
    seeds = set(seeded.seeds().values())
    for item in report["items"]:
        assert set(item["numbers"]) == {"12345", "12351"}, item
    strays = [i for i in report["items"] if i["numbers"]["12345"] not in seeds]
    assert strays == [], f"findings about no seeded discrepancy: {strays}"


def listed(report: dict[str, Any]) -> list[tuple[str, str, str, str | None]]:
    """The report's list as (kind, system, 12345 number, 12351 number), sorted."""
    return sorted(
        (i["kind"], i["system"], i["numbers"]["12345"], i["numbers"]["12351"])
        for i in report["items"]
    )


def check_findings(report: dict[str, Any], seeded: Seeded, sims: Simulators) -> None:
    """Each seed listed under its kind, by the system that shows it, with both numbers
    (the 12351 number once the case exists); nothing about anything else."""
    findings(report, seeded)
    items = set(listed(report))
    case_no = {no: cases_from(sims, no)[0]["case_no"] for no in (seeded.b, seeded.c)}
    assert ("unseen", "12345", seeded.a, None) in items, "seed (a)"
    assert ("changed", "12345", seeded.b, case_no[seeded.b]) in items, "seed (b)"
    assert ("changed", "12351", seeded.c, case_no[seeded.c]) in items, "seed (c)"
    assert items & {
        ("unseen", "12345", seeded.d, None),
        ("parked_unresolved", "12345", seeded.d, None),
    }, "seed (d)"
    assert report["truncated"] is False
    text = json.dumps(report, ensure_ascii=False)
    assert "长长" not in text and HAND_RESPONSE["text"] not in text  # no case text


def simulator_state(sims: Simulators) -> dict[str, Any]:
    return copy.deepcopy(
        {
            "orders": sims.sim12345.orders,
            "actions": sims.sim12345.actions,
            "cases": sims.sim12351.cases,
            "events": sims.sim12351.events,
            "feed": len(sims.sim12351.book.feed),
        }
    )


async def test_a_run_finds_and_repairs_what_the_feeds_missed_and_a_dry_run_only_reports_it(
    sims: Simulators, tmp_path: Path
) -> None:
    async with node_and_api(sims, tmp_path) as (node, api):
        seeded = await seed(sims, node)
        before = simulator_state(sims)
        outbox_before = len(await node.store.outbox_pending(limit=500))

        dry = await api.reconcile(dry_run=True)
        assert dry["dry_run"] is True and dry["report"]["dry_run"] is True
        check_findings(dry["report"], seeded, sims)
        assert all(not i["repaired"] and i["why"] == "dry run" for i in dry["report"]["items"])
        await asyncio.sleep(2.0)  # what a real run queues would have been applied by now
        assert simulator_state(sims) == before, "a dry run changed a simulator"
        assert len(await node.store.outbox_pending(limit=500)) == outbox_before

        real = await api.reconcile(dry_run=False)
        check_findings(real["report"], seeded, sims)
        assert listed(real["report"]) == listed(dry["report"])
        repaired = {i["numbers"]["12345"] for i in real["report"]["items"] if i["repaired"]}
        assert set(seeded.seeds().values()) <= repaired
        assert real["counts"]["repaired"] >= 4

        # both simulators agree
        await signed_case(sims, seeded.a)
        await signed_case(sims, seeded.d)
        assert REPAIRED in cases_from(sims, seeded.d)[0]["description"]
        await wait_until(
            lambda: cases_from(sims, seeded.b)[0]["status"] == "callback_done",
            what="the visit at 12351 as callback_result",
        )
        assert cases_from(sims, seeded.b)[0]["callback"]["satisfaction"] == "basically_satisfied"
        await wait_until(
            lambda: order(sims, seeded.c)["orderStatus"] == "30", what="the answer at 12345"
        )
        assert order(sims, seeded.c)["reply"]["content"] == HAND_RESPONSE["text"]
        await settled(node)

        # nothing twice: one case per order, each action and partner event once
        flow = Flow(sims)
        for no in (seeded.baseline, seeded.a, seeded.b, seeded.d):
            flow.orders[no] = {"reject": False, "extension": False, "reopen": False}
        assert_exactly_once(sims, flow)
        bridge_unit = f"unit:{sims.unit_code}"
        c_actions = [
            a["action"]
            for a in sims.sim12345.actions
            if a["orderNo"] == seeded.c and a["by"] == bridge_unit
        ]
        assert c_actions == ["sign", "reply"]
        assert len(cases_from(sims, seeded.c)) == 1

        # a second run finds nothing left and changes nothing
        after = simulator_state(sims)
        again = await api.reconcile(dry_run=False)
        assert again["report"]["items"] == [], again["report"]["items"]
        await asyncio.sleep(2.0)
        assert simulator_state(sims) == after
