"""`POST /cases/{id}/events` as 12351 publishes it: ONE flat object, `type` beside that
type's body fields; a nested `body` is an unknown field (422 naming `/body`); the
timeline shows the fields, without `type`, under each item's `body`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest
from fixtures_12351 import (
    Sim12351,
    s12351_fixture,  # noqa: F401  (the s12351 fixture)
)
from pydantic import BaseModel

from adapters.simkit import BEIJING
from schemas.hotline12351 import (
    CallbackResultBody,
    ExternalRefBody,
    PartnerUpdateBody,
    ReopenedBody,
    WithdrawnBody,
    event_request,
)

AT = "2026-11-29T10:01:17.004+08:00"
AT_DT = datetime(2026, 11, 29, 10, 1, 17, tzinfo=BEIJING)
AT_SENT = "2026-11-29T10:01:17+08:00"  # AT_DT as the client's JSON writes it
Setup = Callable[[Sim12351], Awaitable[dict[str, Any]]]


async def _transferred(s: Sim12351) -> dict[str, Any]:
    return s.transferred_case()


async def _partner(s: Sim12351) -> dict[str, Any]:
    return await s.partner_case()


async def _responded(s: Sim12351) -> dict[str, Any]:
    case = await s.partner_case()
    s.respond(case["id"])
    return case


# (setup, the flat request as the spec's examples write it, status of the case after it)
SPEC_EXAMPLES = [
    pytest.param(
        _transferred,
        {"type": "external_ref", "system": "12345", "external_no": "BJ12345-20261129-004211"},
        "transferred",
        id="external_ref",
    ),
    pytest.param(
        _partner,
        {"type": "partner_update", "status": "replied", "text": "已协调企业补发工资。", "at": AT},
        "received",
        id="partner_update",
    ),
    pytest.param(
        _partner,
        {"type": "partner_update", "status": "closed", "satisfaction": "satisfied", "at": AT},
        "received",
        id="partner_update-with-satisfaction",
    ),
    pytest.param(
        _responded,
        {"type": "callback_result", "satisfaction": "satisfied", "at": AT, "note": "回访满意"},
        "callback_done",
        id="callback_result",
    ),
    pytest.param(_partner, {"type": "withdrawn", "reason": "市民撤诉"}, "closed", id="withdrawn"),
    pytest.param(
        _responded,
        {"type": "reopened", "reason": "回访不满意，重办", "at": AT},
        "handling",
        id="reopened",
    ),
]


@pytest.mark.parametrize(("setup", "event", "status"), SPEC_EXAMPLES)
async def test_a_flat_event_is_taken_and_the_timeline_shows_its_fields_under_body(
    s12351: Sim12351, setup: Setup, event: dict[str, Any], status: str
):
    case = await setup(s12351)
    got, _, body = await s12351.raw("POST", f"/cases/{case['id']}/events", json=event)
    assert got == 200 and body["status"] == status
    last = s12351.sim.events[case["id"]][-1]
    fields = {k: v for k, v in event.items() if k != "type"}
    assert (last["type"], last["body"]) == (event["type"], fields)


# (setup, the body model the bridge builds, the flat JSON it must go out as)
CLIENT_EVENTS = [
    pytest.param(
        _transferred,
        ExternalRefBody(system="12345", external_no="BJ12345-20261129-004211"),
        {"type": "external_ref", "system": "12345", "external_no": "BJ12345-20261129-004211"},
        id="external_ref",
    ),
    pytest.param(
        _partner,
        PartnerUpdateBody(status="replied", text="已协调企业补发工资。", at=AT_DT),
        {
            "type": "partner_update",
            "status": "replied",
            "text": "已协调企业补发工资。",
            "at": AT_SENT,
        },
        id="partner_update",
    ),
    pytest.param(
        _partner,
        PartnerUpdateBody(status="closed", at=AT_DT, satisfaction="basically_satisfied"),
        {
            "type": "partner_update",
            "status": "closed",
            "at": AT_SENT,
            "satisfaction": "basically_satisfied",
        },
        id="partner_update-with-satisfaction",
    ),
    pytest.param(
        _responded,
        CallbackResultBody(satisfaction="dissatisfied", at=AT_DT, note="回访不满意"),
        {
            "type": "callback_result",
            "satisfaction": "dissatisfied",
            "at": AT_SENT,
            "note": "回访不满意",
        },
        id="callback_result",
    ),
    pytest.param(
        _partner,
        WithdrawnBody(reason="市民撤诉"),
        {"type": "withdrawn", "reason": "市民撤诉"},
        id="withdrawn",
    ),
    pytest.param(
        _responded,
        ReopenedBody(reason="回访不满意，重办", at=AT_DT),
        {"type": "reopened", "reason": "回访不满意，重办", "at": AT_SENT},
        id="reopened",
    ),
]


@pytest.mark.parametrize(("setup", "body", "wire"), CLIENT_EVENTS)
async def test_the_client_sends_every_event_type_flat(
    s12351: Sim12351, setup: Setup, body: BaseModel, wire: dict[str, Any]
):
    case = await setup(s12351)
    type_, before = wire["type"], case["version"]
    assert event_request(type_, body) == wire
    updated, replayed = await s12351.client.post_event(case["id"], type_, body, f"{type_}-1")
    assert replayed is False and updated.version == before + 1
    last = s12351.sim.events[case["id"]][-1]
    assert (last["type"], last["body"]) == (type_, {k: v for k, v in wire.items() if k != "type"})


def test_a_body_of_another_type_is_never_sent():
    with pytest.raises(TypeError):
        event_request("withdrawn", ReopenedBody(reason="x", at=AT_DT))


@pytest.mark.parametrize(("setup", "event", "status"), SPEC_EXAMPLES)
async def test_the_nested_body_form_is_refused_with_422_naming_body(
    s12351: Sim12351, setup: Setup, event: dict[str, Any], status: str
):
    case = await setup(s12351)
    nested = {"type": event["type"], "body": {k: v for k, v in event.items() if k != "type"}}
    got, headers, problem = await s12351.raw("POST", f"/cases/{case['id']}/events", json=nested)
    assert got == 422 and headers["Content-Type"].startswith("application/problem+json")
    assert "/body" in {e["pointer"] for e in problem["errors"]}
    assert s12351.sim.cases[case["id"]]["version"] == case["version"]


async def test_an_unknown_top_level_field_is_refused_naming_it(s12351: Sim12351):
    case = await s12351.partner_case()
    event = {"type": "withdrawn", "reason": "市民撤诉", "by": "12345"}
    got, _, problem = await s12351.raw("POST", f"/cases/{case['id']}/events", json=event)
    assert got == 422 and [e["pointer"] for e in problem["errors"]] == ["/by"]
    assert s12351.sim.cases[case["id"]]["status"] == "received"


@pytest.mark.parametrize(
    ("event", "pointers"),
    [
        pytest.param({"type": "external_ref"}, {"/system", "/external_no"}, id="external_ref"),
        pytest.param({"type": "partner_update"}, {"/status", "/at"}, id="partner_update"),
        pytest.param({"type": "callback_result"}, {"/satisfaction", "/at"}, id="callback_result"),
        pytest.param({"type": "withdrawn"}, {"/reason"}, id="withdrawn"),
        pytest.param({"type": "reopened"}, {"/reason", "/at"}, id="reopened"),
        pytest.param({"type": "closed", "reason": "x"}, {"/type"}, id="unknown-type"),
        pytest.param({"reason": "x"}, {"/type"}, id="no-type"),
        pytest.param(
            {"type": "reopened", "reason": "x", "at": "2026-11-29 10:00:00"},
            {"/at"},
            id="time-without-offset",
        ),
        pytest.param(
            {"type": "partner_update", "status": "replied", "at": AT, "text": "字" * 2001},
            {"/text"},
            id="text-over-2000-chars",
        ),
        pytest.param(
            {"type": "partner_update", "status": "replied", "at": AT, "satisfaction": "good"},
            {"/satisfaction"},
            id="satisfaction-outside-the-list",
        ),
        pytest.param({"type": "withdrawn", "reason": ""}, {"/reason"}, id="empty-reason"),
    ],
)
async def test_required_fields_per_type_are_checked_with_pointers(
    s12351: Sim12351, event: dict, pointers: set[str]
):
    case = await s12351.partner_case()
    status, _, problem = await s12351.raw("POST", f"/cases/{case['id']}/events", json=event)
    assert status == 422
    assert {e["pointer"] for e in problem["errors"]} == pointers
