"""An admin replays a dead letter once its cause is repaired; reconciliation re-reads
a side and repairs a change the feed never delivered."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import (
    cases_from,
    order,
    replied_order,
    running_node,
    wait_until,
)
from sim_actions import dispatch, order_action

from bridge.app import Node, topology_of
from bridge.demo import Simulators
from bridge.engine.replay import ReplayError, replay_dead_letter


async def test_replay_after_the_record_was_repaired_at_its_source(
    sims: Simulators, tmp_path: Path
) -> None:
    async with running_node(sims, tmp_path) as node:
        no = await dispatch(sims, content="长" * 4001)  # over 12345's own limit: parked
        await wait_until(lambda: _parked(node, 1), what="parked at intake")
        [letter] = await node.store.list_dead_letters(status="parked")
        assert letter.stage == "intake" and letter.field == "content" and no in letter.reason

        sims.sim12345.orders[no]["content"] = "来电人反映拖欠工资。"  # repaired at 12345
        outcome = await _replay(node, letter.id)
        assert "queued again" in outcome
        await wait_until(lambda: len(cases_from(sims, no)) == 1, what="case after replay")
        await wait_until(lambda: order(sims, no)["orderStatus"] == "20", what="signed")
        assert (await node.store.get_dead_letter(letter.id)).status == "replayed"
        try:
            await _replay(node, letter.id)
        except ReplayError as exc:
            assert "replayed" in str(exc)
        else:
            raise AssertionError("a replayed dead letter was replayed twice")


async def _replay(node: Node, letter_id: int) -> str:
    """What the node's replay does (the CLI's went to the admin API)."""
    return await replay_dead_letter(
        node.store,
        letter_id,
        intake={s: side.intake for s, side in node.sides.items()},
        topology=topology_of(node.settings),
        hotlines={s: side.hotline for s, side in node.sides.items()},
    )


async def test_reconciliation_repairs_a_change_the_feed_missed(
    sims: Simulators, tmp_path: Path
) -> None:
    async with running_node(sims, tmp_path) as node:
        no, _ = await replied_order(sims)

        # the 12345 feed loses the visit: its reader is stopped and its mark moved on
        poller = next(p for p in node.pollers if p.feed == "dispatched")
        await node.supervisor.stop(poller.name)  # fully stopped, its tx settled
        await order_action(sims, no, "visit", satisfaction="2")
        later = (datetime.now(UTC) + timedelta(hours=9)).strftime("%Y-%m-%d %H:%M:%S")
        async with node.store.begin() as tx:
            await tx.set_position(
                "12345",
                "dispatched",
                json.dumps({"v": 1, "mark": later, "seen": {}, "closed": True}),
            )
        node.spawn(poller.name, poller.run)
        assert cases_from(sims, no)[0]["status"] == "responded"

        assert node.reconciler is not None
        run_id = await node.reconciler.run_once("test")
        run = await node.store.get_reconciliation(run_id)
        assert run is not None and run.counts["republished"] >= 1
        await wait_until(
            lambda: cases_from(sims, no)[0]["status"] == "callback_done",
            what="callback_result after reconciliation",
        )
        assert cases_from(sims, no)[0]["callback"]["satisfaction"] == "basically_satisfied"
        assert len(cases_from(sims, no)) == 1


async def _parked(node, n: int) -> bool:  # type: ignore[no-untyped-def]
    return len(await node.store.list_dead_letters(status="parked")) >= n
