"""The planner: snapshot + ledger → the missing actions, one behaviour per test."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bridge.engine.planner import Hold, Step
from bridge.mapping import MappingTables, case_to_referral, order_to_referral
from bridge.partners.hotline12345.plan import plan_12345
from bridge.partners.hotline12351.plan import plan_12351
from schemas.hotline12345 import Order
from schemas.hotline12351 import Case

TABLES = MappingTables.default()
READ_AT = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
ORDER_NO = "BJ12345-20261129-000001"
CASE_NO = "12351-2026-0000001"
CASE_ID = "3f6c1a52-9d0b-4a8e-b1f5-6a0f2c9e7d11"


def order(**changes: Any) -> Order:
    data: dict[str, Any] = {
        "orderNo": ORDER_NO, "title": "公司拖欠工资", "content": "来电人反映拖欠工资。",
        "callerName": "王某", "callerPhone": "13812345678", "category": "0202",
        "areaCode": "110108", "urgency": "1", "dispatchTime": "2026-11-29 09:20:03",
        "acceptTime": "2026-11-29 09:12:44", "deadline": "2026-12-06 09:20:03",
        "unitCode": "BJZGH", "orderStatus": "10", "updateTime": "2026-11-29 10:01:17",
    }
    return Order.model_validate({**data, **changes})


def case(**changes: Any) -> Case:
    data: dict[str, Any] = {
        "id": CASE_ID, "case_no": CASE_NO, "channel": "partner",
        "created_at": "2026-11-29T09:30:00.000+08:00",
        "updated_at": "2026-11-29T10:00:00.000+08:00", "version": 2,
        "worker": {"name": "王某", "phone": "13812345678"}, "district_code": "110108",
        "service_type": "legal_aid", "priority": "normal", "subject": "公司拖欠工资",
        "description": "拖欠工资", "status": "handling",
        "origin": {"system": "12345", "external_no": ORDER_NO,
                   "deadline": "2026-12-06T09:20:03+08:00"},
    }
    return Case.model_validate({**data, **changes})


def from_order(o: Order, version: int = 1):  # type: ignore[no-untyped-def]
    return order_to_referral(o, version=version, read_at=READ_AT, unit_code="BJZGH",
                             tables=TABLES)


def from_case(c: Case):  # type: ignore[no-untyped-def]
    return case_to_referral(c, read_at=READ_AT, tables=TABLES)


def keys(plan: list[Step | Hold], done: frozenset[str] = frozenset()) -> list[str]:
    return [s.key for s in plan if s.key not in done]


RESPONSE = {"text": "已协调单位支付工资", "responder": "张三",
            "responded_at": "2026-11-29T11:00:00+08:00", "resolved": True}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({}, ["sign"], id="case-exists-sign"),
        pytest.param({"status": "responded", "response": RESPONSE}, ["sign", "reply:0"],
                     id="responded-reply-round-0"),
        pytest.param({"status": "responded", "response": RESPONSE, "reopen_count": 2},
                     ["sign", "reply:2"], id="reply-keyed-by-reopen-round"),
        pytest.param({"status": "rejected", "rejection_reason": "不属于工会职责"},
                     ["sign", "return"], id="rejected-becomes-return"),
        pytest.param({"status": "transferred",
                      "transfer": {"to": "12345", "reason": "非工会事项"}},
                     ["sign", "return"], id="transferred-back-is-a-return"),
        pytest.param({"extension_request": {"new_deadline": "2026-12-20T09:00:00+08:00",
                                            "reason": "需要调查"}},
                     ["sign", "extension"], id="extension-request-before-reply"),
        pytest.param({"extension_request": {"new_deadline": "2026-12-20T09:00:00+08:00"},
                      "status": "responded", "response": RESPONSE},
                     ["sign", "reply:0"], id="no-extension-once-replied"),
        pytest.param({"status": "closed"}, ["sign", "reply:0"], id="closed-without-response"),
    ],
)
def test_plan_12345_for_origin_case(changes: dict[str, Any], expected: list[str]) -> None:
    assert keys(plan_12345(from_case(case(**changes)), frozenset(), order_no=ORDER_NO,
                           handler="h", tables=TABLES)) == expected


def test_closed_without_response_is_held_for_an_admin() -> None:
    plan = plan_12345(from_case(case(status="closed")), frozenset(), order_no=ORDER_NO,
                      handler="h", tables=TABLES)
    hold = plan[-1]
    assert isinstance(hold, Hold) and hold.outcome == "parked" and CASE_NO in hold.reason


def test_transferred_case_creates_an_order_once() -> None:
    c = case(origin=None, channel="phone", status="transferred",
             transfer={"to": "12345", "reason": "暖气", "category": "0302"})
    ref = from_case(c)
    plan = plan_12345(ref, frozenset(), order_no=None, handler="h", tables=TABLES)
    assert [s.kind for s in plan] == ["create_order"]
    assert plan[0].body.category == "0302"  # type: ignore[union-attr]
    assert plan_12345(ref, frozenset(), order_no="BJ-1", handler="h", tables=TABLES) == []


@pytest.mark.parametrize(
    ("changes", "case_known", "expected"),
    [
        pytest.param({}, False, ["create_case"], id="dispatched-create-case"),
        pytest.param({"orderStatus": "20"}, True, [], id="signed-nothing-more"),
        pytest.param({"orderStatus": "25", "deadline": "2026-12-20 09:00:00"}, True,
                     ["partner_update:extended"], id="extension-granted-told"),
        pytest.param({"orderStatus": "40", "reply": {"content": "已答复", "resolved": True},
                      "visit": {"satisfaction": "1", "visitTime": "2026-11-30 10:00:00"}},
                     True, ["callback:0"], id="visit-becomes-callback-result"),
        pytest.param({"orderStatus": "20", "reopenCount": 1, "reopenReason": "不满意"}, True,
                     ["reopened:1"], id="reopen-forwarded-per-round"),
        pytest.param({"orderStatus": "70"}, True, ["withdrawn"], id="withdrawal-forwarded"),
        pytest.param({"orderStatus": "70"}, False, ["create_case"],
                     id="withdrawn-before-delivery-is-skipped"),
    ],
)
def test_plan_12351_for_dispatched_order(
    changes: dict[str, Any], case_known: bool, expected: list[str]
) -> None:
    plan = plan_12351(from_order(order(**changes)), frozenset(),
                      case_id=CASE_ID if case_known else None, tables=TABLES)
    assert keys(plan) == expected


def test_withdrawn_before_delivery_makes_no_case() -> None:
    plan = plan_12351(from_order(order(orderStatus="70")), frozenset(), case_id=None,
                      tables=TABLES)
    assert len(plan) == 1 and isinstance(plan[0], Hold) and plan[0].outcome == "skipped"


def created(**changes: Any) -> Order:
    return order(sourceSystem="12351", sourceNo=CASE_NO, unitCode="HDQ", **changes)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({"orderStatus": "20"}, ["external_ref", "partner_update:accepted"],
                     id="accepted-first"),
        pytest.param({"orderStatus": "25", "deadline": "2026-12-20 09:00:00"},
                     ["external_ref", "partner_update:accepted", "partner_update:extended"],
                     id="extended"),
        pytest.param({"orderStatus": "30", "reply": {"content": "已处理", "resolved": True}},
                     ["external_ref", "partner_update:accepted", "partner_update:replied:0"],
                     id="replied-with-text"),
        pytest.param({"orderStatus": "40", "reply": {"content": "已处理", "resolved": True},
                      "visit": {"satisfaction": "2"}},
                     ["external_ref", "partner_update:accepted",
                      "partner_update:replied+satisfaction:0"], id="visited-satisfaction"),
        pytest.param({"orderStatus": "20", "reopenCount": 1},
                     ["external_ref", "partner_update:accepted", "partner_update:in_progress:1"],
                     id="reopened-in-progress"),
        pytest.param({"orderStatus": "50"},
                     ["external_ref", "partner_update:accepted", "partner_update:closed"],
                     id="closed"),
        pytest.param({"orderStatus": "60"},
                     ["external_ref", "partner_update:accepted", "partner_update:returned"],
                     id="returned"),
        pytest.param({"orderStatus": "70"},
                     ["external_ref", "partner_update:accepted", "partner_update:withdrawn"],
                     id="withdrawn"),
    ],
)
def test_plan_12351_for_created_order(changes: dict[str, Any], expected: list[str]) -> None:
    plan = plan_12351(from_order(created(**changes)), frozenset(), case_id=CASE_ID,
                      tables=TABLES)
    assert keys(plan) == expected


def test_done_actions_are_not_planned_again() -> None:
    ref = from_order(created(orderStatus="30", reply={"content": "已处理", "resolved": True}))
    done = frozenset({"external_ref", "partner_update:accepted", "partner_update:replied:0"})
    assert keys(plan_12351(ref, done, case_id=CASE_ID, tables=TABLES), done) == []


def test_created_order_without_known_case_waits() -> None:
    with pytest.raises(LookupError):
        plan_12351(from_order(created()), frozenset(), case_id=None, tables=TABLES)


def test_bodies_do_not_depend_on_when_the_snapshot_was_read() -> None:
    """Retries must send the same body: nothing in it comes from the clock."""
    o = created(orderStatus="40", reply={"content": "已处理", "resolved": True},
                visit={"satisfaction": "1", "visitTime": "2026-11-30 10:00:00"})
    a = plan_12351(from_order(o), frozenset(), case_id=CASE_ID, tables=TABLES)
    later = order_to_referral(o, version=2, read_at=datetime(2027, 1, 1, tzinfo=UTC),
                              unit_code="BJZGH", tables=TABLES)
    b = plan_12351(later, frozenset(), case_id=CASE_ID, tables=TABLES)
    assert [s.body for s in a] == [s.body for s in b]  # type: ignore[union-attr]
