"""The 12351 simulator's own control side (`/_sim`): what tests, the demo and the
benchmark drive it with, hand fixes that no feed shows included. Strictness here keeps
the other tests honest."""

from __future__ import annotations

import asyncio
import re

from fixtures_12351 import (  # noqa: F401  (fixtures imported for their registration)
    START,
    Sim12351,
    s12351_fixture,
)

from schemas.hotline12351 import DISTRICT_CODES, Case


async def test_recording_random_cases_gives_realistic_transferred_and_own_cases(
    s12351: Sim12351,
):
    status, body = await s12351.control("POST", "/cases", {"count": 40, "transfer_share": 0.5})
    assert status == 201 and len(body["items"]) == 40
    cases = [Case.model_validate(c) for c in body["items"]]
    transferred = [c for c in cases if c.status == "transferred"]
    assert 5 < len(transferred) < 35
    for case in transferred:
        assert case.transfer is not None and case.transfer.to == "12345"
        assert case.transfer.category is None or re.fullmatch(r"\d{4}", case.transfer.category)
        assert case.transfer.requested_at is not None and case.transfer.external_no is None
    assert {c.district_code for c in cases} - {None} <= DISTRICT_CODES
    assert all(c.level == ("district" if c.district_code else "city") for c in cases)
    phones = {c.worker.phone for c in cases}
    assert any(p and "-" in p for p in phones) and any(p and p.startswith("+86") for p in phones)
    assert all(re.search(r"[\u4e00-\u9fff]", c.subject) for c in cases)


async def test_recording_one_case_with_given_fields(s12351: Sim12351):
    fields = {
        "subject": "宿舍暖气不热",
        "channel": "wechat",
        "worker": {"name": "李某", "phone": "010 6234 5678", "confidential": True},
        "transfer": {"to": "12345", "reason": "非工会职责", "category": None},
        "agent": "张静",
    }
    status, body = await s12351.control("POST", "/cases", fields)
    case = body["items"][0]
    assert status == 201 and (case["status"], case["version"], case["level"]) == (
        "transferred",
        2,
        "city",
    )
    assert [e["actor"] for e in s12351.sim.events[case["id"]]] == ["agent:张静"] * 2


async def test_recording_a_case_with_an_unknown_field_is_422(s12351: Sim12351):
    status, body = await s12351.control("POST", "/cases", {"subject": "x", "urgency": 3})
    assert status == 422 and body["errors"][0]["pointer"] == "/urgency"


async def test_agent_steps_follow_the_workflow(s12351: Sim12351):
    case = await s12351.partner_case()
    path = f"/cases/{case['id']}/agent"
    assert (await s12351.control("POST", path, {"action": "respond", "text": "x"}))[0] == 409
    for step in ({"action": "dispatch"}, {"action": "verify"}, {"action": "handle"}):
        assert (await s12351.control("POST", path, step))[0] == 200
    status, body = await s12351.control(
        "POST", path, {"action": "respond", "text": "已补发", "resolved": True, "agent": "王芳"}
    )
    assert status == 200 and body["status"] == "responded"
    assert body["response"]["responder"] == "王芳" and body["version"] == 5
    assert (await s12351.control("POST", path, {"action": "reject", "reason": "x"}))[0] == 409


async def test_agent_step_with_unknown_action_or_param_is_422(s12351: Sim12351):
    case = await s12351.partner_case()
    path = f"/cases/{case['id']}/agent"
    assert (await s12351.control("POST", path, {"action": "escalate"}))[0] == 422
    assert (await s12351.control("POST", path, {"action": "dispatch", "to": "x"}))[0] == 422


async def test_extension_is_asked_once_and_only_on_a_partners_case(s12351: Sim12351):
    case = await s12351.partner_case()
    s12351.sim.agent(case["id"], "dispatch")
    ask = {"action": "request_extension", "new_deadline": "2026-12-10T18:00:00+08:00"}
    path = f"/cases/{case['id']}/agent"
    status, body = await s12351.control("POST", path, ask | {"reason": "需协调"})
    assert status == 200 and body["extension_request"]["new_deadline"] == ask["new_deadline"]
    assert body["status"] == "dispatched"
    assert (await s12351.control("POST", path, ask))[0] == 409
    own = s12351.sim.record_case(subject="咨询如何加入工会")
    s12351.sim.agent(own["id"], "dispatch")
    assert (await s12351.control("POST", f"/cases/{own['id']}/agent", ask))[0] == 409


async def test_state_dumps_cases_timelines_and_feed_length(s12351: Sim12351):
    case = await s12351.partner_case()
    s12351.sim.agent(case["id"], "dispatch")
    status, state = await s12351.control("GET", "/state")
    assert status == 200 and state["feed_length"] == 2
    assert [c["id"] for c in state["cases"]] == [case["id"]]
    assert [e["type"] for e in state["events"][case["id"]]] == ["created", "dispatched"]


