"""The 12345 client and adapter against the 12345 simulator over real HTTP: one test per
call and per quirk of `specs/hotline-12345.md`."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from aiohttp import web
from fixtures_12345 import (  # noqa: F401  (fixtures imported for their registration)
    create_request,
    h12345_adapter_fixture,
    h12345_client_fixture,
    h12345_config_fixture,
    h12345_ctl_fixture,
    h12345_root_fixture,
    h12345_session_fixture,
    h12345_sim_fixture,
)
from pydantic import SecretStr

from adapters.base import Action, Hotline
from adapters.errors import (
    AuthError,
    NotFound,
    RateLimited,
    Rejected,
    StatusNotAllowed,
    TransientError,
    Unavailable,
)
from adapters.hotline12345.client import Client12345
from adapters.hotline12345.config import Hotline12345Config
from schemas.hotline12345 import (
    TIME_FORMAT,
    CreateOrderRequest,
    ExtensionRequest,
    ReplyRequest,
    ReturnRequest,
    SignRequest,
)

SIGN = SignRequest(handler="12351职工服务热线")


# --- calls ---------------------------------------------------------------------------------


async def test_token_call_issues_a_7200_second_token(h12345_client):
    token = await h12345_client.token()
    assert token.accessToken and token.expiresIn == 7200


async def test_wrong_client_credentials_answer_40101_and_raise_auth_error(
    h12345_session, h12345_config
):
    wrong = h12345_config.model_copy(update={"client_secret": SecretStr("nope")})
    with pytest.raises(AuthError):
        await Client12345(h12345_session, wrong).token()


async def test_get_order_returns_the_native_order(h12345_client, h12345_ctl, h12345_sim):
    order_no = await h12345_ctl.dispatch(callerPhone="", urgency="3")
    order = await h12345_client.get_order(order_no)
    assert order.orderNo == order_no and order.orderStatus == "10"
    assert order.callerPhone == "" and order.urgency == "3"
    assert order.deadline - order.dispatchTime == timedelta(hours=2)


async def test_unknown_order_is_40401_not_found(h12345_client):
    with pytest.raises(NotFound):
        await h12345_client.get_order("BJ12345-20261129-999999")


async def test_sign_moves_a_dispatched_order_from_10_to_20(h12345_client, h12345_ctl):
    order_no = await h12345_ctl.dispatch()
    await h12345_client.sign(order_no, SIGN)
    assert (await h12345_client.get_order(order_no)).orderStatus == "20"


async def test_signing_twice_is_40002_status_not_allowed(h12345_client, h12345_ctl):
    order_no = await h12345_ctl.dispatch()
    await h12345_client.sign(order_no, SIGN)
    with pytest.raises(StatusNotAllowed):
        await h12345_client.sign(order_no, SIGN)


async def test_action_on_an_order_of_another_unit_is_40002(h12345_client, h12345_ctl):
    order_no = await h12345_ctl.dispatch(unitCode="QX110108")
    with pytest.raises(StatusNotAllowed):
        await h12345_client.sign(order_no, SIGN)


async def test_reply_moves_20_to_30_and_records_the_reply(h12345_client, h12345_ctl):
    order_no = await h12345_ctl.dispatch()
    await h12345_client.sign(order_no, SIGN)
    await h12345_client.reply(
        order_no, ReplyRequest(content="已协调单位补发工资。", handler="张敏", resolved=True)
    )
    order = await h12345_client.get_order(order_no)
    assert order.orderStatus == "30" and order.reply and order.reply.resolved is True


async def test_reply_to_a_closed_order_is_40002(h12345_client, h12345_ctl):
    order_no = await h12345_ctl.dispatch()
    await h12345_client.sign(order_no, SIGN)
    reply = ReplyRequest(content="已处理。", handler="张敏", resolved=True)
    await h12345_client.reply(order_no, reply)
    await h12345_ctl.step(order_no, "close")
    with pytest.raises(StatusNotAllowed):
        await h12345_client.reply(order_no, reply)


async def test_reply_without_handler_is_40001_naming_handler(h12345_client, h12345_ctl):
    order_no = await h12345_ctl.dispatch()
    await h12345_client.sign(order_no, SIGN)
    bad = ReplyRequest.model_construct(content="已处理。", handler="", resolved=True)
    with pytest.raises(Rejected) as caught:
        await h12345_client.reply(order_no, bad)
    assert caught.value.fields[0].pointer == "handler"


async def test_return_within_24h_of_dispatch_moves_to_60(h12345_client, h12345_ctl):
    order_no = await h12345_ctl.dispatch()
    await h12345_ctl.advance(23 * 3600)
    await h12345_client.return_order(order_no, ReturnRequest(reason="不属于工会职责"))
    assert (await h12345_client.get_order(order_no)).orderStatus == "60"


async def test_return_later_than_24h_after_dispatch_is_refused_40002(h12345_client, h12345_ctl):
    order_no = await h12345_ctl.dispatch()
    await h12345_client.sign(order_no, SIGN)
    await h12345_ctl.advance(24 * 3600 + 1)
    with pytest.raises(StatusNotAllowed):
        await h12345_client.return_order(order_no, ReturnRequest(reason="不属于工会职责"))


async def test_extension_moves_20_to_25_with_the_new_deadline(h12345_client, h12345_ctl):
    order_no = await h12345_ctl.dispatch(urgency="1")
    await h12345_client.sign(order_no, SIGN)
    before = await h12345_client.get_order(order_no)
    later = before.deadline + timedelta(days=3)
    await h12345_client.extension(order_no, ExtensionRequest(reason="需调查", newDeadline=later))
    after = await h12345_client.get_order(order_no)
    assert after.orderStatus == "25" and after.deadline == later


async def test_second_extension_is_refused_40002_even_after_a_reopen(h12345_client, h12345_ctl):
    order_no = await h12345_ctl.dispatch()
    await h12345_client.sign(order_no, SIGN)
    deadline = (await h12345_client.get_order(order_no)).deadline
    first = ExtensionRequest(reason="需调查", newDeadline=deadline + timedelta(days=1))
    await h12345_client.extension(order_no, first)
    await h12345_client.reply(
        order_no, ReplyRequest(content="已处理。", handler="张敏", resolved=True)
    )
    await h12345_ctl.step(order_no, "visit", satisfaction="3", remark="没解决")
    await h12345_ctl.step(order_no, "reopen", reason="来电人不满意")
    second = ExtensionRequest(reason="再延", newDeadline=deadline + timedelta(days=5))
    with pytest.raises(StatusNotAllowed):
        await h12345_client.extension(order_no, second)


async def test_extension_not_later_than_the_deadline_is_40001_naming_new_deadline(
    h12345_client, h12345_ctl
):
    order_no = await h12345_ctl.dispatch()
    await h12345_client.sign(order_no, SIGN)
    deadline = (await h12345_client.get_order(order_no)).deadline
    with pytest.raises(Rejected) as caught:
        await h12345_client.extension(
            order_no, ExtensionRequest(reason="需调查", newDeadline=deadline)
        )
    assert caught.value.fields[0].pointer == "newDeadline"


@pytest.mark.parametrize(
    ("urgency", "allowed"),
    [("1", timedelta(days=7)), ("2", timedelta(hours=24)), ("3", timedelta(hours=2))],
    ids=["normal-7d", "urgent-24h", "critical-2h"],
)
async def test_created_order_starts_at_20_at_a_district_unit_with_deadline_by_urgency(
    h12345_client, urgency, allowed
):
    order_no, replayed = await h12345_client.create_order(create_request(urgency=urgency))
    order = await h12345_client.get_order(order_no)
    assert not replayed and order.orderStatus == "20"
    assert order.sourceSystem == "12351" and order.sourceNo == "12351-2026-0001234"
    assert order.unitCode and order.unitCode != "BJZGH"
    assert order.dispatchTime == order.updateTime
    assert order.deadline - order.dispatchTime == allowed


async def test_duplicate_request_id_is_40901_replay_of_the_first_order_whatever_the_body(
    h12345_client, h12345_sim
):
    first, replayed_first = await h12345_client.create_order(create_request("req-dup"))
    again, replayed_again = await h12345_client.create_order(
        create_request("req-dup", title="完全不同的标题", category="9999x")
    )
    assert (again, replayed_first, replayed_again) == (first, False, True)
    assert sum(o.get("sourceSystem") == "12351" for o in h12345_sim.orders.values()) == 1


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("requestId", {"requestId": "x" * 65}),
        ("sourceSystem", {"sourceSystem": "12350"}),
        ("sourceNo", {"sourceNo": ""}),
        ("title", {"title": "长" * 101}),
        ("content", {"content": "长" * 4001}),
        ("category", {"category": "0901"}),
        ("category", {"category": "02a1"}),
        ("areaCode", {"areaCode": "110110"}),
        ("urgency", {"urgency": "4"}),
        ("callerPhone", {"callerPhone": "62345678"}),
        ("callerPhone", {"callerPhone": "+86 13812345678"}),
        ("streetCode", {"streetCode": "110108012"}),
        ("confidential", {"confidential": "yes"}),
    ],
    ids=lambda v: v if isinstance(v, str) else next(iter(v.values()))[:20],
)
@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
async def test_each_create_rule_is_40001_naming_its_field(h12345_client, field, changes):
    with pytest.raises(Rejected) as caught:
        await h12345_client.create_order(create_request("req-bad", **changes))
    assert caught.value.fields[0].pointer == field


@pytest.mark.parametrize(
    "changes",
    [
        {"callerPhone": ""},
        {"callerPhone": "13812345678"},
        {"callerPhone": "0755-1234567"},
        {"streetCode": None, "callerName": "", "address": ""},
        {"category": "9901"},
    ],
    ids=["empty-phone", "mobile", "landline-4-digit-area", "empty-optionals", "category-99xx"],
)
async def test_create_accepts_what_the_spec_allows(h12345_client, changes):
    order_no, _ = await h12345_client.create_order(create_request("req-ok", **changes))
    assert order_no.startswith("BJ12345-")


@pytest.mark.parametrize("size", [0, 201])
async def test_page_size_outside_1_to_200_is_40001_not_clamped(h12345_client, size):
    with pytest.raises(Rejected) as caught:
        await h12345_client.list_dispatched(None, 1, size)
    assert caught.value.fields[0].pointer == "pageSize"


# --- envelope codes, tokens, HTTP failures -----------------------------------------------


async def test_50001_system_busy_is_transient(h12345_client, h12345_ctl):
    await h12345_client.token()
    await h12345_ctl.faults(busy_rate=1.0)
    with pytest.raises(TransientError) as caught:
        await h12345_client.list_dispatched(None)
    assert caught.value.retriable


async def test_40101_on_a_revoked_token_refreshes_once_and_the_call_succeeds(
    h12345_client, h12345_ctl, h12345_sim
):
    await h12345_client.list_dispatched(None)
    assert (await h12345_ctl.post("/_sim/tokens/revoke"))["revoked"] == 1
    page = await h12345_client.list_dispatched(None)
    assert page.total == 0 and h12345_sim.tokens.issued == 2


async def test_40101_twice_raises_auth_error(h12345_client, h12345_ctl, h12345_sim):
    await h12345_ctl.faults(reject_tokens=True)
    with pytest.raises(AuthError):
        await h12345_client.list_dispatched(None)
    assert h12345_sim.tokens.issued == 2


async def test_token_expiry_after_7200_simulated_seconds_is_recovered(
    h12345_client, h12345_ctl, h12345_sim
):
    order_no = await h12345_ctl.dispatch()
    await h12345_client.get_order(order_no)
    await h12345_ctl.advance(7201)
    assert (await h12345_client.get_order(order_no)).orderNo == order_no
    assert h12345_sim.tokens.issued == 2


async def test_token_is_renewed_before_expiry_within_the_margin(
    h12345_session, h12345_config, h12345_sim
):
    now = [0.0]
    client = Client12345(h12345_session, h12345_config, monotonic=lambda: now[0])
    await client.list_dispatched(None)
    now[0] = 7200 - 300 - 1
    await client.list_dispatched(None)
    assert h12345_sim.tokens.issued == 1
    now[0] = 7200 - 300 + 1
    await client.list_dispatched(None)  # the old token is still valid at 12345
    assert h12345_sim.tokens.issued == 2


async def test_429_raises_rate_limited_with_retry_after_seconds(h12345_client, h12345_ctl):
    await h12345_client.token()
    await h12345_ctl.faults(burst_429=1, retry_after="7")
    with pytest.raises(RateLimited) as caught:
        await h12345_client.list_dispatched(None)
    assert caught.value.retry_after == 7.0
    assert h12345_client.budget.slowed  # every later call waits the 7 s out


async def test_rate_limit_per_client_answers_plain_text_429(
    h12345_client, h12345_ctl, h12345_config, h12345_session
):
    token = (await h12345_client.token()).accessToken
    await h12345_ctl.faults(rate_limit_per_s=3)
    results = await asyncio.gather(
        *(h12345_client.list_dispatched(None) for _ in range(8)), return_exceptions=True
    )
    assert any(isinstance(r, RateLimited) for r in results)
    async with h12345_session.get(
        f"{h12345_config.base_url}/orders/dispatched?unitCode=BJZGH",
        headers={"Authorization": f"Bearer {token}"},
    ) as resp:
        assert resp.status == 429 and resp.headers["Retry-After"] == "1"
        assert not resp.content_type.endswith("json")


@pytest.mark.parametrize("status", [502, 504])
async def test_502_and_504_are_unavailable_and_ambiguous(h12345_client, h12345_ctl, status):
    await h12345_client.token()
    await h12345_ctl.faults(error_rate=1.0, error_status=status)
    with pytest.raises(Unavailable) as caught:
        await h12345_client.sign("BJ12345-20261129-000001", SIGN)
    assert caught.value.retriable and caught.value.ambiguous


async def test_503_maintenance_is_unavailable_and_not_ambiguous(h12345_client, h12345_ctl):
    await h12345_client.token()
    await h12345_ctl.faults(maintenance_s=1800)
    with pytest.raises(Unavailable) as caught:
        await h12345_client.list_dispatched(None)
    assert not caught.value.ambiguous
    await h12345_ctl.advance(1801)
    await h12345_client.list_dispatched(None)


async def test_5xx_bodies_are_plain_text_or_html_not_envelopes(
    h12345_session, h12345_config, h12345_ctl
):
    await h12345_ctl.faults(error_rate=1.0, error_status=500)
    async with h12345_session.post(f"{h12345_config.base_url}/oauth/token") as resp:
        assert resp.status == 500 and not resp.content_type.endswith("json")


async def test_http_200_without_an_envelope_is_transient(h12345_session):
    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html>网关错误</html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", html)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        config = Hotline12345Config(
            base_url=f"http://127.0.0.1:{port}/api/v2",
            client_id="c",
            client_secret="s",
            unit_code="BJZGH",
        )
        with pytest.raises(TransientError):
            await Client12345(h12345_session, config).token()
    finally:
        await runner.cleanup()


# --- the adapter ---------------------------------------------------------------------------


async def test_adapter_is_a_hotline(h12345_adapter):
    assert isinstance(h12345_adapter, Hotline)
    assert h12345_adapter.system == "12345"
    assert h12345_adapter.feeds == ("dispatched", "created")
    await h12345_adapter.ping()
    await h12345_adapter.aclose()


async def test_adapter_create_uses_the_action_key_as_request_id_and_reports_replays(
    h12345_adapter, h12345_sim
):
    body = CreateOrderRequest.model_validate(
        create_request("placeholder").model_dump() | {"requestId": "placeholder"}
    )
    action = Action(kind="create_order", key="ref-42:create", target=None, body=body)
    first = await h12345_adapter.perform(action)
    second = await h12345_adapter.perform(action)
    assert first.native_id == second.native_id and not first.replayed and second.replayed
    assert h12345_sim.book.request_ids == {"ref-42:create": first.native_id}


async def test_adapter_performs_sign_reply_extension_and_return(h12345_adapter, h12345_ctl):
    first, second = (await h12345_ctl.post("/_sim/orders", {"count": 2}))["orderNos"]
    await h12345_adapter.perform(Action("sign", "k1", first, None))  # type: ignore[arg-type]
    order = await h12345_adapter.fetch(first)
    extension = ExtensionRequest(reason="需调查", newDeadline=order.deadline + timedelta(days=2))
    await h12345_adapter.perform(Action("extension", "k2", first, extension))
    reply = ReplyRequest(content="已处理。", handler="12351职工服务热线", resolved=True)
    result = await h12345_adapter.perform(Action("reply", "k3", first, reply))
    await h12345_adapter.perform(Action("return", "k4", second, ReturnRequest(reason="非职责")))
    assert result.native_id == first
    assert (await h12345_adapter.fetch(first)).orderStatus == "30"
    assert (await h12345_adapter.fetch(second)).orderStatus == "60"


async def test_adapter_refuses_an_unknown_action_kind(h12345_adapter):
    with pytest.raises(Rejected):
        await h12345_adapter.perform(Action("visit", "k", "BJ12345-1", SIGN))


async def test_connection_refused_is_transient_not_ambiguous(h12345_session):
    config = Hotline12345Config(
        base_url="http://127.0.0.1:9/api/v2", client_id="c", client_secret="s", unit_code="U"
    )
    with pytest.raises(TransientError) as caught:
        await Client12345(h12345_session, config).token()
    assert not caught.value.ambiguous


def test_time_format_is_beijing_local_without_offset():
    assert datetime(2026, 11, 29, 14, 3, 7).strftime(TIME_FORMAT) == "2026-11-29 14:03:07"
