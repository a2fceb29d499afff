"""12345 orders → canonical snapshots → 12351 requests (from12345, to12351)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bridge.errors import MappingError
from bridge.mapping import (
    MappingTables,
    callback_result_for,
    create_case_request,
    extension_granted_for,
    external_ref_for,
    order_to_referral,
    partner_update_for,
    reopened_for,
    withdrawn_for,
)
from bridge.mapping.times import BEIJING
from schemas.canonical import Lifecycle, Priority, Referral, Satisfaction
from schemas.hotline12345 import Order, Reply, Visit

TABLES = MappingTables.default()
UNION = "BJZGH"
ORDER_NO = "BJ12345-20261129-004211"
CASE_NO = "12351-2026-0001234"
READ_AT = datetime(2026, 11, 29, 2, 30, tzinfo=UTC)
ORDER_MARKER = f"…（全文见12345 {ORDER_NO}）"


def order(**changes: Any) -> Order:
    """A well-formed order dispatched to the union, in the wire form 12345 sends."""
    data: dict[str, Any] = {
        "orderNo": ORDER_NO,
        "title": "公司拖欠三个月工资",
        "content": "来电人反映某公司拖欠三个月工资。",
        "callerName": "王某某",
        "callerPhone": "13812345678",
        "category": "0202",
        "areaCode": "110108",
        "streetCode": "110108012",
        "address": "海淀区某街道某号",
        "urgency": "2",
        "acceptTime": "2026-11-29 09:12:44",
        "dispatchTime": "2026-11-29 09:20:03",
        "deadline": "2026-11-30 09:20:03",
        "unitCode": UNION,
        "orderStatus": "10",
        "confidential": False,
        "reopenCount": 0,
        "reopenReason": None,
        "sourceSystem": None,
        "sourceNo": None,
        "reply": None,
        "visit": None,
        "updateTime": "2026-11-29 10:01:17",
    }
    data.update(changes)
    return Order.model_validate(data)


def created_order(**changes: Any) -> Order:
    """An order the bridge created from the 12351 case CASE_NO (handled by a district unit)."""
    base = {
        "sourceSystem": "12351",
        "sourceNo": CASE_NO,
        "unitCode": "HDQ-RSJ",
        "orderStatus": "20",
    }
    return order(**{**base, **changes})


def snapshot(o: Order, *, version: int = 1, read_at: datetime = READ_AT) -> Referral:
    return order_to_referral(o, version=version, read_at=read_at, unit_code=UNION, tables=TABLES)


def bj(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING)


REPLY = {"content": "已协调企业支付工资。", "handler": "张三", "replyTime": "2026-11-30 08:00:00"}


def visit(code: str) -> dict[str, Any]:
    return {"visitTime": "2026-11-30 10:00:00", "satisfaction": code, "remark": "电话回访"}


# --- order_to_referral ---


def test_order_dispatched_to_the_union_maps_every_field() -> None:
    ref = snapshot(order(), version=7)
    assert ref.referral_id == f"12345:{ORDER_NO}"
    assert (ref.origin, ref.source, ref.source_version, ref.source_no) == (
        "12345",
        "12345",
        7,
        ORDER_NO,
    )
    assert ref.ids == {"12345": ORDER_NO}
    assert ref.numbers == {"12345": ORDER_NO}
    assert ref.read_at == READ_AT
    assert (ref.state, ref.native_status) == (Lifecycle.DELIVERED, "10")
    assert ref.classification == {"12345": "0202"}
    assert ref.priority is Priority.URGENT
    assert (ref.district_code, ref.street_code) == ("110108", "110108012")
    assert ref.caller.model_dump() == {
        "name": "王某某",
        "phone": "13812345678",
        "confidential": False,
    }
    assert (ref.subject, ref.text, ref.location) == (
        "公司拖欠三个月工资",
        "来电人反映某公司拖欠三个月工资。",
        "海淀区某街道某号",
    )
    assert ref.accepted_at == datetime(2026, 11, 29, 1, 12, 44, tzinfo=UTC)
    assert ref.dispatched_at == bj("2026-11-29 09:20:03")
    assert ref.deadline == bj("2026-11-30 09:20:03")
    assert ref.updated_at == bj("2026-11-29 10:01:17")
    assert ref.deadline.utcoffset() == timedelta(hours=8)
    assert (ref.reply, ref.callback, ref.extension, ref.transfer, ref.return_reason) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert (ref.reopen_count, ref.reopen_reason, ref.unit_code) == (0, None, UNION)


def test_order_created_from_a_12351_case_belongs_to_the_case() -> None:
    ref = snapshot(created_order())
    assert ref.referral_id == f"12351:{CASE_NO}"
    assert ref.origin == "12351"
    assert ref.source == "12345"
    assert ref.ids == {"12345": ORDER_NO}
    assert ref.numbers == {"12345": ORDER_NO, "12351": CASE_NO}


def test_order_from_another_partner_dispatched_to_the_union_is_a_12345_order() -> None:
    ref = snapshot(order(sourceSystem="12315", sourceNo="X-1"))
    assert ref.referral_id == f"12345:{ORDER_NO}"
    assert ref.origin == "12345"


@pytest.mark.parametrize(
    ("status", "reopen_count", "state"),
    [
        pytest.param("10", 0, Lifecycle.DELIVERED, id="10"),
        pytest.param("20", 0, Lifecycle.SIGNED, id="20"),
        pytest.param("20", 1, Lifecycle.REOPENED, id="20-reopened"),
        pytest.param("25", 0, Lifecycle.EXTENDED, id="25"),
        pytest.param("30", 0, Lifecycle.REPLIED, id="30"),
        pytest.param("40", 0, Lifecycle.CALLBACK_RECORDED, id="40"),
        pytest.param("50", 0, Lifecycle.CLOSED, id="50"),
        pytest.param("60", 0, Lifecycle.RETURNED, id="60"),
        pytest.param("70", 0, Lifecycle.WITHDRAWN, id="70"),
    ],
)
def test_order_status_sets_state(status: str, reopen_count: int, state: Lifecycle) -> None:
    ref = snapshot(order(orderStatus=status, reopenCount=reopen_count))
    assert (ref.state, ref.native_status, ref.reopen_count) == (state, status, reopen_count)


@pytest.mark.parametrize(
    ("urgency", "priority"),
    [
        pytest.param("1", Priority.NORMAL, id="1"),
        pytest.param("2", Priority.URGENT, id="2"),
        pytest.param("3", Priority.EARLY_WARNING, id="3-early-warning"),
    ],
)
def test_urgency_sets_priority(urgency: str, priority: Priority) -> None:
    ref = snapshot(order(urgency=urgency))
    assert ref.priority is priority
    assert ref.early_warning is (urgency == "3")


def test_reply_maps_with_its_time_as_the_same_instant() -> None:
    ref = snapshot(order(orderStatus="30", reply={**REPLY, "resolved": False}))
    assert ref.reply is not None
    assert (ref.reply.text, ref.reply.handler, ref.reply.resolved) == (
        "已协调企业支付工资。",
        "张三",
        False,
    )
    assert ref.reply.at == datetime(2026, 11, 30, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("code", "satisfaction"),
    [
        pytest.param("1", Satisfaction.SATISFIED, id="1"),
        pytest.param("2", Satisfaction.BASICALLY_SATISFIED, id="2"),
        pytest.param("3", Satisfaction.DISSATISFIED, id="3"),
        pytest.param("4", Satisfaction.UNREACHABLE, id="4"),
    ],
)
def test_visit_becomes_the_callback(code: str, satisfaction: Satisfaction) -> None:
    ref = snapshot(order(orderStatus="40", reply=REPLY, visit=visit(code)))
    assert ref.callback is not None
    assert ref.callback.satisfaction is satisfaction
    assert ref.callback.at == bj("2026-11-30 10:00:00")
    assert ref.callback.note == "电话回访"


def test_status_25_is_a_granted_extension_with_the_current_deadline() -> None:
    ref = snapshot(order(orderStatus="25", deadline="2026-12-03 09:20:03"))
    assert ref.extension is not None
    assert ref.extension.granted is True
    assert ref.extension.new_deadline == bj("2026-12-03 09:20:03")


def test_reopened_order_carries_count_and_reason_and_no_reply() -> None:
    ref = snapshot(order(orderStatus="20", reopenCount=2, reopenReason="群众不满意"))
    assert (ref.state, ref.reopen_count, ref.reopen_reason) == (Lifecycle.REOPENED, 2, "群众不满意")
    assert ref.reply is None and ref.callback is None


def test_confidential_flag_crosses_over() -> None:
    assert snapshot(order(confidential=True)).caller.confidential is True


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"areaCode": "120101"}, id="district-outside-the-16"),
        pytest.param({"areaCode": None}, id="no-district"),
        pytest.param({"areaCode": ""}, id="empty-district"),
        pytest.param({"callerPhone": "转分机 8"}, id="phone-12345-cannot-take"),
        pytest.param({"title": "题" * 100}, id="title-exactly-100"),
        pytest.param({"content": "文" * 4000}, id="content-exactly-4000"),
        pytest.param({"unitCode": "OTHER"}, id="re-dispatched-elsewhere"),
    ],
)
def test_mapped_not_parked(changes: dict[str, Any]) -> None:
    ref = snapshot(order(**changes))
    assert ref.referral_id == f"12345:{ORDER_NO}"


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        pytest.param({"areaCode": "11010"}, "areaCode", "6-digit", id="area-5-digits"),
        pytest.param({"areaCode": "1101080"}, "areaCode", "6-digit", id="area-7-digits"),
        pytest.param({"areaCode": "11010A"}, "areaCode", "6-digit", id="area-not-digits"),
        pytest.param({"title": "题" * 101}, "title", "length 101 > 100", id="title-over-100"),
        pytest.param({"title": ""}, "title", "missing", id="title-missing"),
        pytest.param({"title": "  "}, "title", "missing", id="title-blank"),
        pytest.param(
            {"content": "文" * 4213}, "content", "length 4213 > 4000", id="content-over-4000"
        ),
        pytest.param({"deadline": None}, "deadline", "missing", id="deadline-missing"),
        pytest.param(
            {"sourceSystem": "12351", "sourceNo": CASE_NO}, "sourceSystem", "loop", id="loop"
        ),
        pytest.param(
            {"sourceSystem": "12351", "sourceNo": None, "unitCode": "X"},
            "sourceNo",
            "without sourceNo",
            id="from-12351-without-sourceNo",
        ),
    ],
)
def test_malformed_orders_are_parked(changes: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(MappingError) as err:
        snapshot(order(**changes))
    assert err.value.field == field
    assert reason in str(err.value)
    assert ORDER_NO in str(err.value)
    assert "文文" not in str(err.value) and "题题" not in str(err.value)


def test_status_25_without_deadline_on_a_created_order_is_parked() -> None:
    o = created_order(orderStatus="25", deadline=None)
    with pytest.raises(MappingError, match="deadline"):
        snapshot(o)


def test_naive_read_at_is_refused() -> None:
    with pytest.raises(ValueError):
        snapshot(order(), read_at=datetime(2026, 11, 29, 10, 0))


# --- create_case_request ---


def test_create_case_request_from_a_dispatched_order() -> None:
    body = create_case_request(
        snapshot(order(callerPhone="010 6234 5678", confidential=True)), TABLES
    )
    assert body.model_dump(mode="json") == {
        "channel": "partner",
        "origin": {
            "system": "12345",
            "external_no": ORDER_NO,
            "deadline": "2026-11-30T09:20:03+08:00",
        },
        "worker": {"name": "王某某", "phone": "010 6234 5678", "confidential": True},
        "district_code": "110108",
        "service_type": "legal_aid",
        "priority": "high",
        "subject": "公司拖欠三个月工资",
        "description": "来电人反映某公司拖欠三个月工资。",
        "location": "海淀区某街道某号",
    }


@pytest.mark.parametrize(
    ("urgency", "priority"),
    [
        pytest.param("1", "normal", id="1-normal"),
        pytest.param("2", "high", id="2-high"),
        pytest.param("3", "alert", id="3-alert"),
    ],
)
def test_create_case_priority_from_urgency(urgency: str, priority: str) -> None:
    assert create_case_request(snapshot(order(urgency=urgency)), TABLES).priority == priority


@pytest.mark.parametrize(
    ("category", "service_type"),
    [
        pytest.param("0203", "legal_aid", id="0203"),
        pytest.param("0210", "union_membership", id="0210"),
        pytest.param("0211", "hardship_relief", id="0211"),
        pytest.param("0212", "mutual_aid", id="0212"),
        pytest.param("0213", "service_activity", id="0213"),
        pytest.param("0401", "other", id="default-row"),
    ],
)
def test_create_case_service_type_from_category(category: str, service_type: str) -> None:
    body = create_case_request(snapshot(order(category=category)), TABLES)
    assert body.service_type == service_type


def test_phone_goes_to_12351_as_given() -> None:
    body = create_case_request(snapshot(order(callerPhone="+86 138 1234 5678")), TABLES)
    assert body.worker is not None and body.worker.phone == "+86 138 1234 5678"


def test_district_outside_the_16_goes_to_city_level_with_the_code_on_the_first_line() -> None:
    body = create_case_request(snapshot(order(areaCode="120101")), TABLES)
    assert body.district_code is None
    assert body.description == "原属地编码：120101\n来电人反映某公司拖欠三个月工资。"


def test_no_district_and_no_content_give_no_description() -> None:
    body = create_case_request(snapshot(order(areaCode=None, content="")), TABLES)
    assert body.district_code is None
    assert body.description is None


def test_subject_and_description_over_12351_limits_are_cut_with_the_order_marker() -> None:
    ref = snapshot(order(areaCode="120101")).model_copy(
        update={"subject": "题" * 250, "text": "文" * 9000}
    )
    body = create_case_request(ref, TABLES)
    assert len(body.subject) == 200 and body.subject.endswith(ORDER_MARKER)
    assert body.description is not None
    assert len(body.description) == 8000 and body.description.endswith(ORDER_MARKER)
    assert body.description.startswith("原属地编码：120101\n文")


def test_create_case_always_carries_the_deadline() -> None:
    ref = snapshot(order()).model_copy(update={"deadline": None})
    with pytest.raises(MappingError) as err:
        create_case_request(ref, TABLES)
    assert err.value.field == "deadline"


def test_create_case_refuses_a_snapshot_of_a_12351_case() -> None:
    with pytest.raises(MappingError) as err:
        create_case_request(snapshot(created_order()), TABLES)
    assert err.value.field == "origin"


# --- partner_update_for: orders created from 12351 cases ---


def created(status: str, **changes: Any) -> Order:
    return created_order().model_copy(update={"orderStatus": status, **changes})


def reply_model(text: str = "已转交属地街道处理。") -> Reply:
    return Reply.model_validate({**REPLY, "content": text})


def visit_model(code: str) -> Visit:
    return Visit.model_validate(visit(code))


UPDATED = bj("2026-11-29 10:01:17")


@pytest.mark.parametrize(
    ("o", "expected"),
    [
        pytest.param(
            created("20"),
            {"status": "accepted", "text": None, "at": bj("2026-11-29 09:20:03")},
            id="20-accepted-at-creation",
        ),
        pytest.param(
            created("20", reopenCount=1, reopenReason="群众不满意"),
            {"status": "in_progress", "text": "群众不满意", "at": UPDATED},
            id="20-reopened-in_progress",
        ),
        pytest.param(
            created("25", deadline=datetime(2026, 12, 6, 9, 20, 3)),
            {
                "status": "extended",
                "text": "12345已同意延期，办理时限至 2026-12-06 09:20:03",
                "at": UPDATED,
            },
            id="25-extended",
        ),
        pytest.param(
            created("30", reply=reply_model()),
            {"status": "replied", "text": "已转交属地街道处理。", "at": bj("2026-11-30 08:00:00")},
            id="30-replied-with-reply-text",
        ),
        pytest.param(
            created("50", reply=reply_model()),
            {"status": "closed", "text": None, "at": UPDATED},
            id="50-closed",
        ),
        pytest.param(
            created("60"), {"status": "returned", "text": None, "at": UPDATED}, id="60-returned"
        ),
        pytest.param(
            created("70"), {"status": "withdrawn", "text": None, "at": UPDATED}, id="70-withdrawn"
        ),
    ],
)
def test_partner_update_per_order_status(o: Order, expected: dict[str, Any]) -> None:
    body = partner_update_for(snapshot(o), TABLES)
    assert body is not None
    assert body.model_dump() == {**expected, "satisfaction": None}


@pytest.mark.parametrize(
    ("code", "satisfaction"),
    [
        pytest.param("1", "satisfied", id="1"),
        pytest.param("2", "basically_satisfied", id="2"),
        pytest.param("3", "dissatisfied", id="3"),
        pytest.param("4", "unreachable", id="4"),
    ],
)
def test_partner_update_40_is_replied_with_satisfaction(code: str, satisfaction: str) -> None:
    body = partner_update_for(
        snapshot(created("40", reply=reply_model(), visit=visit_model(code))), TABLES
    )
    assert body is not None
    assert (body.status, body.satisfaction) == ("replied", satisfaction)
    assert body.text == "已转交属地街道处理。"
    assert body.at == bj("2026-11-30 10:00:00")


def test_no_partner_update_for_status_10() -> None:
    assert partner_update_for(snapshot(created("10")), TABLES) is None


@pytest.mark.parametrize("status", ["20", "25", "30", "40", "50", "60", "70"])
def test_partner_update_body_never_depends_on_when_it_was_read(status: str) -> None:
    o = created(status, reply=reply_model(), visit=visit_model("1"))
    first = partner_update_for(snapshot(o, read_at=READ_AT), TABLES)
    later = partner_update_for(snapshot(o, read_at=READ_AT + timedelta(days=3)), TABLES)
    assert first == later


def test_long_reply_is_cut_to_2000_with_the_order_marker() -> None:
    body = partner_update_for(snapshot(created("30", reply=reply_model("答" * 3000))), TABLES)
    assert body is not None and body.text is not None
    assert len(body.text) == 2000
    assert body.text.endswith(ORDER_MARKER)


def test_reply_within_2000_arrives_whole() -> None:
    body = partner_update_for(snapshot(created("30", reply=reply_model("答" * 2000))), TABLES)
    assert body is not None and body.text == "答" * 2000


def test_partner_update_refuses_a_12345_origin_order() -> None:
    with pytest.raises(MappingError):
        partner_update_for(snapshot(order(orderStatus="20")), TABLES)


# --- events on a 12345-origin case ---


def test_external_ref_names_the_order() -> None:
    body = external_ref_for(snapshot(created_order()))
    assert body.model_dump() == {"system": "12345", "external_no": ORDER_NO}


def test_external_ref_with_an_explicit_order_number() -> None:
    ref = snapshot(created_order()).model_copy(update={"numbers": {"12351": CASE_NO}})
    assert external_ref_for(ref, "BJ12345-X").external_no == "BJ12345-X"
    with pytest.raises(MappingError):
        external_ref_for(ref)


@pytest.mark.parametrize(
    ("code", "satisfaction"),
    [
        pytest.param("1", "satisfied", id="1"),
        pytest.param("2", "basically_satisfied", id="2"),
        pytest.param("3", "dissatisfied", id="3"),
        pytest.param("4", "unreachable", id="4"),
    ],
)
def test_visit_becomes_callback_result(code: str, satisfaction: str) -> None:
    body = callback_result_for(snapshot(order(orderStatus="40", reply=REPLY, visit=visit(code))))
    assert body is not None
    assert body.model_dump() == {
        "satisfaction": satisfaction,
        "at": bj("2026-11-30 10:00:00"),
        "note": "电话回访",
    }


def test_no_callback_result_before_a_visit() -> None:
    assert callback_result_for(snapshot(order(orderStatus="30", reply=REPLY))) is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        pytest.param({"reopenReason": "答复不满意"}, "答复不满意", id="with-reason"),
        pytest.param({"reopenReason": None}, "12345重办（未说明原因）", id="without-reason"),
    ],
)
def test_reopen_becomes_reopened(changes: dict[str, Any], reason: str) -> None:
    body = reopened_for(snapshot(order(orderStatus="20", reopenCount=1, **changes)))
    assert body is not None
    assert body.model_dump() == {"reason": reason, "at": UPDATED}


def test_no_reopened_before_a_reopen() -> None:
    assert reopened_for(snapshot(order(orderStatus="20"))) is None


def test_withdrawal_becomes_withdrawn() -> None:
    body = withdrawn_for(snapshot(order(orderStatus="70")))
    assert body is not None and body.reason == f"12345已撤销工单 {ORDER_NO}"
    assert withdrawn_for(snapshot(order(orderStatus="20"))) is None


def test_granted_extension_becomes_partner_update_extended() -> None:
    body = extension_granted_for(snapshot(order(orderStatus="25")))
    assert body is not None
    assert body.model_dump() == {
        "status": "extended",
        "text": "12345已同意延期，办理时限至 2026-11-30 09:20:03",
        "at": UPDATED,
        "satisfaction": None,
    }
    assert extension_granted_for(snapshot(order(orderStatus="20"))) is None


@pytest.mark.parametrize(
    "build", [callback_result_for, reopened_for, withdrawn_for, extension_granted_for]
)
def test_origin_case_events_refuse_a_12351_origin_snapshot(build) -> None:
    with pytest.raises(MappingError) as err:
        build(snapshot(created_order()))
    assert err.value.field == "origin"
