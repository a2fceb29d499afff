"""The SLA watch end to end: orders from the 12345 simulator go through a running node,
the simulators' clocks and the watch's clock move together, and the deadlines show in
the store, in `/metrics` and in the log (once per crossing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from harness import (
    cases_from,
    delete_namespace,
    fast_policy,
    new_namespace,
    order,
    settings_for,
    wait_until,
)
from prometheus_client.parser import text_string_to_metric_families
from sim_actions import dispatch
from structlog.testing import capture_logs

from bridge.app import Node, start_node
from bridge.config import SlaConfig
from bridge.demo import Simulators
from bridge.engine.deadlines import WorkCalendar
from bridge.mapping.times import BEIJING, from_beijing


@asynccontextmanager
async def node_on_sim_clock(sims: Simulators, tmp_path: Path, **sla: Any) -> AsyncIterator[Node]:
    """A node on the 12345 simulator's clock (its store and SLA watch) whose watch scans
    every 0.2 s."""
    settings = settings_for(sims, tmp_path, new_namespace())
    settings = settings.model_copy(update={"sla": SlaConfig(interval_s=0.2, **sla)})
    try:
        async with AsyncExitStack() as stack:
            yield await start_node(
                settings, stack, retry_policy=fast_policy(), clock=sims.sim12345.clock.now
            )
    finally:
        await delete_namespace(settings)


async def advance(sims: Simulators, seconds: float) -> None:
    """Move both simulators' clocks (and so the watch's) forward, over HTTP."""
    for system in ("12345", "12351"):
        await sims.control(system, "POST", "/advance", {"seconds": seconds})


async def sla_states(node: Node, referral_id: str) -> dict[str, str]:
    return {row.kind: row.state for row in await node.store.sla_for(referral_id)}


async def sla_gauge(node: Node) -> dict[tuple[str, str, str], float]:
    assert node.admin_url is not None
    async with aiohttp.ClientSession() as session:
        async with session.get(node.admin_url + "/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
    values = {}
    for family in text_string_to_metric_families(text):
        if family.name == "hotline_bridge_sla_deadlines":
            for sample in family.samples:
                labels = sample.labels
                values[(labels["system"], labels["kind"], labels["state"])] = sample.value
    return values


async def signed_order(sims: Simulators, urgency: str) -> str:
    no = await dispatch(sims, urgency=urgency)
    await wait_until(lambda: len(cases_from(sims, no)) == 1, what="case created")
    await wait_until(lambda: order(sims, no)["orderStatus"] == "20", what="order signed")
    return no


@pytest.mark.refusals("the clock jump expires the bridge's 12345 token: 40101, then a new one")
async def test_a_missed_reply_deadline_is_breached_in_the_store_metrics_and_log_once(
    sims: Simulators, tmp_path: Path
) -> None:
    """An urgent order (24 h) signed by the bridge, and the union never answers: near the
    deadline `reply` and `answer` are at risk, past it breached, each logged once."""
    with capture_logs() as logs:
        async with node_on_sim_clock(sims, tmp_path) as node:
            assert node.sla is not None
            no = await signed_order(sims, urgency="2")
            rid = f"12345:{no}"

            async def states_are(expected: dict[str, str]) -> bool:
                return await sla_states(node, rid) == expected

            opened = {"sign": "met", "reply": "ok", "answer": "ok"}
            await wait_until(lambda: states_are(opened), what="deadlines recorded")
            due = from_beijing(datetime.strptime(order(sims, no)["deadline"], "%Y-%m-%d %H:%M:%S"))
            reply = next(r for r in await node.store.sla_for(rid) if r.kind == "reply")
            assert reply.due_at == due

            await advance(sims, (due - sims.sim12345.clock.now()).total_seconds() - 600)
            at_risk = {"sign": "met", "reply": "at_risk", "answer": "at_risk"}
            await wait_until(lambda: states_are(at_risk), what="at risk")
            gauge = await sla_gauge(node)
            assert gauge[("12345", "reply", "at_risk")] == 1
            assert gauge[("12351", "answer", "at_risk")] == 1
            assert gauge[("12345", "reply", "breached")] == 0

            await advance(sims, 660)
            breached = {"sign": "met", "reply": "breached", "answer": "breached"}
            await wait_until(lambda: states_are(breached), what="breached")
            scans = node.sla.scans
            await wait_until(lambda: node.sla.scans >= scans + 5, what="more scans")
            gauge = await sla_gauge(node)
            assert gauge[("12345", "reply", "breached")] == 1
            assert gauge[("12351", "answer", "breached")] == 1
            assert gauge[("12345", "reply", "at_risk")] == 0
            assert gauge[("12345", "sign", "met")] == 1
            assert order(sims, no)["orderStatus"] == "20"  # nobody replied: the truth
    crossings = [
        (entry["event"], entry["kind"], entry["system"])
        for entry in logs
        if str(entry["event"]).startswith("sla.") and entry.get("referral_id") == rid
    ]
    assert sorted(crossings) == [
        ("sla.at_risk", "answer", "12351"),
        ("sla.at_risk", "reply", "12345"),
        ("sla.breached", "answer", "12351"),
        ("sla.breached", "reply", "12345"),
    ]
    refused = [r for r in sims.sim12345.refusals + sims.sim12351.refusals if r.code != "40101"]
    assert refused == []


async def test_a_holiday_pushes_a_normal_answer_deadline_out_by_a_day(
    sims: Simulators, tmp_path: Path
) -> None:
    """A normal order (urgency 1 → 12351 `normal`) whose case is created on a Monday at
    10:00: due the next Monday 10:00, or Tuesday when that week's Wednesday is a holiday."""
    now = sims.sim12345.clock.now_beijing()
    monday = now.date() + timedelta(days=7 - now.weekday())
    await advance(sims, (datetime.combine(monday, time(10), tzinfo=BEIJING) - now).total_seconds())
    wednesday = monday + timedelta(days=2)
    async with node_on_sim_clock(sims, tmp_path, holidays=[wednesday]) as node:
        no = await signed_order(sims, urgency="1")
        rid = f"12345:{no}"

        async def answer_recorded() -> bool:
            return "answer" in await sla_states(node, rid)

        await wait_until(answer_recorded, what="answer deadline")
        created = datetime.fromisoformat(cases_from(sims, no)[0]["created_at"])
        assert created.astimezone(BEIJING).date() == monday
        answer = next(r for r in await node.store.sla_for(rid) if r.kind == "answer")
    assert answer.system == "12351" and answer.state == "ok"
    # Tuesday, as Wednesday is off; counted from the case's creation as the case shows it
    # or as the bridge recorded it (`create_case`, a fraction of a second later)
    assert abs(answer.due_at - (created + timedelta(days=8))) < timedelta(seconds=2)
    assert WorkCalendar().add_workdays(created, 5) == created + timedelta(days=7)
