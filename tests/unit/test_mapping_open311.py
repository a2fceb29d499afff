"""The 12385 (Open311) mapping and tables: pure, one behaviour per test, every row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bridge.errors import MappingError
from bridge.mapping import MappingTables
from bridge.partners.open311 import UnionView, mapping
from bridge.partners.open311.tables import (
    CREATED_STATUS_TO_PARTNER_STATUS,
    SERVICE_CODE_TO_TYPE,
    SERVICE_TYPE_TO_CODE,
    Open311Tables,
)
from schemas.canonical import Caller, Lifecycle, Priority, Referral, Reply, Transfer
from schemas.hotline12345 import DISTRICTS
from schemas.open311 import RequestUpdate, ServiceRequest

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TABLES = Open311Tables()
CASE_NO = "12351-2026-0000042"


def union_case(**changes: Any) -> Referral:
    """A 12351 case transferred to 12385, as the union's side reads it."""
    fields: dict[str, Any] = {
        "referral_id": f"12351:{CASE_NO}",
        "origin": "12351",
        "source": "12351",
        "target": "12385",
        "source_version": 3,
        "source_no": CASE_NO,
        "ids": {"12351": "c-42"},
        "numbers": {"12351": CASE_NO},
        "read_at": T0,
        "state": Lifecycle.DELIVERED,
        "native_status": "transferred",
        "classification": {"12351": "legal_aid"},
        "priority": Priority.NORMAL,
        "district_code": "110105",
        "caller": Caller(name="王小明", phone="13812345678"),
        "subject": "残疾人补贴咨询",
        "text": "王小明（电话13812345678，身份证110105199001011234）咨询补贴。",
        "location": "朝阳区某小区3号楼",
        "accepted_at": T0 - timedelta(hours=2),
        "updated_at": T0 - timedelta(hours=1),
        "transfer": Transfer(to="12385", reason="残联职责"),
    }
    return Referral(**(fields | changes))


def union_handling(**changes: Any) -> Referral:
    """The union's case made from 12385 request 2026000007."""
    return union_case(
        referral_id="12385:2026000007",
        origin="12385",
        target="12385",
        ids={"12351": "c-7", "12385": "2026000007"},
        numbers={"12351": CASE_NO, "12385": "2026000007"},
        transfer=None,
        **changes,
    )


def update(status: str, text: str = "", **changes: Any) -> RequestUpdate:
    fields = {
        "update_id": "u-1",
        "service_request_id": "2026000007",
        "status": status,
        "description": text,
        "updated_datetime": T0,
    }
    return RequestUpdate.model_validate(fields | changes)


def referred_request(**changes: Any) -> ServiceRequest:
    fields = {
        "service_request_id": "2026000007",
        "status": "open",
        "service_code": "DP-RIGHTS",
        "description": "工资被拖欠三个月\n残疾职工反映单位拖欠工资。",
        "agency_responsible": "12351",
        "requested_datetime": T0 - timedelta(days=1),
        "address": "北京市海淀区",
        "last_name": "张",
        "first_name": "伟",
        "phone": "13900001111",
        "attributes": {"confidential": "false"},
    }
    return ServiceRequest.model_validate(fields | changes)


# --- tables -----------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "service_type"), SERVICE_CODE_TO_TYPE.items(), ids=str)
def test_every_service_code_has_its_union_service_type(code: str, service_type: str) -> None:
    assert TABLES.service_type_for(code) == service_type


def test_an_unknown_service_code_is_the_default_row() -> None:
    assert TABLES.service_type_for("DP-NEW") == "other"


@pytest.mark.parametrize(("service_type", "code"), SERVICE_TYPE_TO_CODE.items(), ids=str)
def test_every_service_type_row_names_its_code(service_type: str, code: str) -> None:
    assert TABLES.service_code_for(service_type) == code


def test_a_service_type_without_a_row_is_dp_other() -> None:
    assert TABLES.service_code_for("union_membership") == "DP-OTHER"


def test_a_transfer_category_that_is_a_12385_code_wins() -> None:
    assert TABLES.service_code_for("legal_aid", "DP-ACCESS") == "DP-ACCESS"
    assert TABLES.service_code_for("legal_aid", "0201") == "DP-RIGHTS"


@pytest.mark.parametrize(
    ("status", "partner_status"), CREATED_STATUS_TO_PARTNER_STATUS.items(), ids=str
)
def test_the_union_reads_each_staff_status(status: str, partner_status: str) -> None:
    ref = mapping.created_to_referral(
        "12385", CASE_NO, "2026000009", None if status == "open" else update(status, "答复"),
        version=2, read_at=T0, tables=TABLES,
    )  # fmt: skip
    assert UnionView().partner_status(ref, MappingTables.default()) == (partner_status, False)


