"""The 12385 simulator over raw HTTP: every rule of section 8 of
specs/open311-georeport-v2.md (updates and referrals in test_open311_sim_updates.py).
Strictness here keeps the adapter's contract tests honest."""

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

FORM = [
    ("service_code", "DP-RIGHTS"),
    ("address_string", "北京市朝阳区某路3号"),
    ("description", "反映无障碍坡道被占用"),
    ("attribute[external_ref]", "12351-2026-0000007"),
]


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
