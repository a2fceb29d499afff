"""Every row of every mapping table, the explicit default rows, and config overrides."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bridge.errors import ConfigError, MappingError
from bridge.mapping.tables import MappingTables
from schemas.canonical import Lifecycle, Priority, Satisfaction

TABLES = MappingTables.default()


@pytest.mark.parametrize(
    ("category", "service_type"),
    [
        pytest.param("0201", "legal_aid", id="0201-labour-contract"),
        pytest.param("0202", "legal_aid", id="0202-unpaid-wages"),
        pytest.param("0203", "legal_aid", id="0203-work-injury"),
        pytest.param("0204", "legal_aid", id="0204-social-insurance"),
        pytest.param("0205", "legal_aid", id="0205-rest-leave"),
        pytest.param("0206", "legal_aid", id="0206-dispute-mediation"),
        pytest.param("0299", "legal_aid", id="0299-labour-other"),
        pytest.param("0210", "union_membership", id="0210-union-membership"),
        pytest.param("0211", "hardship_relief", id="0211-hardship"),
        pytest.param("0212", "mutual_aid", id="0212-mutual-aid"),
        pytest.param("0213", "service_activity", id="0213-worker-services"),
        pytest.param("0101", "other", id="default-row-urban"),
        pytest.param("0207", "other", id="default-row-unlisted-02xx"),
        pytest.param("9999", "other", id="default-row-9999"),
    ],
)
def test_category_to_service_type(category: str, service_type: str) -> None:
    assert TABLES.service_type_for(category) == service_type


@pytest.mark.parametrize(
    ("service_type", "category"),
    [
        pytest.param("legal_aid", "0299", id="legal_aid"),
        pytest.param("union_membership", "0210", id="union_membership"),
        pytest.param("hardship_relief", "0211", id="hardship_relief"),
        pytest.param("mutual_aid", "0212", id="mutual_aid"),
        pytest.param("service_activity", "0213", id="service_activity"),
        pytest.param("skills", "0213", id="skills"),
        pytest.param("health", "0799", id="health"),
        pytest.param("psych_care", "0799", id="psych_care"),
        pytest.param("maternal_care", "0799", id="maternal_care"),
        pytest.param("other", "9999", id="default-row-other"),
    ],
)
def test_service_type_to_category(service_type: str, category: str) -> None:
    assert TABLES.category_for(service_type) == category


@pytest.mark.parametrize(
    ("transfer_category", "expected"),
    [
        pytest.param("0302", "0302", id="valid-housing"),
        pytest.param("0101", "0101", id="valid-01"),
        pytest.param("0899", "0899", id="valid-08"),
        pytest.param("9901", "9901", id="valid-99"),
        pytest.param("0901", "0299", id="first-two-09-refused"),
        pytest.param("0001", "0299", id="first-two-00-refused"),
        pytest.param("1001", "0299", id="first-two-10-refused"),
        pytest.param("030", "0299", id="three-digits"),
        pytest.param("03021", "0299", id="five-digits"),
        pytest.param("03a2", "0299", id="not-digits"),
        pytest.param("", "0299", id="empty"),
        pytest.param(None, "0299", id="none"),
    ],
)
def test_transfer_category_used_when_12345_create_rule_accepts_it(
    transfer_category: str | None, expected: str
) -> None:
    assert TABLES.category_for("legal_aid", transfer_category) == expected


@pytest.mark.parametrize(
    ("urgency", "priority12351", "canonical"),
    [
        pytest.param("1", "normal", Priority.NORMAL, id="1-normal"),
        pytest.param("2", "high", Priority.URGENT, id="2-high"),
        pytest.param("3", "alert", Priority.EARLY_WARNING, id="3-alert-early-warning"),
    ],
)
def test_urgency_priority_rows_both_ways(
    urgency: str, priority12351: str, canonical: Priority
) -> None:
    assert TABLES.urgency_to_priority[urgency] == priority12351
    assert TABLES.priority_for_urgency(urgency) is canonical
    assert TABLES.priority_for_12351(priority12351) is canonical
    assert TABLES.urgency_for(canonical) == urgency
    assert TABLES.priority12351_for(canonical) == priority12351


@pytest.mark.parametrize(
    ("status", "reopen_count", "state"),
    [
        pytest.param("10", 0, Lifecycle.DELIVERED, id="10"),
        pytest.param("20", 0, Lifecycle.SIGNED, id="20"),
        pytest.param("20", 1, Lifecycle.REOPENED, id="20-reopened"),
        pytest.param("25", 0, Lifecycle.EXTENDED, id="25"),
        pytest.param("25", 2, Lifecycle.EXTENDED, id="25-reopened-stays-extended"),
        pytest.param("30", 0, Lifecycle.REPLIED, id="30"),
        pytest.param("30", 1, Lifecycle.REPLIED, id="30-after-reopen"),
        pytest.param("40", 0, Lifecycle.CALLBACK_RECORDED, id="40"),
        pytest.param("50", 0, Lifecycle.CLOSED, id="50"),
        pytest.param("60", 0, Lifecycle.RETURNED, id="60"),
        pytest.param("70", 0, Lifecycle.WITHDRAWN, id="70"),
    ],
)
def test_order_status_to_lifecycle(status: str, reopen_count: int, state: Lifecycle) -> None:
    assert TABLES.order_lifecycle(status, reopen_count) is state


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
        pytest.param("transferred", 0, Lifecycle.DELIVERED, id="transferred"),
        pytest.param("rejected", 0, Lifecycle.RETURNED, id="rejected"),
    ],
)
def test_case_status_to_lifecycle(status: str, reopen_count: int, state: Lifecycle) -> None:
    assert TABLES.case_lifecycle(status, reopen_count) is state


@pytest.mark.parametrize(
    ("code", "satisfaction"),
    [
        pytest.param("1", Satisfaction.SATISFIED, id="1-satisfied"),
        pytest.param("2", Satisfaction.BASICALLY_SATISFIED, id="2-basically"),
        pytest.param("3", Satisfaction.DISSATISFIED, id="3-dissatisfied"),
        pytest.param("4", Satisfaction.UNREACHABLE, id="4-unreachable"),
    ],
)
def test_satisfaction_codes_both_ways(code: str, satisfaction: Satisfaction) -> None:
    assert TABLES.satisfaction_for(code) is satisfaction
    assert TABLES.satisfaction_code_for(satisfaction) == code


def test_unknown_satisfaction_code_is_a_mapping_error() -> None:
    with pytest.raises(MappingError) as err:
        TABLES.satisfaction_for("5", case="BJ12345-1")
    assert err.value.field == "visit.satisfaction"
    assert "BJ12345-1" in str(err.value)


@pytest.mark.parametrize(
    ("status", "reopen_count", "partner_status"),
    [
        pytest.param("10", 0, None, id="10-none"),
        pytest.param("20", 0, "accepted", id="20-first-time-accepted"),
        pytest.param("20", 1, "in_progress", id="20-after-reopen-in_progress"),
        pytest.param("25", 0, "extended", id="25-extended"),
        pytest.param("30", 0, "replied", id="30-replied"),
        pytest.param("30", 1, "replied", id="30-after-reopen-replied"),
        pytest.param("40", 0, "replied", id="40-replied"),
        pytest.param("50", 0, "closed", id="50-closed"),
        pytest.param("60", 0, "returned", id="60-returned"),
        pytest.param("70", 0, "withdrawn", id="70-withdrawn"),
    ],
)
def test_order_status_to_partner_status(
    status: str, reopen_count: int, partner_status: str | None
) -> None:
    assert TABLES.partner_status_for(status, reopen_count) == partner_status


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(code, id=code)
        for code in (
            "110101 110102 110105 110106 110107 110108 110109 110111 "
            "110112 110113 110114 110115 110116 110117 110118 110119"
        ).split()
    ],
)
def test_the_16_districts(code: str) -> None:
    assert TABLES.is_district(code)


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("110100", id="city-level"),
        pytest.param("110103", id="merged-chongwen"),
        pytest.param("120101", id="tianjin"),
        pytest.param("", id="empty"),
        pytest.param(None, id="none"),
    ],
)
def test_codes_outside_the_16(code: str | None) -> None:
    assert not TABLES.is_district(code)


def test_transfer_targets_are_the_deployments_partners_by_default() -> None:
    # was `== ("12345",)`: issue 10 routes a transfer to any partner of the deployment
    # (`[bridge] partners`); the table only narrows that when ops set it
    assert TABLES.transfer_targets is None


# --- config overrides ---


def test_from_config_without_overrides_is_the_default() -> None:
    assert MappingTables.from_config(None) == TABLES
    assert MappingTables.from_config({}) == TABLES


def test_from_config_merges_a_row_onto_the_default_table() -> None:
    tables = MappingTables.from_config({"category_to_service_type": {"0301": "skills"}})
    assert tables.service_type_for("0301") == "skills"
    assert tables.service_type_for("0202") == "legal_aid"


@pytest.mark.parametrize(
    ("overrides", "check"),
    [
        pytest.param(
            {"default_service_type": "legal_aid"},
            lambda t: t.service_type_for("0101") == "legal_aid",
            id="default-service-type",
        ),
        pytest.param(
            {"default_category": "9901"},
            lambda t: t.category_for("other") == "9901",
            id="default-category",
        ),
        pytest.param(
            {"service_type_to_category": {"skills": "0201"}},
            lambda t: t.category_for("skills") == "0201",
            id="service-type-row",
        ),
        pytest.param(
            {"order_status_to_partner_status": {"50": "replied"}},
            lambda t: t.partner_status_for("50") == "replied",
            id="partner-status-row",
        ),
        pytest.param(
            {"districts": {"110100": "北京市"}},
            lambda t: t.is_district("110100") and t.is_district("110108"),
            id="extra-district",
        ),
    ],
)
def test_from_config_overrides(overrides: dict, check) -> None:
    assert check(MappingTables.from_config(overrides))


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"no_such_table": {}}, id="unknown-table"),
        pytest.param({"category_to_service_type": {"0301": "plumbing"}}, id="bad-service-type"),
        pytest.param({"category_to_service_type": {"301": "other"}}, id="category-not-4-digits"),
        pytest.param({"default_category": "0001"}, id="default-category-refused-by-12345"),
        pytest.param({"service_type_to_category": {"skills": "1234"}}, id="row-refused-by-12345"),
        pytest.param({"satisfaction_codes": {"4": "satisfied"}}, id="satisfaction-not-bijective"),
        pytest.param({"urgency_to_priority": {"1": "high"}}, id="urgency-disagrees-canonical"),
        pytest.param(
            {"urgency_to_canonical": {"1": "urgent"}}, id="urgency-canonical-not-bijective"
        ),
        pytest.param({"order_status_to_lifecycle": {"20": "pending"}}, id="bad-lifecycle"),
        pytest.param({"order_status_to_partner_status": {"50": "done"}}, id="bad-partner-status"),
        pytest.param({"districts": {"11010": "x"}}, id="district-not-6-digits"),
    ],
)
def test_bad_config_is_a_config_error(overrides: dict) -> None:
    with pytest.raises(ConfigError):
        MappingTables.from_config(overrides)


def test_a_table_without_a_status_row_is_refused() -> None:
    data = TABLES.model_dump()
    del data["case_status_to_lifecycle"]["rejected"]
    with pytest.raises(ValidationError, match="rejected"):
        MappingTables.model_validate(data)


def test_tables_are_frozen() -> None:
    with pytest.raises(ValidationError):
        TABLES.default_category = "0101"  # type: ignore[misc]


# --- the version: a hash of the effective tables ---


def test_the_version_is_16_hex_digits_and_stable() -> None:
    version = TABLES.version
    assert len(version) == 16 and int(version, 16) >= 0
    assert MappingTables.default().version == version  # another object, same tables


def test_equal_tables_have_equal_versions_whatever_the_row_order() -> None:
    data = TABLES.as_json()
    reordered = {
        key: dict(reversed(list(value.items()))) if isinstance(value, dict) else value
        for key, value in reversed(list(data.items()))
    }
    assert list(reordered["districts"]) != list(data["districts"])
    assert MappingTables.model_validate(reordered).version == TABLES.version


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"category_to_service_type": {"0202": "mutual_aid"}}, id="changed-row"),
        pytest.param({"category_to_service_type": {"0301": "legal_aid"}}, id="added-row"),
        pytest.param({"default_category": "0799"}, id="changed-default"),
        pytest.param({"districts": {"110229": "延庆区（旧）"}}, id="added-district"),
        pytest.param({"transfer_targets": ["12345", "12385"]}, id="changed-list"),
    ],
)
def test_any_changed_entry_changes_the_version(overrides: dict) -> None:
    assert MappingTables.from_config(overrides).version != TABLES.version


def test_stored_tables_come_back_with_the_same_version() -> None:
    tables = MappingTables.from_config({"category_to_service_type": {"0202": "mutual_aid"}})
    back = MappingTables.from_stored(tables.as_json())
    assert back == tables and back.version == tables.version
    assert back.service_type_for("0202") == "mutual_aid"


def test_stored_tables_that_no_longer_validate_raise_config_error() -> None:
    broken = {**TABLES.as_json(), "default_service_type": "astrology"}
    with pytest.raises(ConfigError, match=r"stored mapping\.default_service_type"):
        MappingTables.from_stored(broken)
