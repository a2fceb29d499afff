"""12351 cases → canonical snapshots → 12345 requests (from12351, to12345)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bridge.errors import MappingError
from bridge.mapping import (
    MappingTables,
    case_to_referral,
    concerns_12345,
    create_order_request,
    extension_request,
    reply_request,
    return_request,
    sign_request,
)
from bridge.mapping.times import BEIJING
from schemas.canonical import Lifecycle, Priority, Referral, Satisfaction
from schemas.hotline12351 import Case

TABLES = MappingTables.default()
CASE_ID = "3f6c1a52-9d0b-4a8e-b1f5-6a0f2c9e7d11"
CASE_NO = "12351-2026-0001234"
ORDER_NO = "BJ12345-20261129-004211"
READ_AT = datetime(2026, 11, 29, 2, 30, tzinfo=UTC)
CASE_MARKER = f"…（全文见12351 {CASE_NO}）"
REQUEST_ID = f"12351:{CASE_NO}:create"
TRANSFER = {
    "to": "12345",
    "reason": "暖气管道破裂，属城市管理",
    "category": "0302",
    "requested_at": "2026-11-29T09:30:00.000+08:00",
    "external_no": None,
}
ORIGIN = {"system": "12345", "external_no": ORDER_NO, "deadline": "2026-11-30T09:20:03+08:00"}


def case(**changes: Any) -> Case:
    """A union case transferred to 12345, in the wire form 12351 sends."""
    data: dict[str, Any] = {
        "id": CASE_ID,
        "case_no": CASE_NO,
        "channel": "phone",
        "created_at": "2026-11-29T09:12:44.120+08:00",
        "updated_at": "2026-11-29T10:01:17.004+08:00",
        "version": 7,
        "worker": {
            "name": "王某某",
            "phone": "+86 138 1234 5678",
            "employer": "某某科技有限公司",
            "confidential": False,
        },
        "district_code": "110108",
        "level": "district",
        "service_type": "other",
        "priority": "high",
        "subject": "宿舍暖气管道破裂",
        "description": "职工反映宿舍暖气管道破裂。",
        "location": "海淀区某街道某号",
        "status": "transferred",
        "response": None,
        "callback": None,
        "rejection_reason": None,
        "reopen_count": 0,
        "transfer": TRANSFER,
        "extension_request": None,
        "origin": None,
    }
    data.update(changes)
    return Case.model_validate(data)


def origin_case(**changes: Any) -> Case:
    """A case the bridge created from the 12345 order ORDER_NO."""
    base = {
        "channel": "partner",
        "origin": ORIGIN,
        "status": "handling",
        "transfer": None,
        "service_type": "legal_aid",
    }
    return case(**{**base, **changes})


def snapshot(c: Case, *, read_at: datetime = READ_AT) -> Referral:
    return case_to_referral(c, read_at=read_at, tables=TABLES)


RESPONSE = {
    "text": "已协调企业支付工资。",
    "responder": "李四",
    "responded_at": "2026-11-29T15:00:00+08:00",
    "resolved": True,
}

# --- case_to_referral ---


def test_transferred_case_maps_every_field() -> None:
    ref = snapshot(case())
    assert ref.referral_id == f"12351:{CASE_NO}"
    assert (ref.origin, ref.source, ref.source_version, ref.source_no) == (
        "12351",
        "12351",
        7,
        CASE_NO,
    )
    assert ref.ids == {"12351": CASE_ID}
    assert ref.numbers == {"12351": CASE_NO}
    assert ref.read_at == READ_AT
    assert (ref.state, ref.native_status) == (Lifecycle.DELIVERED, "transferred")
    assert ref.classification == {"12351": "other", "12345": "0302"}
    assert ref.priority is Priority.URGENT
    assert ref.district_code == "110108"
    assert ref.caller.model_dump() == {
        "name": "王某某",
        "phone": "+86 138 1234 5678",
        "confidential": False,
    }
    assert (ref.subject, ref.text, ref.location) == (
        "宿舍暖气管道破裂",
        "职工反映宿舍暖气管道破裂。",
        "海淀区某街道某号",
    )
    assert ref.accepted_at == datetime(2026, 11, 29, 1, 12, 44, 120000, tzinfo=UTC)
    assert ref.updated_at == datetime(2026, 11, 29, 2, 1, 17, 4000, tzinfo=UTC)
    assert ref.deadline is None
    assert ref.transfer is not None
    assert ref.transfer.model_dump() == {
        "to": "12345",
        "reason": "暖气管道破裂，属城市管理",
        "category": "0302",
        "requested_at": datetime(2026, 11, 29, 1, 30, tzinfo=UTC),
        "external_no": None,
    }
    assert (ref.reply, ref.callback, ref.extension, ref.return_reason) == (None,) * 4


def test_transferred_case_with_the_order_number_recorded() -> None:
    ref = snapshot(case(transfer={**TRANSFER, "external_no": ORDER_NO}))
    assert ref.ids == {"12351": CASE_ID, "12345": ORDER_NO}
    assert ref.numbers == {"12351": CASE_NO, "12345": ORDER_NO}


def test_transfer_without_category_has_no_12345_classification() -> None:
    ref = snapshot(case(transfer={**TRANSFER, "category": None}))
    assert ref.classification == {"12351": "other"}


def test_case_created_from_a_12345_order_belongs_to_the_order() -> None:
    ref = snapshot(origin_case())
    assert ref.referral_id == f"12345:{ORDER_NO}"
    assert (ref.origin, ref.source) == ("12345", "12351")
    assert ref.ids == {"12351": CASE_ID, "12345": ORDER_NO}
    assert ref.numbers == {"12351": CASE_NO, "12345": ORDER_NO}
    assert ref.deadline == datetime(2026, 11, 30, 1, 20, 3, tzinfo=UTC)
    assert ref.state is Lifecycle.IN_PROGRESS


def test_12345_origin_case_transferred_back_to_12345_is_a_return() -> None:
    ref = snapshot(origin_case(status="transferred", transfer={**TRANSFER, "reason": "非工会职责"}))
    assert ref.referral_id == f"12345:{ORDER_NO}"
    assert ref.state is Lifecycle.RETURNED
    assert ref.return_reason == "非工会职责"


def test_rejected_case_is_a_return_with_its_reason() -> None:
    ref = snapshot(origin_case(status="rejected", rejection_reason="不属于工会受理范围"))
    assert (ref.state, ref.return_reason) == (Lifecycle.RETURNED, "不属于工会受理范围")


@pytest.mark.parametrize(
    ("status", "reopen_count", "state"),
    [
        pytest.param("received", 0, Lifecycle.SIGNED, id="received"),
        pytest.param("dispatched", 0, Lifecycle.SIGNED, id="dispatched"),
        pytest.param("verifying", 0, Lifecycle.IN_PROGRESS, id="verifying"),
        pytest.param("handling", 0, Lifecycle.IN_PROGRESS, id="handling"),
        pytest.param("handling", 1, Lifecycle.REOPENED, id="handling-reopened"),
        pytest.param("responded", 0, Lifecycle.REPLIED, id="responded"),
        pytest.param("callback_done", 0, Lifecycle.CALLBACK_RECORDED, id="callback_done"),
        pytest.param("closed", 0, Lifecycle.CLOSED, id="closed"),
        pytest.param("rejected", 0, Lifecycle.RETURNED, id="rejected"),
    ],
)
def test_case_status_sets_state(status: str, reopen_count: int, state: Lifecycle) -> None:
    ref = snapshot(origin_case(status=status, reopen_count=reopen_count))
    assert (ref.state, ref.native_status, ref.reopen_count) == (state, status, reopen_count)


@pytest.mark.parametrize(
    ("priority", "canonical"),
    [
        pytest.param("normal", Priority.NORMAL, id="normal"),
        pytest.param("high", Priority.URGENT, id="high"),
        pytest.param("alert", Priority.EARLY_WARNING, id="alert-early-warning"),
    ],
)
def test_priority_maps(priority: str, canonical: Priority) -> None:
    assert snapshot(case(priority=priority)).priority is canonical


def test_response_callback_and_extension_request_map() -> None:
    ref = snapshot(
        origin_case(
            status="callback_done",
            response=RESPONSE,
            callback={"at": "2026-11-30T10:00:00+08:00", "satisfaction": "unreachable"},
            extension_request={
                "new_deadline": "2026-12-03T09:20:03+08:00",
                "reason": "需要调查取证",
                "requested_at": "2026-11-29T12:00:00+08:00",
            },
        )
    )
    assert ref.reply is not None
    assert (ref.reply.text, ref.reply.handler, ref.reply.resolved) == (
        "已协调企业支付工资。",
        "李四",
        True,
    )
    assert ref.callback is not None
    assert ref.callback.satisfaction is Satisfaction.UNREACHABLE
    assert ref.extension is not None
    assert ref.extension.new_deadline == datetime(2026, 12, 3, 1, 20, 3, tzinfo=UTC)
    assert (ref.extension.reason, ref.extension.granted) == ("需要调查取证", None)


@pytest.mark.parametrize(
    "satisfaction", ["satisfied", "basically_satisfied", "dissatisfied", "unreachable"]
)
def test_callback_satisfaction_maps(satisfaction: str) -> None:
    ref = snapshot(origin_case(status="callback_done", callback={"satisfaction": satisfaction}))
    assert ref.callback is not None and ref.callback.satisfaction.value == satisfaction


def test_worker_confidential_crosses_over() -> None:
    c = case(worker={"name": "王某某", "confidential": True})
    assert snapshot(c).caller.confidential is True


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"district_code": "120101"}, id="district-outside-the-16"),
        pytest.param({"district_code": None}, id="no-district"),
        pytest.param({"subject": "题" * 200}, id="subject-exactly-200"),
        pytest.param({"description": "文" * 8000}, id="description-exactly-8000"),
        pytest.param({"description": None}, id="no-description"),
    ],
)
def test_mapped_not_parked(changes: dict[str, Any]) -> None:
    assert snapshot(case(**changes)).referral_id == f"12351:{CASE_NO}"


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        pytest.param({"subject": "题" * 201}, "subject", "length 201 > 200", id="subject-over"),
        pytest.param({"subject": ""}, "subject", "missing", id="subject-missing"),
        pytest.param(
            {"description": "文" * 8001},
            "description",
            "length 8001 > 8000",
            id="description-over",
        ),
        pytest.param({"district_code": "1101"}, "district_code", "6-digit", id="district-short"),
        pytest.param({"district_code": "11010x"}, "district_code", "6-digit", id="district-alpha"),
        pytest.param({"transfer": None}, "transfer.to", "no hotline", id="transferred-no-transfer"),
        pytest.param(
            {"transfer": {**TRANSFER, "to": ""}},
            "transfer.to",
            "no hotline",
            id="transfer-to-empty",
        ),
        pytest.param(
            {"transfer": {**TRANSFER, "to": None}},
            "transfer.to",
            "no hotline",
            id="transfer-to-none",
        ),
        pytest.param(
            {"transfer": {**TRANSFER, "to": "12315"}},
            "transfer.to",
            "unknown hotline",
            id="transfer-to-unknown",
        ),
    ],
)
def test_malformed_cases_are_parked(changes: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(MappingError) as err:
        snapshot(case(**changes))
    assert err.value.field == field
    assert reason in str(err.value)
    assert CASE_NO in str(err.value)
    assert "文文" not in str(err.value) and "题题" not in str(err.value)


def test_naive_read_at_is_refused() -> None:
    with pytest.raises(ValueError):
        snapshot(case(), read_at=datetime(2026, 11, 29, 10, 0))


@pytest.mark.parametrize(
    ("c", "expected"),
    [
        pytest.param(case(), True, id="transferred"),
        pytest.param(origin_case(), True, id="from-12345"),
        pytest.param(case(status="handling", transfer=None), False, id="union-own-case"),
        pytest.param(
            origin_case(origin={**ORIGIN, "system": "12315"}), False, id="other-partner-origin"
        ),
    ],
)
def test_concerns_12345(c: Case, expected: bool) -> None:
    assert concerns_12345(c) is expected


# --- create_order_request ---


def test_create_order_request_from_a_transferred_case() -> None:
    body = create_order_request(snapshot(case()), REQUEST_ID, TABLES)
    assert body.model_dump(mode="json") == {
        "requestId": REQUEST_ID,
        "sourceSystem": "12351",
        "sourceNo": CASE_NO,
        "title": "宿舍暖气管道破裂",
        "content": "职工反映宿舍暖气管道破裂。",
        "callerName": "王某某",
        "callerPhone": "13812345678",
        "category": "0302",
        "areaCode": "110108",
        "streetCode": None,
        "address": "海淀区某街道某号",
        "urgency": "2",
        "confidential": False,
    }


@pytest.mark.parametrize(
    ("transfer_category", "service_type", "category"),
    [
        pytest.param("0302", "other", "0302", id="valid-transfer-category"),
        pytest.param("0901", "health", "0799", id="invalid-transfer-category-table"),
        pytest.param(None, "legal_aid", "0299", id="no-transfer-category-table"),
        pytest.param(None, "skills", "0213", id="skills"),
        pytest.param(None, "other", "9999", id="default-row"),
    ],
)
def test_create_order_category(
    transfer_category: str | None, service_type: str, category: str
) -> None:
    c = case(transfer={**TRANSFER, "category": transfer_category}, service_type=service_type)
    assert create_order_request(snapshot(c), REQUEST_ID, TABLES).category == category


@pytest.mark.parametrize(
    ("priority", "urgency"),
    [
        pytest.param("normal", "1", id="normal-1"),
        pytest.param("high", "2", id="high-2"),
        pytest.param("alert", "3", id="alert-3"),
    ],
)
def test_create_order_urgency_from_priority(priority: str, urgency: str) -> None:
    body = create_order_request(snapshot(case(priority=priority)), REQUEST_ID, TABLES)
    assert body.urgency == urgency


@pytest.mark.parametrize(
    ("phone", "caller_phone", "first_line"),
    [
        pytest.param("+86 138 1234 5678", "13812345678", None, id="mobile-plus86"),
        pytest.param("138-1234-5678", "13812345678", None, id="mobile-dashes"),
        pytest.param("010 6234 5678", "010-62345678", None, id="landline-spaced"),
        pytest.param("0755-1234567", "0755-1234567", None, id="landline-0755"),
        pytest.param("", "", None, id="empty"),
        pytest.param(None, "", None, id="none"),
        pytest.param(
            "138 1234 5678 转 8", "", "联系电话（原文）：138 1234 5678 转 8", id="garbage-kept"
        ),
    ],
)
def test_create_order_phone(phone: str | None, caller_phone: str, first_line: str | None) -> None:
    c = case(worker={"name": "王某某", "phone": phone})
    body = create_order_request(snapshot(c), REQUEST_ID, TABLES)
    assert body.callerPhone == caller_phone
    expected = "职工反映宿舍暖气管道破裂。"
    assert body.content == (f"{first_line}\n{expected}" if first_line else expected)


def test_long_title_and_content_are_cut_with_the_case_marker_and_phone_line_survives() -> None:
    c = case(subject="题" * 150, description="文" * 8000, worker={"phone": "工地值班室"})
    body = create_order_request(snapshot(c), REQUEST_ID, TABLES)
    assert len(body.title) == 100 and body.title.endswith(CASE_MARKER)
    assert len(body.content) == 4000 and body.content.endswith(CASE_MARKER)
    assert body.content.startswith("联系电话（原文）：工地值班室\n文")


def test_title_and_content_at_12345_limits_arrive_whole() -> None:
    c = case(subject="题" * 100, description="文" * 4000)
    body = create_order_request(snapshot(c), REQUEST_ID, TABLES)
    assert (body.title, body.content) == ("题" * 100, "文" * 4000)


def test_case_without_description_sends_its_subject_as_content() -> None:
    body = create_order_request(snapshot(case(description=None)), REQUEST_ID, TABLES)
    assert body.content == "宿舍暖气管道破裂"


def test_confidential_crosses_to_12345() -> None:
    c = case(worker={"name": "王某某", "phone": "13812345678", "confidential": True})
    assert create_order_request(snapshot(c), REQUEST_ID, TABLES).confidential is True


@pytest.mark.parametrize(
    ("street", "expected"),
    [
        pytest.param("110108012", "110108012", id="valid-kept"),
        pytest.param("110105012", None, id="other-district-dropped"),
        pytest.param("11010801", None, id="8-digits-dropped"),
        pytest.param(None, None, id="none"),
    ],
)
def test_street_code_only_when_valid(street: str | None, expected: str | None) -> None:
    ref = snapshot(case()).model_copy(update={"street_code": street})
    assert create_order_request(ref, REQUEST_ID, TABLES).streetCode == expected


@pytest.mark.parametrize(
    ("district", "value"),
    [
        pytest.param(None, None, id="missing"),
        pytest.param("120101", "120101", id="outside-the-16"),
    ],
)
def test_create_order_needs_one_of_the_16_districts(
    district: str | None, value: str | None
) -> None:
    with pytest.raises(MappingError) as err:
        create_order_request(snapshot(case(district_code=district)), REQUEST_ID, TABLES)
    assert (err.value.field, err.value.value, err.value.case) == ("district_code", value, CASE_NO)


@pytest.mark.parametrize(
    ("ref", "field"),
    [
        pytest.param(snapshot(origin_case()), "origin", id="12345-origin-case"),
        pytest.param(
            snapshot(case(status="handling", transfer=None)), "transfer.to", id="not-transferred"
        ),
    ],
)
def test_create_order_refuses_other_snapshots(ref: Referral, field: str) -> None:
    with pytest.raises(MappingError) as err:
        create_order_request(ref, REQUEST_ID, TABLES)
    assert err.value.field == field


def test_create_order_validation_failure_names_the_field() -> None:
    with pytest.raises(MappingError) as err:
        create_order_request(snapshot(case()), "k" * 65, TABLES)
    assert err.value.field == "requestId"
    assert CASE_NO in str(err.value)


# --- reply, return, extension, sign on a 12345-origin case ---


@pytest.mark.parametrize(
    ("resolved", "expected"),
    [
        pytest.param(True, True, id="resolved"),
        pytest.param(False, False, id="unresolved"),
        pytest.param(None, True, id="unspecified-means-resolved"),
    ],
)
def test_reply_request(resolved: bool | None, expected: bool) -> None:
    ref = snapshot(origin_case(status="responded", response={**RESPONSE, "resolved": resolved}))
    body = reply_request(ref, "北京市总工会12351")
    assert body.model_dump() == {
        "content": "已协调企业支付工资。",
        "handler": "北京市总工会12351",
        "resolved": expected,
    }


def test_long_response_is_cut_to_4000_with_the_case_marker() -> None:
    ref = snapshot(origin_case(status="responded", response={**RESPONSE, "text": "答" * 5000}))
    body = reply_request(ref, "h")
    assert len(body.content) == 4000 and body.content.endswith(CASE_MARKER)


def test_response_of_exactly_4000_arrives_whole() -> None:
    ref = snapshot(origin_case(status="responded", response={**RESPONSE, "text": "答" * 4000}))
    assert reply_request(ref, "h").content == "答" * 4000


@pytest.mark.parametrize(
    "c",
    [
        pytest.param(origin_case(status="closed"), id="closed-without-response"),
        pytest.param(
            origin_case(status="responded", response={**RESPONSE, "text": " "}), id="blank-text"
        ),
    ],
)
def test_no_reply_without_a_response(c: Case) -> None:
    with pytest.raises(MappingError) as err:
        reply_request(snapshot(c), "h")
    assert err.value.field == "response"


@pytest.mark.parametrize(
    ("c", "reason"),
    [
        pytest.param(
            origin_case(status="rejected", rejection_reason="不属于工会受理范围"),
            "不属于工会受理范围",
            id="rejected",
        ),
        pytest.param(
            origin_case(status="transferred", transfer={**TRANSFER, "reason": "请12345另行派单"}),
            "请12345另行派单",
            id="transferred-back",
        ),
    ],
)
def test_return_request(c: Case, reason: str) -> None:
    assert return_request(snapshot(c)).reason == reason


def test_return_without_a_reason_is_parked() -> None:
    c = origin_case(status="transferred", transfer={**TRANSFER, "reason": None})
    with pytest.raises(MappingError) as err:
        return_request(snapshot(c))
    assert err.value.field == "return_reason"


EXT = {"new_deadline": "2026-12-03T09:20:03+08:00", "reason": "需要调查取证"}


@pytest.mark.parametrize(
    ("ask", "expected"),
    [
        pytest.param(
            EXT, {"reason": "需要调查取证", "newDeadline": "2026-12-03 09:20:03"}, id="beijing"
        ),
        pytest.param(
            {**EXT, "new_deadline": "2026-12-03T01:20:03Z"},
            {"reason": "需要调查取证", "newDeadline": "2026-12-03 09:20:03"},
            id="utc-same-instant",
        ),
        pytest.param(
            {**EXT, "new_deadline": "2026-12-03T09:20:03.250+08:00"},
            {"reason": "需要调查取证", "newDeadline": "2026-12-03 09:20:04"},
            id="milliseconds-round-up",
        ),
        pytest.param(
            {**EXT, "reason": None},
            {"reason": "12351职工服务热线申请延期", "newDeadline": "2026-12-03 09:20:03"},
            id="no-reason-default",
        ),
    ],
)
def test_extension_request(ask: dict[str, Any], expected: dict[str, str]) -> None:
    body = extension_request(snapshot(origin_case(extension_request=ask)))
    assert body.model_dump(mode="json") == expected


@pytest.mark.parametrize(
    ("ask", "field"),
    [
        pytest.param(None, "extension_request", id="none-asked"),
        pytest.param(
            {**EXT, "new_deadline": ORIGIN["deadline"]},
            "extension_request.new_deadline",
            id="not-later-than-deadline",
        ),
    ],
)
def test_extension_request_refused(ask: dict[str, Any] | None, field: str) -> None:
    with pytest.raises(MappingError) as err:
        extension_request(snapshot(origin_case(extension_request=ask)))
    assert err.value.field == field


@pytest.mark.parametrize("build", [return_request, extension_request])
def test_origin_actions_refuse_a_transferred_12351_case(build) -> None:
    with pytest.raises(MappingError) as err:
        build(snapshot(case()))
    assert err.value.field == "origin"


def test_reply_refuses_a_transferred_12351_case() -> None:
    with pytest.raises(MappingError):
        reply_request(snapshot(case()), "h")


def test_sign_request() -> None:
    assert sign_request("北京市总工会12351").handler == "北京市总工会12351"
    with pytest.raises(MappingError) as err:
        sign_request("")
    assert err.value.field == "handler"


def test_bodies_depend_only_on_the_snapshot() -> None:
    c = origin_case(status="responded", response=RESPONSE, extension_request=EXT)
    first, later = snapshot(c), snapshot(c, read_at=READ_AT + timedelta(days=1))
    assert reply_request(first, "h") == reply_request(later, "h")
    assert extension_request(first) == extension_request(later)
    assert first.deadline is not None and first.deadline.tzinfo is not None
    assert first.deadline.astimezone(BEIJING).hour == 9
