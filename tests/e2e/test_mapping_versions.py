"""Mapping versions end to end: the timeline names the tables and the attempt of every
action, `/metrics` counts actions and parkings, and a dead letter replays with the
original or the current tables, which the simulators tell apart."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from harness import cases_from, order, orders_from, running_node, wait_until
from prometheus_client.parser import text_string_to_metric_families
from sim_actions import dispatch, record_case

from bridge.app import Node, build_side, topology_of
from bridge.config import Settings
from bridge.demo import Simulators
from bridge.engine.replay import Tables, replay_dead_letter
from bridge.engine.versions import record_tables
from bridge.mapping import MappingTables, case_to_referral
from bridge.store import DeadLetterIn, Store
from schemas.hotline12351 import Case

ACTION_KINDS = {"create_case", "sign", "external_ref", "partner_update", "create_order"}


async def metric_samples(node: Node) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    assert node.admin_url is not None
    async with aiohttp.ClientSession() as http, http.get(node.admin_url + "/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_the_timeline_names_tables_and_attempts_and_metrics_count_the_actions(
    sims: Simulators, tmp_path: Path
) -> None:
    async with running_node(sims, tmp_path) as node:
        version = node.sides["12345"].intake.tables.version
        assert await node.store.get_mapping_version(version) is not None  # recorded at start
        no = await dispatch(sims)
        poison = await dispatch(sims, areaCode="11010")
        await wait_until(lambda: len(cases_from(sims, no)) == 1, what="case created")
        await wait_until(lambda: order(sims, no)["orderStatus"] == "20", what="signed")

        async def recorded() -> bool:
            kinds = {e.kind for e in await node.store.timeline(f"12345:{no}")}
            return {"create_case", "sign"} <= kinds

        await wait_until(recorded, what="both actions in the timeline")
        timeline = await node.store.timeline(f"12345:{no}")
        actions = [e for e in timeline if e.kind in ACTION_KINDS]
        assert {e.system for e in actions} == {"12345", "12351"}  # both sides
        for event in actions:
            assert event.detail["mapping"] == version, event
            assert event.detail["attempt"] >= 1 and event.detail["outcome"], event
        reads = [e for e in timeline if e.kind == "snapshot.read"]
        assert reads and all(e.detail["mapping"] == version for e in reads)

        await wait_until(lambda: _parked(node, 1), what="the poison order parked")
        samples = await metric_samples(node)
        actions_total = "hotline_bridge_actions_total"
        assert sample(samples, actions_total, system="12351", kind="create_case", outcome="applied")
        assert sample(samples, actions_total, system="12345", kind="sign", outcome="applied")
        parked = sample(
            samples, "hotline_bridge_parked_total", system="12345", stage="intake", reason="mapping"
        )
        assert parked == 1
        assert poison not in "".join(str(key) for key in samples)  # no numbers in labels


async def test_a_record_parked_by_a_bad_table_replays_as_it_was_or_with_the_fixed_tables(
    sims: Simulators, tmp_path: Path
) -> None:
    """A table edit lost the transfer target 12345: a transferred case is parked. Replayed
    with its original tables it is parked again; with the fixed ones it reaches 12345."""
    async with running_node(sims, tmp_path, mapping={"transfer_targets": []}) as node:
        broken = node.sides["12351"].intake.tables
        case = record_case(sims)
        await wait_until(lambda: _parked(node, 1), what="transfer parked at intake")
        [letter] = await node.store.list_dead_letters(status="parked")
        assert letter.payload["mapping"] == broken.version and letter.field == "transfer.to"

        fixed = node.settings.model_copy(update={"mapping": {}})
        [line] = await _replay(fixed, [letter.id], mapping="original")
        assert "still does not map" in line and broken.version in line
        [again] = await node.store.list_dead_letters(status="parked")
        assert again.id != letter.id

        [line] = await _replay(fixed, [again.id], mapping="current")
        assert "queued again" in line
        await wait_until(
            lambda: len(orders_from(sims, case["case_no"])) == 1, what="order after the replay"
        )
        fixed_version = MappingTables.default().version
        assert await node.store.get_mapping_version(fixed_version) is not None  # by ops


async def test_a_parked_snapshot_replays_with_the_tables_of_its_time_or_the_current(
    sims: Simulators, tmp_path: Path
) -> None:
    """The node's tables now send legal aid to 12345 category 0213; those of the parked
    snapshots' time sent it to 0299. Each replay creates its order with the tables asked
    for."""
    original = MappingTables.default()
    current = {"service_type_to_category": {"legal_aid": "0213"}}
    async with running_node(sims, tmp_path, sides=["12345"], mapping=current) as node:
        await record_tables(node.store, original)  # the node ran with them before
        cases = [record_case(sims, service_type="legal_aid") for _ in range(2)]
        parked = [await _park_snapshot(node, c, original) for c in cases]

        [line] = await _replay(node.settings, [parked[0][0]], mapping="original")
        assert original.version in line
        await _replay(node.settings, [parked[1][0]], mapping="current")

        def created(case: dict[str, Any]) -> list[dict[str, Any]]:
            return orders_from(sims, case["case_no"])

        await wait_until(lambda: all(len(created(c)) == 1 for c in cases), what="both orders")
        assert created(cases[0])[0]["category"] == "0299"  # the original tables
        assert created(cases[1])[0]["category"] == "0213"  # the current tables
        now = node.appliers["12345"].policy.tables.version

        async def recorded() -> bool:  # the ledger records the action once the call returned
            for _, referral_id in parked:
                timeline = await node.store.timeline(referral_id)
                if not any(e.kind == "create_order" for e in timeline):
                    return False
            return True

        await wait_until(recorded, what="both create_order actions in the ledger")
        for (_, referral_id), version in zip(parked, (original.version, now), strict=True):
            timeline = await node.store.timeline(referral_id)
            [event] = [e for e in timeline if e.kind == "create_order"]
            assert event.detail["mapping"] == version


async def _park_snapshot(
    node: Node, case: dict[str, Any], tables: MappingTables
) -> tuple[int, str]:
    """A snapshot of `case` parked at apply under `tables`, as 12345's refusal of a create
    would have left it."""
    ref = case_to_referral(Case.model_validate(case), read_at=datetime.now(UTC), tables=tables)
    async with node.store.begin() as tx:
        letter_id = await tx.park(
            DeadLetterIn(
                system="12345",
                stage="apply",
                reason=f"12345 refused create_order for {ref.referral_id}: unavailable",
                payload={"snapshot": ref.model_dump(mode="json"), "mapping": tables.version},
                referral_id=ref.referral_id,
            )
        )
    return letter_id, ref.referral_id


async def _parked(node: Node, n: int) -> bool:
    return len(await node.store.list_dead_letters(status="parked")) >= n


async def _replay(settings: Settings, letter_ids: list[int], *, mapping: Tables) -> list[str]:
    """A replay by a process whose config holds `settings`' mapping tables as current
    (what the admin API's replay does in a node started with them)."""
    tables = MappingTables.from_config(settings.mapping or None)
    store = await Store.connect(settings.store.url)
    try:
        await record_tables(store, tables)  # what it re-maps, it records by this version
        async with aiohttp.ClientSession() as session:
            sides = {s: build_side(s, settings, session, tables) for s in settings.bridge.sides}
            return [
                f"{letter_id}: "
                + await replay_dead_letter(
                    store,
                    letter_id,
                    intake={s: side.intake for s, side in sides.items()},
                    topology=topology_of(settings),
                    hotlines={s: side.hotline for s, side in sides.items()},
                    mapping=mapping,
                )
                for letter_id in letter_ids
            ]
    finally:
        await store.aclose()
