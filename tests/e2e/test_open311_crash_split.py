"""The 12385 partner under the crash and split tests' conditions: a real `hotline-bridge
run` process SIGKILLed in the middle of 12385 lifecycles in both directions, and a
federation node (12385 only) beside a union node (12351 only), each with its own store
and credentials, on one broker. Nothing is lost and nothing happens twice: asserted on
what the simulators hold."""

from __future__ import annotations

import asyncio
import random
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from harness import (
    Daemon,
    delete_namespace,
    new_namespace,
    settings_for,
    start,
    wait_until,
    write_config,
)
from sim_actions import agent, record_case
from test_crash import stop, wait_started
from test_open311_lifecycles import NAME, _case_of, _made_from, _posted, _referral, _updates

from bridge.demo import Simulators
from bridge.store import Store

pytestmark = pytest.mark.one_store  # their subject is the partner's lifecycles, not the store

EACH = 4
"""Referrals in each direction."""


def _section(sims: Simulators) -> dict[str, Any]:
    """The 12385 section of a node that runs it: quick polls over a book minutes old."""
    return {
        "kind": "open311",
        **sims.running[NAME].config,
        "poll_interval_s": 0.5,
        "overlap_s": 5,
        "first_lookback_s": 600,
    }


async def _start_both_ways(sims: Simulators) -> tuple[list[dict[str, Any]], list[str]]:
    cases = [record_case(sims, transfer={"to": NAME, "reason": "残联职责"}) for _ in range(EACH)]
    requests = [_referral(sims, f"残疾职工求助{i}\n单位拖欠工资{i}个月。") for i in range(EACH)]
    return cases, requests


async def _answer_both_ways(
    sims: Simulators, cases: list[dict[str, Any]], requests: list[str]
) -> None:
    """12385 staff answer every request the bridge made; the union answers every case
    the bridge made from a referral."""
    for case in cases:
        (request_id,) = _made_from(sims, case["case_no"])
        sims.sim(NAME).staff_update(request_id, "fixed", f"已办理{case['case_no']}")
    for request_id in requests:
        made = _case_of(sims, request_id)
        assert made is not None
        for action in ("dispatch", "handle"):
            await agent(sims, made["id"], action)
        await agent(sims, made["id"], "respond", text=f"已协调{request_id}")


def _done(sims: Simulators, cases: list[dict[str, Any]], requests: list[str]) -> bool:
    replied = all(
        [status for status, _ in _updates(sims, c["id"])] == ["accepted", "replied"] for c in cases
    )
    fixed = all(
        [status for status, _ in _posted(sims, r)] == ["in_progress", "fixed"] for r in requests
    )
    return replied and fixed


def _assert_exactly_once(
    sims: Simulators, cases: list[dict[str, Any]], requests: list[str]
) -> None:
    for case in cases:
        assert len(_made_from(sims, case["case_no"])) == 1, case["case_no"]  # one request
        assert _updates(sims, case["id"]) == [
            ("accepted", None),
            ("replied", f"已办理{case['case_no']}"),
        ]
    for request_id in requests:
        made = [
            c
            for c in sims.sim12351.cases.values()
            if (c.get("origin") or {}).get("external_no") == request_id
        ]
        assert len(made) == 1, request_id  # one case
        assert _posted(sims, request_id) == [("in_progress", ""), ("fixed", f"已协调{request_id}")]
    refused = [f"{r.route} {r.code} {r.message}" for r in sims.sim(NAME).refusals]
    assert refused == [], refused


async def test_sigkill_mid_12385_lifecycles_loses_nothing_and_repeats_nothing(
    sims: Simulators, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRIDGE_HOTLINE12351__API_KEY", sims.running["12351"].config["api_key"])
    settings = settings_for(
        sims,
        tmp_path,
        new_namespace(),
        sides=["12351", NAME],
        partners_sections={NAME: _section(sims)},
        node_id=f"crash385-{tmp_path.name}",
    )
    config = tmp_path / "bridge.toml"
    write_config(settings, config)
    daemon = Daemon(config, tmp_path / "daemon.log")
    rng = random.Random(385)
    starts = 0

    async def kill_and_restart() -> None:
        nonlocal starts
        await asyncio.sleep(rng.uniform(0.3, 1.5))
        daemon.kill()  # SIGKILL: no clean-up of any kind
        await asyncio.sleep(rng.uniform(0.0, 0.3))
        daemon.start()
        starts += 1
        await wait_started(daemon, starts)

    try:
        daemon.start()
        starts = 1
        await wait_started(daemon, starts)
        cases, requests = await _start_both_ways(sims)
        for _ in range(2):
            await kill_and_restart()

        def arrived() -> bool:
            made = all(len(_made_from(sims, c["case_no"])) == 1 for c in cases)
            accepted = all(_updates(sims, c["id"]) for c in cases)
            return made and accepted and all(_case_of(sims, r) for r in requests)

        await wait_until(arrived, 60, what="every request made and every case created")
        await _answer_both_ways(sims, cases, requests)
        for _ in range(2):
            await kill_and_restart()
        await wait_until(lambda: _done(sims, cases, requests), 60, what="both ways answered")
        _assert_exactly_once(sims, cases, requests)

        assert await stop(daemon) == 0, f"no clean stop on SIGTERM; see {daemon.log_file}"
        store = await Store.connect(settings.store.url)
        try:
            stats = await store.stats()
        finally:
            await store.aclose()
        assert stats["dead_letters"]["parked"] == 0, stats  # nothing given up on
    finally:
        daemon.kill()
        await delete_namespace(settings)


async def test_a_12385_node_beside_a_union_node_completes_both_ways(
    sims: Simulators, tmp_path: Path
) -> None:
    namespace = new_namespace()
    union = settings_for(sims, tmp_path, namespace, sides=["12351"], store_name="union.db")
    federation = settings_for(
        sims,
        tmp_path,
        namespace,
        sides=[NAME],
        store_name="federation.db",
        partners_sections={NAME: _section(sims)},
    )
    # each node holds only its own credentials; both know every partner of the deployment
    assert union.partners == {} and federation.hotline12351 is None
    assert NAME in union.deployment().names and "12351" in federation.deployment().names
    try:
        async with AsyncExitStack() as stack:
            union_node = await start(union, stack)
            federation_node = await start(federation, stack)
            cases, requests = await _start_both_ways(sims)
            await wait_until(
                lambda: (
                    all(_updates(sims, c["id"]) for c in cases)
                    and all(_case_of(sims, r) for r in requests)
                ),
                60,
                what="every request made and every case created",
            )
            await _answer_both_ways(sims, cases, requests)
            await wait_until(lambda: _done(sims, cases, requests), 60, what="answered")
            _assert_exactly_once(sims, cases, requests)
            # each node wrote only to its own system and keeps its own ledger
            case_no = cases[0]["case_no"]
            assert await union_node.store.get_referral(f"12351:{case_no}") is not None
            assert await federation_node.store.get_referral(f"12351:{case_no}") is not None
            assert set(union_node.sides) == {"12351"} and set(federation_node.sides) == {NAME}
    finally:
        await delete_namespace(union)