async def test_faults_do_not_touch_the_control_routes(s12351: Sim12351):
    await s12351.control("POST", "/faults", {"maintenance_s": 600})
    assert (await s12351.control("GET", "/state"))[0] == 200
    assert (await s12351.raw("GET", "/cases"))[0] == 503


async def test_driver_moves_partner_cases_along_and_closes_after_the_callback(
    s12351: Sim12351,
):
    case = await s12351.partner_case()
    driver = s12351.sim.driver
    for _ in range(200):
        driver.tick(0.1)
        if s12351.sim.cases[case["id"]]["status"] in ("responded", "rejected"):
            break
    status = s12351.sim.cases[case["id"]]["status"]
    assert status in ("responded", "rejected")
    if status == "responded":
        s12351.sim.book.apply_event(
            case["id"],
            "callback_result",
            {"satisfaction": "satisfied", "at": "2026-11-29T18:00:00+08:00"},
            "hotline-bridge",
        )
        for _ in range(50):
            driver.tick(0.1)
        assert s12351.sim.cases[case["id"]]["status"] == "closed"


async def test_driver_route_starts_records_cases_and_stops(s12351: Sim12351):
    status, body = await s12351.control("POST", "/driver", {"cases_per_s": 100})
    assert status == 200 and body["cases_per_s"] == 100
    await asyncio.sleep(0.35)
    assert (await s12351.control("POST", "/driver", {"cases_per_s": 0}))[0] == 200
    recorded = len(s12351.sim.cases)
    assert recorded >= 10
    await asyncio.sleep(0.15)
    assert len(s12351.sim.cases) == recorded
    assert (await s12351.control("POST", "/driver", {"cases_per_s": -1}))[0] == 422


# --- a hand fix in the union's database (issue 9: what no feed shows) -------------------


async def _drain(s12351: Sim12351, position: str | None) -> tuple[list[Case], str]:
    records: list[Case] = []
    for _ in range(50):
        page = await s12351.hotline.read_feed("cases", position)
        records += page.records
        position = page.position
        if not page.more:
            return records, position
    raise AssertionError("the feed never ran dry")


async def test_a_hand_fix_shows_in_get_but_in_no_feed_or_changed_since_read(s12351: Sim12351):
    case = await s12351.partner_case()
    for step in ("dispatch", "handle"):
        s12351.sim.agent(case["id"], step)
    _, position = await _drain(s12351, None)
    before = dict(s12351.sim.cases[case["id"]])
    timeline = list(s12351.sim.events[case["id"]])
    feed_length = len(s12351.sim.book.feed)
    s12351.clock.advance(60)
    response = {
        "text": "已协调单位补发工资",
        "responder": "王芳",
        "responded_at": "2026-11-29T10:00:00.000+08:00",
        "resolved": True,
    }
    status, fixed = await s12351.control(
        "POST", f"/cases/{case['id']}/fix", {"status": "responded", "response": response}
    )
    assert status == 200 and (fixed["status"], fixed["response"]) == ("responded", response)
    assert (fixed["version"], fixed["updated_at"]) == (before["version"], before["updated_at"])
    got, version = await s12351.client.get_case(case["id"])
    assert (got.status, version) == ("responded", before["version"])  # ETag unchanged too
    assert s12351.sim.events[case["id"]] == timeline
    assert len(s12351.sim.book.feed) == feed_length
    assert (await _drain(s12351, position))[0] == []
    since = await s12351.client.changed_since(START)
    assert [c.status for c in since.items] == ["received", "dispatched", "handling"]
    assert (await s12351.client.find_by_case_no(case["case_no"])).status == "responded"


async def test_a_hand_fix_may_change_only_what_a_case_has_and_stays_a_case(s12351: Sim12351):
    case = await s12351.partner_case()
    path = f"/cases/{case['id']}/fix"
    refused = [
        {"version": 9},
        {"updated_at": "2026-11-29T10:00:00+08:00"},
        {"id": "other"},
        {"urgency": "3"},  # not a case field
        {"status": "archived"},  # not a 12351 status
        {"response": {"responder": "王芳"}},  # a response has its text
        {},
    ]
    for body in refused:
        status, problem = await s12351.control("POST", path, body)
        assert status == 422 and problem["status"] == 422, body
    assert s12351.sim.cases[case["id"]] == case
    status, fixed = await s12351.control("POST", path, {"priority": "alert"})
    assert status == 200 and fixed["priority"] == "alert" and fixed["version"] == 1
    assert s12351.sim.fix_case(case["id"], priority="normal")["priority"] == "normal"
    assert (await s12351.control("POST", "/cases/no-such-case/fix", {"priority": "high"}))[0] == 404
