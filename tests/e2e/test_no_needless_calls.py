"""No needless calls and no false alarms: orders first seen already signed are not
signed again, and an order 12345 withdraws, at whatever stage, leaves no dead letter.
Ground truth: what the simulators hold and what they refused."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from harness import cases_from, order, partner_events, running_node, wait_until
from sim_actions import agent, order_action, refused_calls

from adapters.hotline12345.sim.control import apply_step
from adapters.hotline12351.sim.requests import parse_rfc3339
from bridge.demo import Simulators
from schemas.hotline12351 import rfc3339


def signs(sims: Simulators, no: str) -> int:
    return sum(1 for a in sims.sim12345.actions if a["orderNo"] == no and a["action"] == "sign")


def dispatch_signed(sims: Simulators, *, extend: bool = False) -> str:
    """An order dispatched to the union and signed in the 12345 UI (and extended) before
    the bridge can read it: the bridge first sees it in status 20 (25)."""
    book = sims.sim12345.book
    no = book.dispatch({"unitCode": sims.unit_code, "urgency": "1"})
    apply_step(book, no, "sign", {"handler": "工会值班员"})
    if extend:
        deadline = datetime.strptime(order(sims, no)["deadline"], "%Y-%m-%d %H:%M:%S")
        new = (deadline + timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")
        apply_step(book, no, "extension", {"newDeadline": new, "reason": "情况复杂"})
    return no


async def test_orders_first_seen_signed_are_not_signed_again(
    sims: Simulators, tmp_path: Path
) -> None:
    async with running_node(sims, tmp_path) as node:
        nos = [dispatch_signed(sims), dispatch_signed(sims), dispatch_signed(sims, extend=True)]
        await wait_until(
            lambda: all(len(cases_from(sims, no)) == 1 for no in nos), what="a case each"
        )
        for no in nos:  # the union answers; the reply reaches 12345 as usual
            case_id = cases_from(sims, no)[0]["id"]
            for step in ("dispatch", "handle"):
                await agent(sims, case_id, step)
            await agent(sims, case_id, "respond", text="已协调处理", resolved=True)
        await wait_until(
            lambda: all(order(sims, no)["orderStatus"] == "30" for no in nos), what="replies"
        )
        assert [signs(sims, no) for no in nos] == [1, 1, 1]
        assert await node.store.list_dead_letters(status="parked") == []
    assert refused_calls(sims) == []


async def test_an_order_withdrawn_at_any_stage_leaves_no_dead_letter(
    sims: Simulators, tmp_path: Path
) -> None:
    async with running_node(sims, tmp_path) as node:
        book = sims.sim12345.book
        # withdrawn before the bridge could read it: never forwarded
        unread = book.dispatch({"unitCode": sims.unit_code})
        book.withdraw(unread)

        # withdrawn after the bridge read it, before the case was made (12351 paused)
        await node.transport.pause("12351")
        early = book.dispatch({"unitCode": sims.unit_code})
        await wait_until(lambda: _read(node, early), what="the order read")
        book.withdraw(early)
        await wait_until(lambda: _read(node, early, "70"), what="the withdrawal read")
        await node.transport.resume("12351")

        # withdrawn while the union handles it, after an extension, after the reply (the
        # simulator, like 12345, withdraws open orders only: 10 to 30)
        stages = {
            "handling": book.dispatch({"unitCode": sims.unit_code}),
            "extended": book.dispatch({"unitCode": sims.unit_code}),
            "replied": book.dispatch({"unitCode": sims.unit_code}),
        }
        await wait_until(
            lambda: all(order(sims, no)["orderStatus"] == "20" for no in stages.values()),
            what="signed",
        )
        for stage, no in stages.items():
            case = cases_from(sims, no)[0]
            await agent(sims, case["id"], "dispatch")
            await agent(sims, case["id"], "handle")
            if stage == "extended":
                new = parse_rfc3339(case["origin"]["deadline"]) + timedelta(days=3)
                await agent(
                    sims, case["id"], "request_extension", new_deadline=rfc3339(new),
                    reason="需协调用人单位",
                )
                await wait_until(lambda no=no: order(sims, no)["orderStatus"] == "25",
                                 what="extension")
            if stage == "replied":
                await agent(sims, case["id"], "respond", text="已处理", resolved=True)
                await wait_until(lambda no=no: order(sims, no)["orderStatus"] == "30",
                                 what="reply")
            await order_action(sims, no, "withdraw")

        withdrawn = [early, *stages.values()]
        await wait_until(
            lambda: all(
                len(partner_events(sims, cases_from(sims, no)[0]["id"], "withdrawn")) == 1
                for no in withdrawn
            ),
            what="withdrawn on every case",
        )
        await wait_until(
            lambda: all(cases_from(sims, no)[0]["status"] == "closed" for no in withdrawn),
            what="every case closed",
        )
        # the union's closed cases come back through the 12351 feed: let them be applied
        node.test_sims_cases = lambda no: cases_from(sims, no)[0]
        await wait_until(lambda: _applied_closed(node, withdrawn), what="closures applied")
        assert cases_from(sims, unread) == []
        assert await node.store.list_dead_letters(status="parked") == []
        assert [signs(sims, no) for no in withdrawn] == [0, 1, 1, 1]
    assert refused_calls(sims) == []


async def _read(node, no: str, status: str | None = None) -> bool:  # type: ignore[no-untyped-def]
    row = await node.store.get_referral(f"12345:{no}")
    if row is None:
        return False
    return status is None or any(
        e.kind == "withdrawn_at_12345" for e in await node.store.timeline(f"12345:{no}")
    )


async def _applied_closed(node, nos: list[str]) -> bool:  # type: ignore[no-untyped-def]
    """The 12345 side has applied the last version of each (closed) case."""
    sims_cases = node.test_sims_cases  # set by the test
    async with node.store.begin() as tx:
        for no in nos:
            version = await tx.get_last_version(f"12345:{no}", "12351")
            if version is None or version < sims_cases(no)["version"]:
                return False
    return True