def test_the_union_reads_service_codes_through_the_kinds_tables_in_the_node_tables() -> None:
    """`[mapping.open311]` overrides a row; the union's view reads the node's tables."""
    ref = mapping.referred_to_referral(
        "12385", referred_request(service_code="DP-ACCESS"), update("internal_referral"),
        version=1, read_at=T0, tables=TABLES,
    )  # fmt: skip
    plain = MappingTables.default()
    edited = MappingTables.from_config(
        {"open311": {"service_code_to_type": {"DP-ACCESS": "health"}}}
    )
    assert UnionView().service_type(ref, plain) == "other"
    assert UnionView().service_type(ref, edited) == "health"
    assert edited.version != plain.version


# --- 12385 → canonical ------------------------------------------------------------------


def test_a_referral_becomes_a_12385_origin_referral_with_private_contact() -> None:
    ref = mapping.referred_to_referral(
        "12385", referred_request(), update("internal_referral", "转介至12351"),
        version=1, read_at=T0, tables=TABLES,
    )  # fmt: skip
    assert (ref.referral_id, ref.origin, ref.target) == ("12385:2026000007", "12385", "12351")
    assert ref.state is Lifecycle.DELIVERED
    assert ref.caller == Caller(name="张伟", phone="13900001111", confidential=False)
    assert ref.subject == "工资被拖欠三个月"
    assert ref.classification == {"12385": "DP-RIGHTS"}
    assert ref.deadline == T0 - timedelta(days=1) + timedelta(days=15)


def test_a_referral_keeps_12385s_expected_time_as_deadline() -> None:
    expected = T0 + timedelta(days=3)
    ref = mapping.referred_to_referral(
        "12385", referred_request(expected_datetime=expected), update("internal_referral"),
        version=1, read_at=T0, tables=TABLES,
    )  # fmt: skip
    assert ref.deadline == expected


def test_a_confidential_referral_keeps_the_flag() -> None:
    request = referred_request(attributes={"confidential": "true"})
    ref = mapping.referred_to_referral(
        "12385", request, update("internal_referral"), version=1, read_at=T0, tables=TABLES
    )
    assert ref.caller.confidential is True


def test_a_referral_without_text_does_not_map() -> None:
    with pytest.raises(MappingError) as err:
        mapping.referred_to_referral(
            "12385", referred_request(description=" "), update("internal_referral"),
            version=1, read_at=T0, tables=TABLES,
        )  # fmt: skip
    assert err.value.field == "description"


@pytest.mark.parametrize(
    ("status", "state", "rounds"),
    [
        pytest.param("cancelled", Lifecycle.WITHDRAWN, 0, id="cancelled-withdrawn"),
        pytest.param("reopen", Lifecycle.REOPENED, 1, id="reopen-reopened"),
    ],
)
def test_staff_updates_on_a_referral(status: str, state: Lifecycle, rounds: int) -> None:
    base = mapping.referred_to_referral(
        "12385", referred_request(), update("internal_referral"), version=1, read_at=T0,
        tables=TABLES,
    )  # fmt: skip
    ref = mapping.referred_update(
        "12385", base, update(status, "不满意"), version=2, read_at=T0, tables=TABLES,
        reopen_count=rounds,
    )  # fmt: skip
    assert (ref.state, ref.reopen_count, ref.source_version) == (state, rounds, 2)
    assert ref.reopen_reason == ("不满意" if status == "reopen" else None)
    assert ref.caller == base.caller and ref.deadline == base.deadline


def test_a_referral_update_takes_nothing_of_the_unions_handling() -> None:
    case = union_handling(
        state=Lifecycle.REPLIED, native_status="responded", reply=Reply(text="已答复", at=T0)
    )
    ref = mapping.referred_update(
        "12385", case, update("reopen"), version=5, read_at=T0, tables=TABLES, reopen_count=1
    )
    assert (ref.source, ref.reply, ref.classification) == ("12385", None, {})
    assert ref.numbers == {"12385": "2026000007"}


def test_fixed_carries_the_answer_as_reply_and_returned_the_reason() -> None:
    fixed = mapping.created_to_referral(
        "12385", CASE_NO, "2026000009", update("fixed", "已办理补贴"), version=2, read_at=T0,
        tables=TABLES,
    )  # fmt: skip
    assert fixed.reply == Reply(text="已办理补贴", at=T0)
    assert fixed.referral_id == f"12351:{CASE_NO}" and fixed.numbers == {"12385": "2026000009"}
    returned = mapping.created_to_referral(
        "12385", CASE_NO, "2026000009", update("not_councils_responsibility", "非残联职责"),
        version=3, read_at=T0, tables=TABLES,
    )  # fmt: skip
    assert (returned.state, returned.return_reason) == (Lifecycle.RETURNED, "非残联职责")


# --- canonical → 12385 ------------------------------------------------------------------


def test_a_transferred_case_becomes_a_request_with_contact_only_in_private_fields() -> None:
    form = mapping.create_request_form(union_case(), TABLES, DISTRICTS)
    assert (form.service_code, form.external_ref, form.confidential) == (
        "DP-RIGHTS",
        CASE_NO,
        False,
    )
    assert (form.last_name, form.phone) == ("王小明", "13812345678")
    public = f"{form.description} {form.address_string}"
    for personal in ("王小明", "13812345678", "110105199001011234", "某小区"):
        assert personal not in public
    assert form.description.startswith("残疾人补贴咨询\n")
    assert form.address_string == "北京市朝阳区"
    assert ("attribute[confidential]", "false") in form.form()


