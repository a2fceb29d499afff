"""The 12385 simulator over raw HTTP: every rule of section 8 of
specs/open311-georeport-v2.md. Strictness here keeps the adapter's contract tests honest."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from fixtures_open311 import (  # noqa: F401  (the s385 fixture)
    KEY,
    OTHER_KEY,
    START,
    Sim385,
    q,
    running_sim,
    s385_fixture,
)

from schemas.open311 import open311_time

FORM = [
    ("service_code", "DP-RIGHTS"),
    ("address_string", "北京市朝阳区某路3号"),
    ("description", "反映无障碍坡道被占用"),
    ("attribute[external_ref]", "12351-2026-0000007"),
]


def window(hours: float = 1) -> str:
    now = START
    return f"start_date={q(now - timedelta(hours=hours))}&end_date={q(now)}"


# --- paths, check order, keys -------------------------------------------------------


@pytest.mark.parametrize("path", ["/services.xml", "/services", "/services.json.xml"])
async def test_any_suffix_but_json_is_404_bad_extension(s385: Sim385, path: str):
    status, _, body = await s385.raw("GET", path)
    assert status == 404
    if path != "/services":
        assert body == [{"code": 404, "description": "Bad extension"}]


async def test_bad_extension_comes_before_the_key_check(s385: Sim385):
    status, _, _ = await s385.raw("GET", "/services.xml", key=None)
    assert status == 404


@pytest.mark.parametrize("key", [None, "wrong-key"])
async def test_a_missing_or_wrong_api_key_is_403_with_an_error_array(s385: Sim385, key):
    status, _, body = await s385.raw("GET", "/services.json", key=key)
    assert status == 403 and body[0]["code"] == 403


async def test_api_key_authenticates_only_from_the_form_on_a_post(s385: Sim385):
    status, _, _ = await s385.raw(
        "POST", "/requests.json", query=f"api_key={KEY}", form=FORM, key=None
    )
    assert status == 403


async def test_a_json_body_is_400_before_the_key_and_not_counted():
    async with running_sim(rate_limit_per_min=1) as s385:
        status, _, body = await s385.raw("POST", "/requests.json", json={"x": 1}, key=None)
        assert status == 400 and body[0]["code"] == 400
        status, _, _ = await s385.raw("GET", "/services.json")
        assert status == 200


async def test_403_is_not_counted_toward_the_rate_limit():
    async with running_sim(rate_limit_per_min=2) as s385:
        for _ in range(3):
            assert (await s385.raw("GET", "/services.json", key="wrong"))[0] == 403
        assert [(await s385.raw("GET", "/services.json"))[0] for _ in range(3)] == [200, 200, 429]


async def test_429_has_an_integer_retry_after_and_an_error_array_and_counts_too():
    async with running_sim(rate_limit_per_min=2) as s385:
        for _ in range(2):
            assert (await s385.raw("GET", "/services.json"))[0] == 200
        status, headers, body = await s385.raw("GET", "/services.json")
        assert status == 429 and body == [{"code": 429, "description": "rate limit exceeded"}]
        assert headers["Retry-After"].isdigit() and 1 <= int(headers["Retry-After"]) <= 60
        assert s385.sim.counts["rate_limited"] == 1
        # The window is per api_key: the other key still gets through.
        assert (await s385.raw("GET", "/services.json", key=OTHER_KEY))[0] == 200


async def test_the_rate_window_slides_and_retry_after_says_when():
    async with running_sim(rate_limit_per_min=2, rate_window_s=1.0) as s385:
        await s385.raw("GET", "/services.json")
        await s385.raw("GET", "/services.json")
        status, headers, _ = await s385.raw("GET", "/services.json")
        assert status == 429 and headers["Retry-After"] == "1"
        await asyncio.sleep(1.05)
        assert (await s385.raw("GET", "/services.json"))[0] == 200


async def test_429_comes_before_validation():
    async with running_sim(rate_limit_per_min=1) as s385:
        await s385.raw("GET", "/services.json")
        status, _, _ = await s385.raw("GET", "/servicerequestupdates.json")
        assert status == 429


async def test_validation_400_comes_before_unknown_id_404(s385: Sim385):
    assert (await s385.raw("GET", "/requests/nope.json", query="x=1"))[0] == 400
    assert (await s385.raw("GET", "/requests/nope.json"))[0] == 404


async def test_a_wrong_method_is_400(s385: Sim385):
    status, _, body = await s385.raw("DELETE", "/services.json", query=f"api_key={KEY}", key=None)
    assert status == 400 and "DELETE" in body[0]["description"]


async def test_a_jurisdiction_other_than_bj_12385_is_404(s385: Sim385):
    assert (await s385.raw("GET", "/services.json", query="jurisdiction_id=bj.12385"))[0] == 200
    assert (await s385.raw("GET", "/services.json", query="jurisdiction_id=sh.12385"))[0] == 404


# --- services ---------------------------------------------------------------------------


async def test_services_table_with_json_booleans_and_one_batch_service(s385: Sim385):
    status, _, body = await s385.raw("GET", "/services.json")
    assert status == 200 and isinstance(body, list)
    by_code = {s["service_code"]: s for s in body}
    assert set(by_code) == {
        "DP-REHAB",
        "DP-SUBSIDY",
        "DP-EMPLOY",
        "DP-ACCESS",
        "DP-RIGHTS",
        "DP-OTHER",
    }
    assert all(s["metadata"] is True for s in body)
    assert [c for c, s in by_code.items() if s["type"] == "batch"] == ["DP-EMPLOY"]
    assert "," in by_code["DP-REHAB"]["keywords"] and by_code["DP-OTHER"]["group"] == "其他"


async def test_a_definition_lists_external_ref_and_its_own_attributes(s385: Sim385):
    _, _, body = await s385.raw("GET", "/services/DP-SUBSIDY.json")
    attrs = {a["code"]: a for a in body["attributes"]}
    assert attrs["external_ref"]["required"] is False
    assert attrs["disability_card_no"]["required"] is True
    assert (await s385.raw("GET", "/services/DP-NONE.json"))[0] == 404


# --- POST requests ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        pytest.param([("colour", "red")], "colour", id="unknown-field"),
        pytest.param([("attribute[mood]", "x")], "mood", id="unknown-attribute"),
        pytest.param(
            [("attribute[confidential]", "yes")], "confidential", id="confidential-not-bool"
        ),
        pytest.param([("email", "nobody")], "email", id="email-without-at"),
        pytest.param([("phone", "1" * 31)], "phone", id="phone-over-30"),
        pytest.param([("description", "字" * 4001)], "description", id="description-over-4000"),
        pytest.param([("lat", "91"), ("long", "116")], "lat", id="lat-out-of-range"),
    ],
)
async def test_post_requests_refuses_with_400_naming_the_field(s385: Sim385, change, fragment):
    status, _, body = await s385.raw("POST", "/requests.json", form=FORM + change)
    assert status == 400 and fragment in body[0]["description"]


async def test_a_description_of_exactly_4000_code_points_is_accepted(s385: Sim385):
    form = [f for f in FORM if f[0] != "description"] + [("description", "😀" * 4000)]
    assert (await s385.raw("POST", "/requests.json", form=form))[0] == 200


@pytest.mark.parametrize(
    "location",
    [[], [("address_string", "")], [("address_id", "A-1")], [("lat", "39.9")]],
    ids=["none", "empty", "address-id-alone", "lat-alone"],
)
async def test_a_location_is_required(s385: Sim385, location):
    form = [f for f in FORM if f[0] != "address_string"] + location
    status, _, body = await s385.raw("POST", "/requests.json", form=form)
    assert status == 400 and "location" in body[0]["description"]


async def test_lat_and_long_are_a_location_and_read_back_as_numbers(s385: Sim385):
    form = [f for f in FORM if f[0] != "address_string"] + [("lat", "39.9"), ("long", "116.4")]
    _, _, body = await s385.raw("POST", "/requests.json", form=form)
    _, _, [request] = await s385.raw("GET", f"/requests/{body[0]['service_request_id']}.json")
    assert (request["lat"], request["long"], request["address"]) == (39.9, 116.4, None)


async def test_a_required_attribute_is_required_and_an_unknown_service_is_404(s385: Sim385):
    form = [("service_code", "DP-SUBSIDY"), *FORM[1:]]
    status, _, body = await s385.raw("POST", "/requests.json", form=form)
    assert status == 400 and "disability_card_no" in body[0]["description"]
    form = [("service_code", "DP-NONE"), *FORM[1:3]]
    assert (await s385.raw("POST", "/requests.json", form=form))[0] == 404


async def test_the_same_external_ref_replays_the_first_answer_whatever_the_fields(s385: Sim385):
    before = len(s385.sim.requests)
    _, _, first = await s385.raw("POST", "/requests.json", form=FORM)
    changed = [*FORM[:2], ("description", "完全不同的内容"), FORM[3]]
    _, _, again = await s385.raw("POST", "/requests.json", form=changed)
    assert first == again and "service_request_id" in first[0]
    assert len(s385.sim.requests) == before + 1
    _, _, other = await s385.raw("POST", "/requests.json", form=FORM, key=OTHER_KEY)
    assert other != first  # replays are per api_key


async def test_a_batch_service_answers_a_token_that_gets_its_id_5_seconds_later(s385: Sim385):
    form = [("service_code", "DP-EMPLOY"), *FORM[1:]]
    _, _, [answer] = await s385.raw("POST", "/requests.json", form=form)
    token = answer["token"]
    assert set(answer) == {"token"}
    assert (await s385.raw("GET", f"/tokens/{token}.json"))[2] == [{"token": token}]
    s385.clock.advance(4.9)
    assert (await s385.raw("GET", f"/tokens/{token}.json"))[2] == [{"token": token}]
    s385.clock.advance(0.2)
    _, _, [ready] = await s385.raw("GET", f"/tokens/{token}.json")
    assert ready["token"] == token and ready["service_request_id"] in s385.sim.requests
    assert (await s385.raw("GET", f"/requests/{token}.json"))[0] == 404
    assert (await s385.raw("GET", "/tokens/unknown.json"))[0] == 404
    again = await s385.raw("POST", "/requests.json", form=form)
    assert again[2] == [{"token": token}]


# --- GET requests ---------------------------------------------------------------------


async def test_lists_carry_no_private_fields_and_come_newest_first(s385: Sim385):
    _, _, body = await s385.raw("GET", "/requests.json")
    assert body and all("phone" not in r and "first_name" not in r for r in body)
    keys = [(r["requested_datetime"], r["service_request_id"]) for r in body]
    assert keys == sorted(keys, reverse=True)
    for field in ("status_notes", "expected_datetime", "lat", "long", "zipcode", "media_url"):
        assert field in body[0]


async def test_requests_span_and_filters(s385: Sim385):
    day = timedelta(days=1)
    ok = f"start_date={q(START - 90 * day)}&end_date={q(START)}"
    assert (await s385.raw("GET", "/requests.json", query=ok))[0] == 200
    too_long = f"start_date={q(START - 91 * day)}&end_date={q(START)}"
    assert (await s385.raw("GET", "/requests.json", query=too_long))[0] == 400
    backwards = f"start_date={q(START)}&end_date={q(START - day)}"
    assert (await s385.raw("GET", "/requests.json", query=backwards))[0] == 400
    assert (await s385.raw("GET", "/requests.json", query="status=pending"))[0] == 400
    _, _, closed = await s385.raw("GET", "/requests.json", query="status=closed")
    assert closed == []
    _, _, none = await s385.raw("GET", "/requests.json", query="service_code=DP-NONE")
    assert none == []
    _, _, old = await s385.raw("GET", "/requests.json", query=f"end_date={q(START - day)}")
    assert old == []


async def test_service_request_id_bypasses_the_window_and_skips_unknown_ids(s385: Sim385):
    ids = sorted(s385.sim.requests)[:2]
    s385.clock.advance(timedelta(days=200).total_seconds())
    assert (await s385.raw("GET", "/requests.json"))[2] == []
    query = f"service_request_id={ids[0]},nope,{ids[1]}&status=closed"
    _, _, body = await s385.raw("GET", "/requests.json", query=query)
    assert [r["service_request_id"] for r in body] == ids


@pytest.mark.parametrize(
    "value",
    ["2026-11-29T09:00:00.5+08:00", "2026-11-29T09:00:00", "2026-11-29T09:00:00 08:00"],
    ids=["fraction", "no-zone", "plus-sent-as-space"],
)
async def test_a_time_with_fractions_without_zone_or_with_a_raw_plus_is_400(s385: Sim385, value):
    status, _, _ = await s385.raw(
        "GET", "/requests.json", query=f"start_date={value.replace(' ', '+')}"
    )
    assert status == 400


@pytest.mark.parametrize("value", ["2026-11-29T01:00:00Z", "2026-11-29T03:00:00%2B02:00"])
async def test_z_or_any_offset_is_accepted(s385: Sim385, value):
    assert (await s385.raw("GET", "/requests.json", query=f"start_date={value}"))[0] == 200


# --- servicerequestupdates -----------------------------------------------------------------


async def test_updates_need_both_dates_and_at_most_24_hours(s385: Sim385):
    start = f"start_date={q(START)}"
    assert (await s385.raw("GET", "/servicerequestupdates.json", query=start))[0] == 400
    assert (await s385.raw("GET", "/servicerequestupdates.json", query=window(24)))[0] == 200
    assert (await s385.raw("GET", "/servicerequestupdates.json", query=window(24.01)))[0] == 400


async def test_updates_are_the_callers_own_oldest_first_in_lower_case(s385: Sim385):
    _, _, ours = await s385.raw("GET", "/servicerequestupdates.json", query=window())
    _, _, city = await s385.raw("GET", "/servicerequestupdates.json", query=window(), key=OTHER_KEY)
    assert [u["description"] for u in ours] == ["转介至12351"] * 3
    assert [u["description"] for u in city] == ["转介至12345"] * 2
    assert all(u["status"] == "internal_referral" for u in ours + city)
    keys = [(u["updated_datetime"], u["update_id"]) for u in ours]
    assert keys == sorted(keys)
    assert set(ours[0]) >= {
        "update_id",
        "service_request_id",
        "status",
        "description",
        "updated_datetime",
        "media_url",
    }


async def test_the_window_matches_inclusively_on_both_ends(s385: Sim385):
    _, _, [first, *_] = await s385.raw("GET", "/servicerequestupdates.json", query=window())
    at = first["updated_datetime"].replace("+", "%2B")
    _, _, exact = await s385.raw(
        "GET", "/servicerequestupdates.json", query=f"start_date={at}&end_date={at}"
    )
    assert first in exact


async def test_over_1000_updates_in_a_window_answers_the_oldest_1000(s385: Sim385):
    request_id = s385.referred_to_us()
    for _ in range(1001):
        s385.sim.staff_update(request_id, "reopen")
    _, _, body = await s385.raw("GET", "/servicerequestupdates.json", query=window())
    assert len(body) == 1000
    assert body[0]["description"] == "转介至12351"


# --- POST servicerequestupdates -------------------------------------------------------------


def update_form(request_id: str, **fields: str) -> list[tuple[str, str]]:
    values = {
        "service_request_id": request_id,
        "update_id": "12351-2026-0000001:in_progress",
        "status": "IN_PROGRESS",
        "updated_datetime": open311_time(START),
        "description": "工会已受理",
    } | fields
    return list(values.items())


async def test_posting_an_update_answers_the_server_id_and_moves_the_request(s385: Sim385):
    request_id = s385.referred_to_us()
    status, _, body = await s385.raw(
        "POST", "/servicerequestupdates.json", form=update_form(request_id)
    )
    assert status == 200 and body[0]["update_id"].startswith("u")
    form = update_form(request_id, update_id="x:fixed", status="FIXED", description="已协调解决")
    await s385.raw("POST", "/servicerequestupdates.json", form=form)
    request = s385.sim.requests[request_id]
    assert (request["status"], request["status_notes"]) == ("closed", "已协调解决")
    await s385.raw(
        "POST", "/servicerequestupdates.json", form=update_form(request_id, update_id="y")
    )
    assert s385.sim.requests[request_id]["status"] == "open"


async def test_the_same_update_id_replays_and_different_values_are_already_exists(s385: Sim385):
    request_id = s385.referred_to_us()
    _, _, first = await s385.raw(
        "POST", "/servicerequestupdates.json", form=update_form(request_id)
    )
    same_instant = update_form(request_id, updated_datetime="2026-11-29T01:12:44Z")
    _, _, again = await s385.raw("POST", "/servicerequestupdates.json", form=same_instant)
    assert again == first and len(s385.updates_of(request_id)) == 2
    other = update_form(request_id, description="另一段文字")
    status, _, body = await s385.raw("POST", "/servicerequestupdates.json", form=other)
    assert (
        status == 400 and body[0]["description"] == "update_id already exists with different values"
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "in_progress"},
        {"status": "OPEN"},
        {"update_id": "has space"},
        {"update_id": "x" * 65},
        {"status": "FIXED", "description": ""},
        {"updated_datetime": open311_time(START + timedelta(minutes=6))},
        {"updated_datetime": "2026-11-29T09:12:44.123+08:00"},
    ],
    ids=[
        "lower-case",
        "not-extended",
        "bad-id",
        "id-over-64",
        "fixed-without-answer",
        "future",
        "fraction",
    ],
)
async def test_a_bad_update_body_is_400(s385: Sim385, fields):
    request_id = s385.referred_to_us()
    status, _, _ = await s385.raw(
        "POST", "/servicerequestupdates.json", form=update_form(request_id, **fields)
    )
    assert status == 400


async def test_an_update_on_an_unknown_request_is_404_and_on_one_not_referred_to_us_400(
    s385: Sim385,
):
    assert (await s385.raw("POST", "/servicerequestupdates.json", form=update_form("nope")))[
        0
    ] == 404
    city = next(i for i, r in s385.sim.requests.items() if r["agency_responsible"] == "12345")
    status, _, _ = await s385.raw("POST", "/servicerequestupdates.json", form=update_form(city))
    assert status == 400


async def test_no_further_action_hands_it_back_and_hides_it_from_us(s385: Sim385):
    request_id = s385.referred_to_us()
    _, _, [before] = await s385.raw("GET", f"/requests/{request_id}.json")
    assert before["phone"] == "13812345678" and before["attributes"] == {}
    form = update_form(
        request_id, update_id="nfa", status="NO_FURTHER_ACTION", description="非工会职责"
    )
    assert (await s385.raw("POST", "/servicerequestupdates.json", form=form))[0] == 200
    request = s385.sim.requests[request_id]
    assert (request["agency_responsible"], request["status"]) == ("12385", "open")
    _, _, [after] = await s385.raw("GET", f"/requests/{request_id}.json")
    assert "phone" not in after
    assert (await s385.raw("POST", "/servicerequestupdates.json", form=update_form(request_id)))[
        0
    ] == 400
    assert (await s385.raw("POST", "/servicerequestupdates.json", form=form))[0] == 200  # replay
    s385.sim.staff_update(request_id, "duplicate", "staff note")
    _, _, seen = await s385.raw("GET", "/servicerequestupdates.json", query=window())
    mine = [u["status"] for u in seen if u["service_request_id"] == request_id]
    assert mine == ["no_further_action"]  # its own update, not the referral or staff's


async def test_private_fields_only_for_the_partner_it_is_referred_to(s385: Sim385):
    request_id = s385.referred_to_us()
    _, _, [theirs] = await s385.raw("GET", f"/requests/{request_id}.json", key=OTHER_KEY)
    assert "phone" not in theirs and theirs["description"]


# --- staff, seed data, faults -------------------------------------------------------------


async def test_seed_data_has_requests_referred_to_12351_and_to_12345():
    async with running_sim() as s385:
        agencies = [r["agency_responsible"] for r in s385.sim.requests.values()]
        assert agencies.count("12351") == 3 and agencies.count("12345") == 2


async def test_staff_updates_follow_who_created_the_request(s385: Sim385):
    _, _, [created] = await s385.raw("POST", "/requests.json", form=FORM)
    own = created["service_request_id"]
    status, _ = await s385.control("POST", f"/requests/{own}/updates", {"status": "cancelled"})
    assert status == 409
    for step in ("in_progress", "fixed"):
        assert (await s385.control("POST", f"/requests/{own}/updates", {"status": step}))[0] == 200
    assert s385.sim.requests[own]["status"] == "closed"
    status, _ = await s385.control("POST", f"/requests/{own}/refer", {"to": "12351"})
    assert status == 409  # never referred back to the partner that created it
    referred = s385.referred_to_us()
    assert (await s385.control("POST", f"/requests/{referred}/updates", {"status": "fixed"}))[
        0
    ] == 409
    assert (await s385.control("POST", f"/requests/{referred}/updates", {"status": "cancelled"}))[
        0
    ] == 200
    assert s385.sim.requests[referred]["status"] == "closed"


async def test_no_update_is_written_when_a_request_is_created(s385: Sim385):
    count = len(s385.sim.book.updates)
    await s385.raw("POST", "/requests.json", form=FORM)
    assert len(s385.sim.book.updates) == count


async def test_maintenance_is_503_with_retry_after_and_an_error_array(s385: Sim385):
    await s385.control("POST", "/faults", {"maintenance_s": 600})
    status, headers, body = await s385.raw("GET", "/services.json")
    assert status == 503 and body[0]["code"] == 503 and headers["Retry-After"] == "600"


async def test_the_staff_driver_refers_and_answers(s385: Sim385):
    s385.sim.driver.requests_per_min = 60
    _, _, [created] = await s385.raw("POST", "/requests.json", form=FORM)
    for _ in range(200):
        s385.sim.driver.tick(1.0)
    statuses = {u["status"] for u in s385.updates_of(created["service_request_id"])}
    assert statuses >= {"in_progress"}
    assert len(s385.sim.requests) > 100
