"""Both simulators count the calls they answer and record each one they refused, apart
from what the rate limit (`rate_limited`) and injected faults (`faulted`) answered, so
a test can say "zero refused" with faults on; and they remember each call one by one."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from fixtures_12345 import (  # noqa: F401  (fixtures imported for their registration)
    create_request,
    h12345_client_fixture,
    h12345_config_fixture,
    h12345_ctl_fixture,
    h12345_root_fixture,
    h12345_session_fixture,
    h12345_sim_fixture,
)
from fixtures_12351 import (
    CLIENT_NAME,
    Sim12351,
    s12351_fixture,  # noqa: F401  (the s12351 fixture)
)

from adapters.errors import Conflict, RateLimited, StatusNotAllowed
from schemas.hotline12345 import SignRequest
from schemas.hotline12351 import WithdrawnBody

SIGN = SignRequest(handler="12351职工服务热线")
NO_CALLS = {"requests": {}, "refused": 0, "rate_limited": 0, "faulted": 0}


async def _raw_12345(
    session: aiohttp.ClientSession, root: str, token: str, method: str, path: str
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with session.request(method, f"{root}/api/v2{path}", headers=headers, json={}) as resp:
        text = await resp.text()
        return resp.status, text


# --- 12345 ------------------------------------------------------------------------------


async def test_12345_a_refused_sign_is_recorded_with_its_route_template(
    h12345_client, h12345_ctl, h12345_sim
):
    order_no = await h12345_ctl.dispatch()
    await h12345_client.sign(order_no, SIGN)
    with pytest.raises(StatusNotAllowed):
        await h12345_client.sign(order_no, SIGN)  # signing twice → 40002
    assert h12345_sim.counts == {
        "requests": {"demo-client": 3},  # the token, two signs
        "refused": 1,
        "rate_limited": 0,
        "faulted": 0,
    }
    [refusal] = h12345_sim.refusals
    assert (refusal.method, refusal.route, refusal.code, refusal.client) == (
        "POST",
        "POST /orders/{orderNo}/sign",
        "40002",
        "demo-client",
    )
    assert refusal.message and order_no not in refusal.route
    assert abs(datetime.fromisoformat(refusal.at) - h12345_sim.clock.now()) < timedelta(seconds=5)


async def test_12345_a_replayed_create_is_a_success_not_a_refusal(h12345_client, h12345_sim):
    await h12345_client.create_order(create_request("req-1"))
    _, replayed = await h12345_client.create_order(create_request("req-1"))  # 40901
    assert replayed is True
    assert h12345_sim.counts["refused"] == 0 and h12345_sim.counts["requests"]["demo-client"] == 3


async def test_12345_a_4xx_http_answer_is_a_refusal_too(
    h12345_session, h12345_root, h12345_ctl, h12345_sim
):
    token = h12345_sim.tokens.issue("demo-client")
    order_no = await h12345_ctl.dispatch()
    status, _ = await _raw_12345(
        h12345_session, h12345_root, token, "POST", f"/orders/{order_no}/x"
    )
    assert status == 404
    [refusal] = h12345_sim.refusals
    assert (refusal.code, refusal.route) == ("404", f"POST /orders/{order_no}/x")


async def test_12345_a_rate_limit_429_is_rate_limited_not_refused(
    h12345_client, h12345_ctl, h12345_sim
):
    order_no = await h12345_ctl.dispatch()
    await h12345_ctl.faults(rate_limit_per_s=1)
    await h12345_client.get_order(order_no)
    with pytest.raises(RateLimited):
        await h12345_client.get_order(order_no)
    counts = h12345_sim.counts
    assert (counts["rate_limited"], counts["refused"], counts["faulted"]) == (1, 0, 0)


@pytest.mark.parametrize(
    ("faults", "status", "code"),
    [
        pytest.param({"error_rate": 1.0}, 500, None, id="error_rate-500"),
        pytest.param({"burst_429": 1}, 429, None, id="burst_429"),
        pytest.param({"maintenance_s": 60}, 503, None, id="maintenance"),
        pytest.param({"busy_rate": 1.0}, 200, "50001", id="busy_rate-50001"),
        pytest.param({"reject_tokens": True}, 200, "40101", id="reject_tokens-40101"),
    ],
)
async def test_12345_injected_faults_are_faulted_not_refused(
    h12345_session, h12345_root, h12345_ctl, h12345_sim, faults, status, code
):
    token = h12345_sim.tokens.issue("demo-client")
    order_no = await h12345_ctl.dispatch()
    await h12345_ctl.faults(**faults)
    got, text = await _raw_12345(h12345_session, h12345_root, token, "GET", f"/orders/{order_no}")
    assert got == status and (code is None or f'"code": "{code}"' in text)
    assert h12345_sim.counts == {
        "requests": {"demo-client": 1},
        "refused": 0,
        "rate_limited": 0,
        "faulted": 1,
    }


async def test_12345_counts_survive_clearing_faults_and_reset_forgets_them(
    h12345_client, h12345_ctl, h12345_session, h12345_root, h12345_sim
):
    order_no = await h12345_ctl.dispatch()
    await h12345_client.sign(order_no, SIGN)
    with pytest.raises(StatusNotAllowed):
        await h12345_client.sign(order_no, SIGN)
    async with h12345_session.delete(f"{h12345_root}/_sim/faults") as resp:
        assert resp.status == 200
    calls = (await h12345_ctl.state())["calls"]
    assert calls["counts"]["refused"] == 1
    assert calls["refusals"][0]["route"] == "POST /orders/{orderNo}/sign"
    assert (await h12345_ctl.post("/_sim/counters/reset"))["counts"] == NO_CALLS
    assert h12345_sim.counts == NO_CALLS and h12345_sim.refusals == []


async def test_12345_calls_alone_are_what_the_state_says_and_count_no_call(
    h12345_client, h12345_ctl, h12345_session, h12345_root
):
    order_no = await h12345_ctl.dispatch()
    await h12345_client.sign(order_no, SIGN)
    with pytest.raises(StatusNotAllowed):
        await h12345_client.sign(order_no, SIGN)
    async with h12345_session.get(f"{h12345_root}/_sim/counters") as resp:
        assert resp.status == 200
        calls = await resp.json()
    assert set(calls) == {"counts", "refusals"}  # no orders, no actions: the calls alone
    assert calls["counts"] == {
        "requests": {"demo-client": 3},
        "refused": 1,
        "rate_limited": 0,
        "faulted": 0,
    }
    assert calls == (await h12345_ctl.state())["calls"]  # and neither read was counted


# --- 12351 ------------------------------------------------------------------------------


async def test_12351_a_refused_nested_event_is_recorded_with_its_route_template(
    s12351: Sim12351,
):
    case = await s12351.partner_case()
    nested = {"type": "withdrawn", "body": {"reason": "市民撤诉"}}
    status, _, _ = await s12351.raw("POST", f"/cases/{case['id']}/events", json=nested)
    assert status == 422
    assert s12351.sim.counts == {
        "requests": {CLIENT_NAME: 2},  # the create, the event
        "refused": 1,
        "rate_limited": 0,
        "faulted": 0,
    }
    [refusal] = s12351.sim.refusals
    assert (refusal.method, refusal.route, refusal.code, refusal.client) == (
        "POST",
        "POST /cases/{id}/events",
        "422",
        CLIENT_NAME,
    )
    assert "/body" in refusal.message and "市民撤诉" not in refusal.message


async def test_12351_conflicts_and_unknown_keys_are_refusals(s12351: Sim12351):
    case = s12351.transferred_case()
    with pytest.raises(Conflict):  # not the partner's own case
        await s12351.client.post_event(case["id"], "withdrawn", WithdrawnBody(reason="x"), "w-1")
    status, _, _ = await s12351.raw("GET", f"/cases/{case['id']}", key="wrong-key")
    assert status == 401
    assert [(r.code, r.client, r.route) for r in s12351.sim.refusals] == [
        ("409", CLIENT_NAME, "POST /cases/{id}/events"),
        ("401", "anonymous", "GET /cases/{id}"),
    ]


async def test_12351_a_rate_limit_429_is_rate_limited_not_refused(s12351: Sim12351):
    await s12351.control("POST", "/faults", {"rate_limit_per_s": 1})
    first = await s12351.raw("GET", "/cases", query="limit=1")
    second = await s12351.raw("GET", "/cases", query="limit=1")
    assert (first[0], second[0]) == (200, 429)
    counts = s12351.sim.counts
    assert (counts["rate_limited"], counts["refused"], counts["faulted"]) == (1, 0, 0)


@pytest.mark.parametrize(
    ("faults", "status"),
    [
        pytest.param({"error_rate": 1.0}, 500, id="error_rate-500"),
        pytest.param({"burst_429": 1}, 429, id="burst_429"),
        pytest.param({"maintenance_s": 60}, 503, id="maintenance"),
    ],
)
async def test_12351_injected_faults_are_faulted_not_refused(
    s12351: Sim12351, faults: dict, status: int
):
    await s12351.control("POST", "/faults", faults)
    got, _, _ = await s12351.raw("GET", "/cases", query="limit=1")
    assert got == status
    assert s12351.sim.counts == {
        "requests": {CLIENT_NAME: 1},
        "refused": 0,
        "rate_limited": 0,
        "faulted": 1,
    }


async def test_12351_counts_survive_clearing_faults_and_reset_forgets_them(s12351: Sim12351):
    await s12351.raw("GET", "/cases", query="limit=0")  # 400
    assert (await s12351.control("DELETE", "/faults"))[0] == 200
    _, state = await s12351.control("GET", "/state")
    assert state["calls"]["counts"]["refused"] == 1
    assert state["calls"]["refusals"][0]["route"] == "GET /cases"
    _, reset = await s12351.control("POST", "/counters/reset")
    assert reset["counts"] == NO_CALLS and s12351.sim.counts == NO_CALLS


async def test_12351_calls_alone_are_what_the_state_says_and_count_no_call(s12351: Sim12351):
    await s12351.raw("GET", "/cases", query="limit=0")  # 400
    status, calls = await s12351.control("GET", "/counters")
    assert status == 200 and set(calls) == {"counts", "refusals"}
    assert calls["counts"] == {
        "requests": {"hotline-bridge": 1},
        "refused": 1,
        "rate_limited": 0,
        "faulted": 0,
    }
    assert calls["refusals"][0]["route"] == "GET /cases"
    _, state = await s12351.control("GET", "/state")
    assert state["calls"] == calls


# --- lost answers: the call took effect, the client hears a gateway error ---------------


async def test_12345_a_lost_answer_is_ambiguous_and_the_sign_took_effect(
    h12345_client, h12345_ctl, h12345_sim
):
    from adapters.errors import Unavailable

    order_no = await h12345_ctl.dispatch()
    await h12345_client.token()
    await h12345_ctl.faults(lost_rate=1.0)
    with pytest.raises(Unavailable) as lost:
        await h12345_client.sign(order_no, SIGN)
    assert lost.value.ambiguous  # the client must read the order to know
    await h12345_ctl.faults(lost_rate=0.0)
    assert (await h12345_client.get_order(order_no)).orderStatus == "20"
    assert h12345_sim.counts["faulted"] == 1 and h12345_sim.counts["refused"] == 0


async def test_12351_a_lost_answer_replays_with_its_idempotency_key(s12351: Sim12351):
    from adapters.errors import TransientError

    case = await s12351.partner_case()
    await s12351.control("POST", "/faults", {"lost_rate": 1.0, "lost_status": 502})
    with pytest.raises(TransientError) as lost:
        await s12351.client.post_event(case["id"], "withdrawn", WithdrawnBody(reason="撤诉"), "w-9")
    assert lost.value.ambiguous
    await s12351.control("DELETE", "/faults")
    again, replayed = await s12351.client.post_event(
        case["id"], "withdrawn", WithdrawnBody(reason="撤诉"), "w-9"
    )
    assert replayed and again.status == "closed"
    assert s12351.sim.counts["faulted"] == 1 and s12351.sim.counts["refused"] == 0


# --- every call one by one: what a test counts a kind of call over a stretch of time by --


async def test_12345_each_call_is_remembered_with_its_route_query_and_who_answered(
    h12345_client, h12345_ctl, h12345_sim, h12345_session, h12345_root
):
    started = time.time()
    order_no = await h12345_ctl.dispatch()
    await h12345_client.list_dispatched(datetime(2026, 11, 29, 9, 0), 1, 50)
    await h12345_ctl.faults(burst_429=1)
    with pytest.raises(RateLimited):
        await h12345_client.get_order(order_no)
    await h12345_client.get_order(order_no)
    calls = h12345_sim.calls.calls_to()
    assert [(c.route, c.answered_by) for c in calls] == [
        ("POST /oauth/token", "api"),
        ("GET /orders/dispatched", "api"),
        ("GET /orders/{orderNo}", "faulted"),
        ("GET /orders/{orderNo}", "api"),
    ]
    assert calls[1].query == {
        "unitCode": "BJZGH",
        "updatedSince": "2026-11-29 09:00:00",
        "pageNo": "1",
        "pageSize": "50",
    }
    assert all(c.client == "demo-client" for c in calls)
    assert started <= calls[0].at <= calls[-1].at <= time.time()  # real time, not simulated
    route = {"route": "GET /orders/{orderNo}"}
    async with h12345_session.get(f"{h12345_root}/_sim/calls", params=route) as resp:
        items = (await resp.json())["items"]
    assert [i["answered_by"] for i in items] == ["faulted", "api"]
    await h12345_ctl.post("/_sim/counters/reset")
    assert h12345_sim.calls.calls_to() == []


async def test_12351_each_call_is_remembered_with_its_route_and_query(s12351: Sim12351):
    case = await s12351.partner_case()
    await s12351.client.get_case(case["id"])
    await s12351.raw("GET", "/cases", query="changed_since=2026-11-29T09%3A00%3A00%2B08%3A00")
    status, body = await s12351.control("GET", "/calls?route=GET /cases")
    assert status == 200
    assert [i["query"] for i in body["items"]] == [{"changed_since": "2026-11-29T09:00:00+08:00"}]
    assert [c.route for c in s12351.sim.calls.calls_to()] == [
        "POST /cases",
        "GET /cases/{id}",
        "GET /cases",
    ]