def test_a_confidential_case_publishes_no_case_text_and_no_district() -> None:
    ref = union_case(caller=Caller(name="王小明", phone="13812345678", confidential=True))
    form = mapping.create_request_form(ref, TABLES, DISTRICTS)
    assert form.description == mapping.CONFIDENTIAL_TEXT
    assert form.address_string == "北京市"
    assert form.confidential and ("attribute[confidential]", "true") in form.form()
    assert (form.last_name, form.phone) == ("王小明", "13812345678")


def test_a_subsidy_transfer_is_parked_for_want_of_a_card_number() -> None:
    ref = union_case(transfer=Transfer(to="12385", category="DP-SUBSIDY"))
    with pytest.raises(MappingError) as err:
        mapping.create_request_form(ref, TABLES, DISTRICTS)
    assert (err.value.field, err.value.value) == ("transfer.category", "DP-SUBSIDY")


def test_a_phone_12385_cannot_take_is_parked_not_published() -> None:
    ref = union_case(caller=Caller(name="王小明", phone="1" * 31))
    with pytest.raises(MappingError) as err:
        mapping.create_request_form(ref, TABLES, DISTRICTS)
    assert (err.value.field, err.value.value) == ("caller.phone", 31)


def _posted(ref: Referral) -> list[tuple[str, str, str, datetime]]:
    return [
        (key, body.status, body.description, body.updated_datetime)
        for key, body in mapping.post_update_steps(ref, "2026000007")
    ]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {"state": Lifecycle.SIGNED, "native_status": "dispatched"}, [], id="received-nothing"
        ),
        pytest.param(
            {"state": Lifecycle.IN_PROGRESS, "native_status": "handling"},
            [("in_progress:0", "IN_PROGRESS", "", T0 - timedelta(hours=2))],
            id="handling-in_progress",
        ),
        pytest.param(
            {
                "state": Lifecycle.REPLIED,
                "native_status": "responded",
                "reply": Reply(text="已协调，联系13812345678", at=T0),
            },
            [
                ("in_progress:0", "IN_PROGRESS", "", T0 - timedelta(hours=2)),
                ("fixed:0", "FIXED", "已协调，联系（已隐去）", T0),
            ],
            id="responded-fixed-public",
        ),
        pytest.param(
            {"state": Lifecycle.RETURNED, "native_status": "rejected", "return_reason": "非职责"},
            [("no_further_action", "NO_FURTHER_ACTION", "非职责", T0 - timedelta(hours=1))],
            id="rejected-no_further_action",
        ),
        pytest.param(
            {
                "state": Lifecycle.CLOSED,
                "native_status": "closed",
                "reply": Reply(text="好", at=T0),
            },
            [
                ("in_progress:0", "IN_PROGRESS", "", T0 - timedelta(hours=2)),
                ("fixed:0", "FIXED", "好", T0),
                ("closed:0", "CLOSED", "", T0 - timedelta(hours=1)),
            ],
            id="closed-closed",
        ),
        pytest.param(
            {
                "state": Lifecycle.REPLIED,
                "native_status": "responded",
                "reopen_count": 1,
                "reply": Reply(text="再次答复", at=T0),
            },
            [("fixed:1", "FIXED", "再次答复", T0)],
            id="second-round-fixed-only",
        ),
    ],
)
def test_the_unions_handling_goes_back_as_updates(
    changes: dict[str, Any], expected: list[tuple[str, str, str, datetime]]
) -> None:
    assert _posted(union_handling(**changes)) == expected


def test_update_bodies_come_from_the_snapshot_alone() -> None:
    """The same handling read at another time and version gives the same bodies."""
    first = union_handling(
        state=Lifecycle.REPLIED, native_status="responded", reply=Reply(text="答复", at=T0)
    )
    later = first.model_copy(update={"read_at": T0 + timedelta(hours=5), "source_version": 9})
    assert mapping.post_update_steps(first, "7") == mapping.post_update_steps(later, "7")
    ids = [body.update_id for _, body in mapping.post_update_steps(first, "7")]
    assert ids == [f"12351.{CASE_NO}.in_progress:0", f"12351.{CASE_NO}.fixed:0"]


def test_a_confidential_workers_answer_is_not_published() -> None:
    ref = union_handling(
        state=Lifecycle.REPLIED,
        native_status="responded",
        caller=Caller(name="王小明", confidential=True),
        reply=Reply(text="已联系王小明所在单位", at=T0),
    )
    assert _posted(ref)[-1][2] == mapping.CONFIDENTIAL_ANSWER


def test_update_ids_stay_within_12385s_alphabet() -> None:
    made = mapping.update_id("案 1/2" + "x" * 80, "fixed:0")
    assert len(made) == 64 and " " not in made and "/" not in made
