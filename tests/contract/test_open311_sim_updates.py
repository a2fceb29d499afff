"""The 12385 simulator over raw HTTP, updates and referrals: `servicerequestupdates` both
ways, who sees what, staff actions, seed data and faults (section 8 of
specs/open311-georeport-v2.md; paths, keys, limits and requests in test_open311_sim.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fixtures_open311 import (  # noqa: F401  (the s385 fixture)
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
    return f"start_date={q(START - timedelta(hours=hours))}&end_date={q(START)}"


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
