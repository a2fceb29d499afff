"""The 12351 adapter against its simulator over real HTTP: one test per call and quirk
of specs/hotline-12351.md (feed and cursor quirks in test_hotline12351_feed.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from fixtures_12351 import (
    CLIENT_NAME,
    Sim12351,
    create_json,
    create_request,
    s12351_fixture,  # noqa: F401  (the s12351 fixture)
)

from adapters.base import Action, Hotline
from adapters.errors import (
    AuthError,
    Conflict,
    NotFound,
    RateLimited,
    Rejected,
    StaleVersion,
    Unavailable,
)
from adapters.hotline12351.client import idempotency_key
from adapters.simkit import BEIJING
from schemas.hotline12351 import (
    CallbackResultBody,
    Case,
    ExternalRefBody,
    PartnerUpdateBody,
    ReopenedBody,
    WithdrawnBody,
)

AT = datetime(2026, 11, 29, 18, 0, tzinfo=BEIJING)


# --- create -----------------------------------------------------------------------------


async def test_create_case_is_201_with_location_and_a_received_partner_case(s12351: Sim12351):
    status, headers, body = await s12351.raw("POST", "/cases", json=create_json())
    assert status == 201
    assert headers["Location"] == f"/integration/v1/cases/{body['id']}"
    assert headers["ETag"] == '"1"'
    case = Case.model_validate(body)
    assert case.status == "received" and case.channel == "partner" and case.level == "district"
    assert case.origin is not None and case.origin.external_no == "BJ12345-20261129-004211"
    assert case.case_no.startswith("12351-2026-") and len(case.case_no) == len("12351-2026-0001234")


async def test_create_replay_with_same_key_returns_the_original_marked_replayed(
    s12351: Sim12351,
):
    first, replayed_first = await s12351.client.create_case(create_request(), "k-1")
    again, replayed_again = await s12351.client.create_case(create_request(), "k-1")
    assert (replayed_first, replayed_again) == (False, True)
    assert again == first
    assert len(s12351.sim.cases) == 1


async def test_same_key_with_a_different_body_is_409_conflict(s12351: Sim12351):
    await s12351.client.create_case(create_request(), "k-1")
    with pytest.raises(Conflict):
        await s12351.client.create_case(create_request(priority="alert"), "k-1")


async def test_same_key_on_another_path_is_409_conflict(s12351: Sim12351):
    case = await s12351.partner_case(key="k-1")
    with pytest.raises(Conflict):
        await s12351.client.post_event(
            case["id"], "withdrawn", WithdrawnBody(reason="来电人撤回"), "k-1"
        )


async def test_idempotency_keys_are_scoped_per_api_key(s12351: Sim12351):
    other = s12351.adapter(api_key="other-key").client
    await s12351.client.create_case(create_request(), "shared")
    _, replayed = await other.create_case(create_request(priority="alert"), "shared")
    assert replayed is False and len(s12351.sim.cases) == 2


async def test_replay_window_is_24_hours(s12351: Sim12351):
    await s12351.client.create_case(create_request(), "k-1")
    s12351.clock.advance(timedelta(hours=24, seconds=1).total_seconds())
    _, replayed = await s12351.client.create_case(create_request(priority="alert"), "k-1")
    assert replayed is False and len(s12351.sim.cases) == 2


async def test_a_key_over_255_chars_is_hashed_to_fit_and_still_replays(s12351: Sim12351):
    long_key = "referral-" + "x" * 400
    assert len(idempotency_key(long_key)) <= 255
    assert idempotency_key(long_key) == idempotency_key(long_key) != idempotency_key(long_key + "y")
    await s12351.client.create_case(create_request(), long_key)
    _, replayed = await s12351.client.create_case(create_request(), long_key)
    assert replayed is True


async def test_an_executed_422_is_replayed_too(s12351: Sim12351):
    bad = create_json(priority="urgent")
    first = await s12351.raw("POST", "/cases", json=bad, headers={"Idempotency-Key": "k-1"})
    again = await s12351.raw("POST", "/cases", json=bad, headers={"Idempotency-Key": "k-1"})
    assert first[0] == again[0] == 422
    assert "Idempotent-Replayed" not in first[1] and again[1]["Idempotent-Replayed"] == "true"


async def test_a_412_is_not_stored_so_the_key_works_with_a_fresh_version(s12351: Sim12351):
    case = await s12351.partner_case()
    body = PartnerUpdateBody(status="accepted", at=AT)
    with pytest.raises(StaleVersion):
        await s12351.client.post_event(case["id"], "partner_update", body, "u-1", if_match=9)
    _, replayed = await s12351.client.post_event(
        case["id"], "partner_update", body, "u-1", if_match=1
    )
    assert replayed is False


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        pytest.param(create_json(urgency=3), "/urgency", id="top-level"),
        pytest.param(
            create_json(origin={"system": "12345", "external_no": "BJ-1", "area": "x"}),
            "/origin/area",
            id="nested-origin",
        ),
        pytest.param(
            create_json(worker={"name": "王某某", "idCard": "110..."}),
            "/worker/idCard",
            id="nested-worker",
        ),
    ],
)
async def test_unknown_field_on_create_is_422_with_its_pointer(
    s12351: Sim12351, body: dict, pointer: str
):
    status, headers, problem = await s12351.raw("POST", "/cases", json=body)
    assert status == 422
    assert headers["Content-Type"].startswith("application/problem+json")
    assert [e["pointer"] for e in problem["errors"]] == [pointer]


async def test_missing_required_create_fields_are_422_with_pointers(s12351: Sim12351):
    body = create_json()
    for field in ("service_type", "priority", "subject"):
        del body[field]
    body["origin"] = {"system": "12345"}
    status, _, problem = await s12351.raw("POST", "/cases", json=body)
    assert status == 422
    assert {e["pointer"] for e in problem["errors"]} == {
        "/service_type",
        "/priority",
        "/subject",
        "/origin/external_no",
    }


async def test_rejected_error_carries_the_field_pointers(s12351: Sim12351):
    with pytest.raises(Rejected) as info:
        await s12351.client.create_case(create_request(district_code="110120"), "k-1")
    assert [f.pointer for f in info.value.fields] == ["/district_code"]


async def test_district_absent_means_city_level_and_channel_defaults_to_partner(
    s12351: Sim12351,
):
    body = create_json()
    del body["district_code"], body["channel"]
    status, _, case = await s12351.raw("POST", "/cases", json=body)
    assert status == 201
    assert (case["level"], case["district_code"], case["channel"]) == ("city", None, "partner")


@pytest.mark.parametrize(
    ("field", "length", "ok"),
    [
        pytest.param("subject", 200, True, id="subject-200"),
        pytest.param("subject", 201, False, id="subject-201"),
        pytest.param("description", 8000, True, id="description-8000"),
        pytest.param("description", 8001, False, id="description-8001"),
    ],
)
async def test_subject_and_description_lengths_are_enforced(
    s12351: Sim12351, field: str, length: int, ok: bool
):
    status, _, body = await s12351.raw("POST", "/cases", json=create_json(**{field: "工" * length}))
    assert status == (201 if ok else 422)
    if not ok:
        assert body["errors"][0]["pointer"] == f"/{field}"


# --- reads ------------------------------------------------------------------------------


async def test_get_case_etag_is_the_version(s12351: Sim12351):
    case = await s12351.partner_case()
    s12351.sim.agent(case["id"], "dispatch")
    fetched, version = await s12351.client.get_case(case["id"])
    assert version == fetched.version == 2 and fetched.status == "dispatched"


async def test_unknown_case_is_not_found(s12351: Sim12351):
    with pytest.raises(NotFound):
        await s12351.hotline.fetch("00000000-0000-4000-8000-000000000000")


async def test_lookup_by_case_no_gives_zero_or_one_case(s12351: Sim12351):
    case = await s12351.partner_case()
    found = await s12351.client.find_by_case_no(case["case_no"])
    assert found is not None and found.id == case["id"]
    assert await s12351.client.find_by_case_no("12351-2026-9999999") is None


async def test_timeline_starts_with_created_and_names_the_partner_as_actor(s12351: Sim12351):
    case = await s12351.partner_case()
    await s12351.client.post_event(
        case["id"], "partner_update", PartnerUpdateBody(status="accepted", at=AT), "u-1"
    )
    s12351.sim.agent(case["id"], "dispatch", agent="李敏")
    events = await s12351.client.events(case["id"])
    assert [(e.type, e.actor) for e in events] == [
        ("created", f"partner:{CLIENT_NAME}"),
        ("partner_update", f"partner:{CLIENT_NAME}"),
        ("dispatched", "agent:李敏"),
    ]
    assert events[1].body == {"status": "accepted", "at": "2026-11-29T18:00:00+08:00"}


async def test_agent_recorded_case_timeline_starts_with_created_by_an_agent(s12351: Sim12351):
    case = s12351.transferred_case()
    events = await s12351.client.events(case["id"])
    assert [(e.type, e.actor) for e in events] == [
        ("created", "agent:sim"),
        ("transferred", "agent:sim"),
    ]


# --- events -----------------------------------------------------------------------------


async def test_external_ref_records_the_number_on_a_transferred_case(s12351: Sim12351):
    case = s12351.transferred_case()
    body = ExternalRefBody(system="12345", external_no="BJ12345-20261129-000001")
    updated, _ = await s12351.client.post_event(case["id"], "external_ref", body, "r-1")
    assert updated.transfer is not None and updated.transfer.external_no == body.external_no
    assert updated.version == 3


async def test_external_ref_with_the_same_number_again_is_a_noop_not_on_the_timeline(
    s12351: Sim12351,
):
    case = s12351.transferred_case()
    body = ExternalRefBody(system="12345", external_no="BJ12345-20261129-000001")
    first, _ = await s12351.client.post_event(case["id"], "external_ref", body, "r-1")
    again, replayed = await s12351.client.post_event(case["id"], "external_ref", body, "r-2")
    assert replayed is False and again.version == first.version
    assert [e["type"] for e in s12351.sim.events[case["id"]]].count("external_ref") == 1


async def test_external_ref_with_a_different_number_is_409(s12351: Sim12351):
    case = s12351.transferred_case()
    await s12351.client.post_event(
        case["id"], "external_ref", ExternalRefBody(system="12345", external_no="A-1"), "r-1"
    )
    with pytest.raises(Conflict):
        await s12351.client.post_event(
            case["id"], "external_ref", ExternalRefBody(system="12345", external_no="B-2"), "r-2"
        )


@pytest.mark.parametrize("to", ["12345", "12333"])
async def test_external_ref_only_on_a_case_transferred_to_that_system(s12351: Sim12351, to: str):
    case = s12351.transferred_case(to="12333") if to == "12345" else await s12351.partner_case()
    with pytest.raises(Conflict):
        await s12351.client.post_event(
            case["id"], "external_ref", ExternalRefBody(system="12345", external_no="A-1"), "r-1"
        )


async def test_callback_result_moves_responded_to_callback_done(s12351: Sim12351):
    case = await s12351.partner_case()
    s12351.respond(case["id"])
    body = CallbackResultBody(satisfaction="satisfied", at=AT, note="满意")
    updated, _ = await s12351.client.post_event(case["id"], "callback_result", body, "cb-1")
    assert updated.status == "callback_done"
    assert updated.callback is not None and updated.callback.satisfaction == "satisfied"


async def test_callback_result_elsewhere_is_recorded_on_the_timeline_only(s12351: Sim12351):
    case = await s12351.partner_case()
    body = CallbackResultBody(satisfaction="dissatisfied", at=AT)
    updated, _ = await s12351.client.post_event(case["id"], "callback_result", body, "cb-1")
    assert (updated.status, updated.callback, updated.version) == ("received", None, 2)
    assert s12351.sim.events[case["id"]][-1]["type"] == "callback_result"


async def test_partner_update_adds_to_the_timeline_only_on_any_case(s12351: Sim12351):
    case = s12351.transferred_case()
    before = case["version"]
    body = PartnerUpdateBody(status="replied", text="已答复", at=AT, satisfaction="satisfied")
    updated, _ = await s12351.client.post_event(case["id"], "partner_update", body, "u-1")
    assert (
        updated.status == "transferred"
        and updated.transfer == Case.model_validate(s12351.sim.cases[case["id"]]).transfer
    )
    assert updated.version == before + 1  # a change all the same: it comes back in the feed
    assert s12351.sim.events[case["id"]][-1]["body"]["text"] == "已答复"


async def test_withdrawn_closes_the_partners_own_case(s12351: Sim12351):
    case = await s12351.partner_case()
    updated, _ = await s12351.client.post_event(
        case["id"], "withdrawn", WithdrawnBody(reason="来电人撤回"), "w-1"
    )
    assert updated.status == "closed"


async def test_withdrawn_on_a_case_the_partner_did_not_create_is_409(s12351: Sim12351):
    case = s12351.transferred_case()
    with pytest.raises(Conflict):
        await s12351.client.post_event(case["id"], "withdrawn", WithdrawnBody(reason="x"), "w-1")


@pytest.mark.parametrize("final", ["close", "reject"])
async def test_withdrawn_on_a_closed_or_rejected_case_is_a_noop(s12351: Sim12351, final: str):
    case = await s12351.partner_case()
    params = {"reason": "不属于工会受理范围"} if final == "reject" else {}
    s12351.sim.agent(case["id"], final, **params)
    before = dict(s12351.sim.cases[case["id"]])
    updated, _ = await s12351.client.post_event(
        case["id"], "withdrawn", WithdrawnBody(reason="x"), "w-1"
    )
    assert updated.version == before["version"] and updated.status == before["status"]
    assert s12351.sim.events[case["id"]][-1]["type"] != "withdrawn"


@pytest.mark.parametrize("after_callback", [False, True])
async def test_reopened_sends_a_responded_case_back_to_handling(
    s12351: Sim12351, after_callback: bool
):
    case = await s12351.partner_case()
    s12351.respond(case["id"])
    if after_callback:
        s12351.sim.agent(case["id"], "callback", satisfaction="dissatisfied")
    body = ReopenedBody(reason="来电人不满意", at=AT)
    updated, _ = await s12351.client.post_event(case["id"], "reopened", body, "re-1")
    assert updated.status == "handling" and updated.reopen_count == 1
    assert updated.response is None and updated.callback is None


async def test_reopened_outside_responded_or_callback_done_is_409(s12351: Sim12351):
    case = await s12351.partner_case()
    with pytest.raises(Conflict):
        await s12351.client.post_event(
            case["id"], "reopened", ReopenedBody(reason="x", at=AT), "re-1"
        )


async def test_reopened_on_a_case_the_partner_did_not_create_is_409(s12351: Sim12351):
    case = s12351.sim.record_case(subject="咨询如何加入工会", service_type="union_membership")
    s12351.respond(case["id"])
    with pytest.raises(Conflict):
        await s12351.client.post_event(
            case["id"], "reopened", ReopenedBody(reason="x", at=AT), "re-1"
        )


# --- concurrency ------------------------------------------------------------------------


async def test_stale_if_match_is_412(s12351: Sim12351):
    case = await s12351.partner_case()
    s12351.sim.agent(case["id"], "dispatch")
    with pytest.raises(StaleVersion):
        await s12351.client.post_event(
            case["id"], "partner_update", PartnerUpdateBody(status="accepted", at=AT), "u-1", 1
        )


@pytest.mark.parametrize(
    ("if_match", "status"),
    [
        pytest.param('"1"', 200, id="strong"),
        pytest.param('W/"1"', 200, id="weak"),
        pytest.param('"5", W/"1"', 200, id="list"),
        pytest.param("*", 200, id="star"),
        pytest.param('"2", "3"', 412, id="list-stale"),
        pytest.param("1", 400, id="unquoted"),
    ],
)
async def test_if_match_forms(s12351: Sim12351, if_match: str, status: int):
    case = await s12351.partner_case()
    event = {"type": "partner_update", "status": "accepted", "at": AT.isoformat()}
    got, _, _ = await s12351.raw(
        "POST", f"/cases/{case['id']}/events", json=event, headers={"If-Match": if_match}
    )
    assert got == status


async def test_update_with_retry_on_412_rereads_and_decides_again(s12351: Sim12351):
    case = await s12351.partner_case()
    s12351.respond(case["id"])
    seen: list[str] = []

    def decide(current: Case) -> ReopenedBody | None:
        seen.append(current.status)
        if len(seen) == 1:  # an agent acts between our read and our write
            s12351.sim.agent(case["id"], "callback", satisfaction="unreachable")
        return ReopenedBody(reason="来电人不满意", at=AT)

    result = await s12351.hotline.update_with_retry_on_412(case["id"], decide, "re-1")
    assert seen == ["responded", "callback_done"]
    assert result is not None and result.record.status == "handling"


async def test_update_with_retry_on_412_does_nothing_when_decide_says_none(s12351: Sim12351):
    case = await s12351.partner_case()
    assert await s12351.hotline.update_with_retry_on_412(case["id"], lambda c: None, "k") is None
    assert s12351.sim.cases[case["id"]]["version"] == 1


# --- the Hotline seam -------------------------------------------------------------------


async def test_adapter_is_a_hotline_with_one_cases_feed(s12351: Sim12351):
    assert isinstance(s12351.hotline, Hotline)
    assert (s12351.hotline.system, s12351.hotline.feeds) == ("12351", ("cases",))
    await s12351.hotline.ping()


async def test_limit_is_passed_through_so_12351_refuses_it(s12351: Sim12351):
    with pytest.raises(Rejected):
        await s12351.client.list_cases(limit=501)


async def test_perform_create_and_events_with_the_action_key(s12351: Sim12351):
    create = Action("create_case", "ref-1/create", None, create_request())
    created = await s12351.hotline.perform(create)
    replay = await s12351.hotline.perform(create)
    assert (created.replayed, replay.replayed) == (False, True)
    assert created.native_id == replay.native_id == created.record.id
    update = Action(
        "partner_update", "ref-1/u", created.native_id, PartnerUpdateBody(status="accepted", at=AT)
    )
    result = await s12351.hotline.perform(update)
    assert result.record.version == 2


async def test_perform_refuses_a_body_of_the_wrong_kind(s12351: Sim12351):
    with pytest.raises(Rejected):
        await s12351.hotline.perform(
            Action("withdrawn", "k", "id", ReopenedBody(reason="x", at=AT))
        )


# --- auth, rate limits, maintenance -----------------------------------------------------


async def test_wrong_api_key_is_auth_error(s12351: Sim12351):
    with pytest.raises(AuthError):
        await s12351.adapter(api_key="wrong").ping()


async def test_missing_api_key_is_401_problem(s12351: Sim12351):
    status, headers, problem = await s12351.raw("GET", "/cases", key=None)
    assert status == 401 and problem["status"] == 401
    assert headers["Content-Type"].startswith("application/problem+json")


async def test_429_with_retry_after_in_seconds(s12351: Sim12351):
    s12351.sim.faults.update({"burst_429": 1, "retry_after": "7"})
    with pytest.raises(RateLimited) as info:
        await s12351.hotline.ping()
    assert info.value.retry_after == 7
    assert s12351.hotline.budget.slowed  # every later call waits the 7 s out


async def test_429_with_retry_after_as_an_http_date(s12351: Sim12351):
    when = datetime.now(UTC) + timedelta(seconds=120)
    status, _ = await s12351.control(
        "POST", "/faults", {"burst_429": 1, "retry_after": format_datetime(when, usegmt=True)}
    )
    assert status == 200
    with pytest.raises(RateLimited) as info:
        await s12351.hotline.ping()
    assert 100 < info.value.retry_after <= 120


async def test_rate_limit_per_second_gives_429(s12351: Sim12351):
    s12351.sim.faults.update({"rate_limit_per_s": 2})
    await s12351.hotline.ping()
    await s12351.hotline.ping()
    with pytest.raises(RateLimited):
        await s12351.hotline.ping()


async def test_503_maintenance_is_transient_and_ends_when_the_clock_moves(s12351: Sim12351):
    await s12351.control("POST", "/faults", {"maintenance_s": 1800})
    with pytest.raises(Unavailable) as info:
        await s12351.hotline.ping()
    assert info.value.retriable and not info.value.ambiguous
    await s12351.control("POST", "/advance", {"seconds": 1801})
    await s12351.hotline.ping()
