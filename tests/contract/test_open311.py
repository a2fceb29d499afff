"""The Open311 adapter (`Hotline385`) against the 12385 simulator over real HTTP: one test
per call and per rule of section 8 of specs/open311-georeport-v2.md (the feed in
test_open311_feed.py, the rate limit and the key's secrecy in test_open311_limits.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fixtures_open311 import (  # noqa: F401  (the s385 fixture)
    OTHER_KEY,
    START,
    Sim385,
    create_form,
    s385_fixture,
)
from pydantic import ValidationError

from adapters.base import Action, Hotline
from adapters.errors import (
    AuthError,
    Conflict,
    NotFound,
    Rejected,
    TransientError,
    Unavailable,
)
from adapters.simkit import BEIJING
from schemas.open311 import PostUpdateForm, TokenAnswer

AT = datetime(2026, 11, 29, 9, 10, 15, 987654, tzinfo=BEIJING)  # before START


def update(request_id: str, status: str = "IN_PROGRESS", **fields) -> Action:
    values = {
        "service_request_id": request_id,
        "update_id": f"12351-2026-0000001.{status.lower()}",
        "status": status,
        "updated_datetime": AT,
        "description": "工会已受理" if status != "FIXED" else "已协调补发工资",
    } | fields
    return Action("post_update", values["update_id"], request_id, PostUpdateForm(**values))


def create(**overrides) -> Action:
    form = create_form(**overrides)
    return Action("create_request", form.external_ref, None, form)


async def test_the_adapter_is_a_hotline_named_by_its_config(s385: Sim385):
    assert isinstance(s385.hotline, Hotline)
    assert s385.hotline.system == "12385" and s385.hotline.feeds == ("updates",)
    assert s385.hotline.window_current is False


async def test_services_and_definitions_are_typed(s385: Sim385):
    services = await s385.hotline.client.services()
    assert {s.service_code for s in services} >= {"DP-EMPLOY", "DP-RIGHTS"}
    assert all(s.metadata is True for s in services)
    definition = await s385.hotline.client.service_definition("DP-SUBSIDY")
    assert [a.code for a in definition.attributes] == ["external_ref", "disability_card_no"]
    with pytest.raises(NotFound):
        await s385.hotline.client.service_definition("DP-NONE")


# --- create_request -----------------------------------------------------------------------


async def test_create_on_a_realtime_service_answers_the_id_at_once(s385: Sim385):
    result = await s385.hotline.perform(create())
    private = s385.sim.private(result.native_id)
    assert private["attributes"] == {"external_ref": "12351-2026-0001234", "confidential": "true"}
    assert private["phone"] == "010-62345678"
    assert s385.sim.requests[result.native_id]["agency_responsible"] == "12385"


async def test_create_on_a_batch_service_waits_5_s_then_reads_the_token(s385: Sim385):
    before = s385.clock.now()
    result = await s385.hotline.perform(create(service_code="DP-EMPLOY"))
    assert isinstance(result.record, TokenAnswer) and result.native_id in s385.sim.requests
    assert s385.clock.now() - before >= timedelta(seconds=5)
    assert len(s385.sim.calls.calls_to("GET /tokens/{token}.{ext}")) == 1


async def test_a_token_still_without_id_is_transient_and_the_retry_replays_the_token(
    s385: Sim385,
):
    async def no_time_passes(seconds: float) -> None:
        pass

    from adapters.open311 import Hotline385

    hasty = Hotline385(s385.session, s385.config(token_polls=2), sleep=no_time_passes)
    with pytest.raises(TransientError, match="still has no request id"):
        await hasty.perform(create(service_code="DP-EMPLOY"))
    assert len(s385.sim.calls.calls_to("GET /tokens/{token}.{ext}")) == 2
    count = len(s385.sim.requests)
    result = await s385.hotline.perform(create(service_code="DP-EMPLOY"))
    assert len(s385.sim.requests) == count and len(s385.sim.book.tokens) == 1
    assert result.native_id == next(iter(s385.sim.book.tokens.values()))


async def test_the_same_external_ref_makes_one_request(s385: Sim385):
    first = await s385.hotline.perform(create())
    again = await s385.hotline.perform(create(description="重发时内容不同"))
    assert first.native_id == again.native_id
    assert sum(1 for m in s385.sim.book.meta.values() if m.created_by == "12351") == 1


async def test_a_create_12385_refuses_is_rejected_with_its_description(s385: Sim385):
    with pytest.raises(Rejected, match="disability_card_no"):
        await s385.hotline.perform(create(service_code="DP-SUBSIDY"))
    with pytest.raises(NotFound):
        await s385.hotline.perform(create(service_code="DP-NONE", external_ref="x-2"))


def test_the_create_form_checks_what_12385_refuses():
    with pytest.raises(ValidationError):
        create_form(address_string=None)
    with pytest.raises(ValidationError):
        create_form(description="字" * 4001)
    with pytest.raises(ValidationError):
        create_form(email="nobody")
    assert create_form(description="字" * 4000).description


async def test_lat_and_long_travel_as_numbers_and_are_a_location(s385: Sim385):
    result = await s385.hotline.perform(create(address_string=None, lat=39.9042, long=116.4074))
    request = await s385.hotline.fetch(result.native_id)
    assert (request.lat, request.long) == (39.9042, 116.4074)


# --- post_update --------------------------------------------------------------------------


async def test_post_update_sends_upper_case_and_the_bodys_own_time(s385: Sim385):
    request_id = s385.referred_to_us()
    result = await s385.hotline.perform(update(request_id))
    [written] = [
        u for u in s385.updates_of(request_id) if u["update_id"] == result.record.update_id
    ]
    assert written["status"] == "in_progress"
    assert written["updated_datetime"] == "2026-11-29T09:10:15+08:00"  # no fraction, +08:00


def test_the_update_form_refuses_lower_case_a_bad_id_and_fixed_without_an_answer():
    for fields in (
        {"status": "in_progress"},
        {"update_id": "a b"},
        {"status": "FIXED", "description": ""},
    ):
        values = {
            "service_request_id": "1",
            "update_id": "k",
            "status": "CLOSED",
            "updated_datetime": AT,
        }
        with pytest.raises(ValidationError):
            PostUpdateForm(**(values | fields))


async def test_fixed_closes_and_no_further_action_hands_the_request_back(s385: Sim385):
    request_id = s385.referred_to_us()
    await s385.hotline.perform(update(request_id, "FIXED"))
    request = await s385.hotline.fetch(request_id)
    assert (request.status, request.status_notes) == ("closed", "已协调补发工资")
    other = s385.referred_to_us()
    await s385.hotline.perform(update(other, "NO_FURTHER_ACTION", description="非工会职责"))
    refused = await s385.hotline.fetch(other)
    assert (refused.agency_responsible, refused.status, refused.phone) == ("12385", "open", None)


async def test_a_replayed_update_answers_the_original_id(s385: Sim385):
    request_id = s385.referred_to_us()
    first = await s385.hotline.perform(update(request_id))
    again = await s385.hotline.perform(update(request_id))
    assert first.record.update_id == again.record.update_id
    assert len(s385.updates_of(request_id)) == 2  # the referral and one update


async def test_the_same_update_id_with_other_values_is_a_conflict(s385: Sim385):
    request_id = s385.referred_to_us()
    await s385.hotline.perform(update(request_id))
    with pytest.raises(Conflict, match="already exists"):
        await s385.hotline.perform(update(request_id, description="另一段文字"))


async def test_an_update_on_a_request_not_referred_to_us_is_rejected(s385: Sim385):
    city = next(i for i, r in s385.sim.requests.items() if r["agency_responsible"] == "12345")
    with pytest.raises(Rejected, match="not referred"):
        await s385.hotline.perform(update(city))
    with pytest.raises(NotFound):
        await s385.hotline.perform(update("nope"))


async def test_an_action_with_the_wrong_body_or_kind_is_rejected(s385: Sim385):
    with pytest.raises(Rejected):
        await s385.hotline.perform(Action("post_update", "k", "1", create_form()))
    with pytest.raises(Rejected):
        await s385.hotline.perform(Action("sign", "k", "1", create_form()))
    with pytest.raises(Rejected, match="differ"):
        await s385.hotline.perform(Action("post_update", "k", "2", update("1").body))


# --- reads, fields, errors ---------------------------------------------------------------


async def test_fetch_shows_private_fields_only_to_the_partner_it_is_referred_to(s385: Sim385):
    request_id = s385.referred_to_us()
    ours = await s385.hotline.fetch(request_id)
    assert (ours.last_name, ours.phone, ours.attributes) == ("王", "13812345678", {})
    theirs = await s385.adapter(api_key=OTHER_KEY).fetch(request_id)
    assert theirs.phone is None and theirs.attributes is None and theirs.description
    with pytest.raises(NotFound):
        await s385.hotline.fetch("nope")


async def test_lists_are_bare_arrays_of_public_requests(s385: Sim385):
    requests = await s385.hotline.client.requests(statuses=["open"], end=START)
    assert len(requests) == len(s385.sim.requests)
    assert all(r.phone is None for r in requests)
    ids = [r.service_request_id for r in requests[:2]]
    assert [r.service_request_id for r in await s385.hotline.client.requests(ids=ids)] == ids


async def test_a_wrong_key_is_an_auth_error(s385: Sim385):
    with pytest.raises(AuthError):
        await s385.adapter(api_key="wrong-key").ping()


async def test_maintenance_is_unavailable_and_a_500_transient(s385: Sim385):
    await s385.control("POST", "/faults", {"maintenance_s": 600})
    with pytest.raises(Unavailable):
        await s385.hotline.ping()
    await s385.control("DELETE", "/faults")
    await s385.control("POST", "/faults", {"error_rate": 1.0, "error_status": 500})
    with pytest.raises(TransientError) as caught:
        await s385.hotline.ping()
    assert caught.value.ambiguous


async def test_ping_is_one_call(s385: Sim385):
    await s385.hotline.ping()
    assert [c.route for c in s385.sim.calls.calls_to()] == ["GET /services.{ext}"]


async def test_a_lost_answer_is_ambiguous_and_the_retry_replays_the_same_request(s385: Sim385):
    await s385.control("POST", "/faults", {"lost_rate": 1.0})
    with pytest.raises(Unavailable) as caught:
        await s385.hotline.perform(create())
    assert caught.value.ambiguous
    made = [i for i, m in s385.sim.book.meta.items() if m.created_by == "12351"]
    await s385.control("DELETE", "/faults")
    result = await s385.hotline.perform(create())
    assert [result.native_id] == made


async def test_times_in_queries_keep_their_plus_as_percent_2b(s385: Sim385):
    requests = await s385.hotline.client.requests(start=START - timedelta(days=1), end=START)
    assert len(requests) == len(s385.sim.requests)
    [call] = s385.sim.calls.calls_to("GET /requests.{ext}")
    assert call.query["end_date"] == "2026-11-29T09:12:44+08:00"  # a raw `+` would be a space
