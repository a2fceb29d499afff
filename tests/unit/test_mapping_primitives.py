"""Phones, text cuts, times and the mapping error: the rules every direction shares."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from bridge.errors import BridgeError, ConfigError, ConflictError, MappingError
from bridge.mapping.phones import normalise_phone, phone_for_12345
from bridge.mapping.text import fit, marker, with_first_lines
from bridge.mapping.times import (
    BEIJING,
    from_beijing,
    to_beijing,
    to_beijing_seconds_up,
    to_rfc3339,
)
from schemas.hotline12345 import ReplyRequest, is_valid_phone

# --- phones ---


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("13812345678", "13812345678", id="mobile-plain"),
        pytest.param("+86 138 1234 5678", "13812345678", id="mobile-plus86-spaces"),
        pytest.param("+86 13812345678", "13812345678", id="mobile-plus86-space"),
        pytest.param("+8613812345678", "13812345678", id="mobile-plus86-glued"),
        pytest.param("86 13812345678", "13812345678", id="mobile-86-space"),
        pytest.param("8613812345678", "13812345678", id="mobile-86-glued"),
        pytest.param("0086 138 1234 5678", "13812345678", id="mobile-0086"),
        pytest.param("(+86) 138-1234-5678", "13812345678", id="mobile-parenthesised-cc"),
        pytest.param("138-1234-5678", "13812345678", id="mobile-dashes"),
        pytest.param("138.1234.5678", "13812345678", id="mobile-dots"),
        pytest.param("(138)1234 5678", "13812345678", id="mobile-parentheses"),
        pytest.param(" 138 1234 5678 ", "13812345678", id="mobile-padded"),
        pytest.param("１３８１２３４５６７８", "13812345678", id="mobile-full-width"),
        pytest.param("138–1234–5678", "13812345678", id="mobile-en-dashes"),
        pytest.param("010 6234 5678", "010-62345678", id="landline-beijing-spaces"),
        pytest.param("010-62345678", "010-62345678", id="landline-beijing-dash"),
        pytest.param("01062345678", "010-62345678", id="landline-beijing-glued"),
        pytest.param("(010)62345678", "010-62345678", id="landline-parenthesised-area"),
        pytest.param("010 1234567", "010-1234567", id="landline-7-digits"),
        pytest.param("0755-1234567", "0755-1234567", id="landline-4-char-area-7"),
        pytest.param("075512345678", "0755-12345678", id="landline-4-char-area-glued"),
        pytest.param("02112345678", "021-12345678", id="landline-02x-glued"),
        pytest.param("0571 8888 8888", "0571-88888888", id="landline-spaced-groups"),
        pytest.param("+86 10 6234 5678", "010-62345678", id="landline-intl-trunk-0-restored"),
        pytest.param("+86 755 1234567", "0755-1234567", id="landline-intl-4-char"),
        pytest.param("", "", id="empty"),
        pytest.param("   ", "", id="blank"),
        pytest.param(None, "", id="none"),
        pytest.param("1381234567", None, id="mobile-10-digits"),
        pytest.param("138123456789", None, id="mobile-12-digits"),
        pytest.param("23812345678", None, id="11-digits-not-1"),
        pytest.param("010-62345678-123", None, id="landline-extension"),
        pytest.param("010-123456", None, id="landline-6-digits"),
        pytest.param("62345678", None, id="landline-no-area"),
        pytest.param("+1 415 555 0100", None, id="foreign-country-code"),
        pytest.param("138 1234 5678 转 8", None, id="with-words"),
        pytest.param("tel:13812345678", None, id="with-letters"),
        pytest.param("138+1234+5678", None, id="plus-inside"),
        pytest.param("不详", None, id="garbage"),
    ],
)
def test_normalise_phone(raw: str | None, expected: str | None) -> None:
    assert normalise_phone(raw) == expected
    if expected is not None:
        assert is_valid_phone(expected)


@pytest.mark.parametrize(
    ("raw", "phone", "line"),
    [
        pytest.param("+86 138 1234 5678", "13812345678", None, id="normalised-no-line"),
        pytest.param("", "", None, id="empty-no-line"),
        pytest.param(None, "", None, id="none-no-line"),
        pytest.param(
            "138 1234 5678 转 8",
            "",
            "联系电话（原文）：138 1234 5678 转 8",
            id="garbage-kept-as-given",
        ),
        pytest.param(" 工地值班室 ", "", "联系电话（原文）：工地值班室", id="garbage-trimmed"),
    ],
)
def test_phone_for_12345_keeps_what_does_not_normalise(
    raw: str | None, phone: str, line: str | None
) -> None:
    assert phone_for_12345(raw) == (phone, line)


# --- text ---

CASE_MARKER = marker("12351", "12351-2026-0001234")
ORDER_MARKER = marker("12345", "BJ12345-20261129-004211")


def test_markers_name_the_source_and_include_the_ellipsis() -> None:
    assert CASE_MARKER == "…（全文见12351 12351-2026-0001234）"
    assert ORDER_MARKER == "…（全文见12345 BJ12345-20261129-004211）"


@pytest.mark.parametrize(
    ("size", "limit"),
    [
        pytest.param(0, 100, id="empty"),
        pytest.param(99, 100, id="under"),
        pytest.param(100, 100, id="exactly-at-limit"),
        pytest.param(2000, 2000, id="partner-text-at-limit"),
    ],
)
def test_fit_leaves_text_within_the_limit_whole(size: int, limit: int) -> None:
    text = "字" * size
    assert fit(text, limit, CASE_MARKER) == text


@pytest.mark.parametrize(
    ("size", "limit", "mark"),
    [
        pytest.param(101, 100, CASE_MARKER, id="title-one-over"),
        pytest.param(500, 100, CASE_MARKER, id="title-far-over"),
        pytest.param(201, 200, ORDER_MARKER, id="subject-one-over"),
        pytest.param(4001, 4000, CASE_MARKER, id="content-one-over"),
        pytest.param(8001, 8000, ORDER_MARKER, id="description-one-over"),
        pytest.param(2001, 2000, ORDER_MARKER, id="partner-text-one-over"),
        pytest.param(9000, 4000, CASE_MARKER, id="reply-far-over"),
    ],
)
def test_fit_cuts_to_exactly_the_limit_with_the_marker(size: int, limit: int, mark: str) -> None:
    text = "".join(chr(0x4E00 + i % 100) for i in range(size))
    cut = fit(text, limit, mark)
    assert len(cut) == limit
    assert cut.endswith(mark)
    assert cut[: limit - len(mark)] == text[: limit - len(mark)]


def test_fit_counts_code_points_not_bytes_or_utf16_units() -> None:
    text = "𠀀" * 150  # CJK extension B: 4 bytes in UTF-8, 2 UTF-16 units, 1 code point
    cut = fit(text, 100, CASE_MARKER)
    assert len(cut) == 100
    assert cut == "𠀀" * (100 - len(CASE_MARKER)) + CASE_MARKER
    assert fit("𠀀" * 100, 100, CASE_MARKER) == "𠀀" * 100


def test_fit_refuses_a_marker_longer_than_the_limit() -> None:
    with pytest.raises(ValueError):
        fit("x" * 20, 10, CASE_MARKER)


def test_added_first_lines_come_first_and_survive_the_cut() -> None:
    text = with_first_lines(["联系电话（原文）：不详", None, "原属地编码：120101"], "正" * 5000)
    cut = fit(text, 4000, CASE_MARKER)
    assert cut.startswith("联系电话（原文）：不详\n原属地编码：120101\n正")
    assert len(cut) == 4000
    assert cut.endswith(CASE_MARKER)


@pytest.mark.parametrize(
    ("lines", "text", "expected"),
    [
        pytest.param([], "正文", "正文", id="no-lines"),
        pytest.param([None], "正文", "正文", id="none-line-skipped"),
        pytest.param(["甲"], "正文", "甲\n正文", id="one-line"),
        pytest.param(["甲", "乙"], "", "甲\n乙", id="lines-no-text"),
        pytest.param([], None, "", id="nothing"),
    ],
)
def test_with_first_lines(lines: list, text: str | None, expected: str) -> None:
    assert with_first_lines(lines, text) == expected


# --- times ---

LOCAL = datetime(2026, 11, 29, 14, 3, 7)


def test_beijing_local_is_utc_plus_8() -> None:
    aware = from_beijing(LOCAL)
    assert aware.utcoffset() == timedelta(hours=8)
    assert aware == datetime(2026, 11, 29, 6, 3, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    "local",
    [
        pytest.param(datetime(2026, 11, 29, 14, 3, 7), id="afternoon"),
        pytest.param(datetime(2026, 1, 1, 0, 0, 0), id="new-year-midnight"),
        pytest.param(datetime(2026, 7, 1, 7, 59, 59), id="summer-before-utc-midnight"),
        pytest.param(datetime(2024, 2, 29, 23, 59, 59), id="leap-day"),
    ],
)
def test_local_aware_round_trip_is_the_same_instant(local: datetime) -> None:
    aware = from_beijing(local)
    assert to_beijing(aware) == local
    assert datetime.fromisoformat(to_rfc3339(aware)) == aware


@pytest.mark.parametrize(
    ("aware", "local"),
    [
        pytest.param(datetime(2026, 11, 29, 6, 3, 7, tzinfo=UTC), LOCAL, id="utc"),
        pytest.param(
            datetime(2026, 11, 29, 15, 3, 7, tzinfo=timezone(timedelta(hours=9))),
            LOCAL,
            id="tokyo",
        ),
        pytest.param(LOCAL.replace(tzinfo=BEIJING), LOCAL, id="beijing"),
    ],
)
def test_aware_to_beijing_local_keeps_the_instant(aware: datetime, local: datetime) -> None:
    assert to_beijing(aware) == local
    assert from_beijing(to_beijing(aware)) == aware


def test_rfc3339_has_the_offset_and_milliseconds() -> None:
    assert to_rfc3339(from_beijing(LOCAL)) == "2026-11-29T14:03:07.000+08:00"
    utc = datetime(2026, 11, 29, 1, 12, 44, 120000, tzinfo=UTC)
    assert to_rfc3339(utc) == "2026-11-29T09:12:44.120+08:00"


def test_from_beijing_passes_none_and_aware_through() -> None:
    aware = datetime(2026, 1, 1, tzinfo=UTC)
    assert from_beijing(None) is None
    assert from_beijing(aware) is aware


@pytest.mark.parametrize("convert", [to_beijing, to_rfc3339, to_beijing_seconds_up])
def test_naive_times_are_refused_where_an_instant_is_needed(convert) -> None:
    with pytest.raises(ValueError):
        convert(LOCAL)


@pytest.mark.parametrize(
    ("aware", "local"),
    [
        pytest.param(LOCAL.replace(tzinfo=BEIJING), LOCAL, id="whole-second-unchanged"),
        pytest.param(
            LOCAL.replace(microsecond=1, tzinfo=BEIJING),
            LOCAL + timedelta(seconds=1),
            id="fraction-rounds-up",
        ),
    ],
)
def test_seconds_up_never_shrinks_a_deadline(aware: datetime, local: datetime) -> None:
    assert to_beijing_seconds_up(aware) == local


# --- errors ---


def test_error_tree() -> None:
    for cls in (MappingError, ConflictError, ConfigError):
        assert issubclass(cls, BridgeError)


def test_mapping_error_names_field_and_case_but_no_personal_value() -> None:
    err = MappingError("content", 4213, "BJ12345-20261129-004211", "length 4213 > 4000")
    assert str(err) == "content: length 4213 > 4000 (case BJ12345-20261129-004211)"
    assert (err.field, err.value, err.case) == ("content", 4213, "BJ12345-20261129-004211")


def test_mapping_error_without_reason_or_case() -> None:
    assert str(MappingError("district_code")) == "district_code: does not map"


def test_mapping_error_survives_pickling() -> None:
    err = pickle.loads(pickle.dumps(MappingError("title", 101, "C1", "length 101 > 100")))
    assert (err.field, err.value, err.case, err.reason) == ("title", 101, "C1", "length 101 > 100")


def test_mapping_error_from_validation_names_the_field_not_the_input() -> None:
    secret = "王某某的详细答复" * 600
    with pytest.raises(ValidationError) as exc:
        ReplyRequest(content=secret, handler="h", resolved=True)
    err = MappingError.from_validation(exc.value, "C1")
    assert err.field == "content"
    assert "王某某" not in str(err)
    assert "(case C1)" in str(err)
