"""The 12351 feed position: what it keeps so that a restart from `changed_since` neither
loses nor repeats a change; and the Idempotency-Key fitting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.hotline12351.client import idempotency_key, parse_etag
from adapters.hotline12351.feed import CasesPosition
from schemas.hotline12351 import Case

T0 = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)


def case(case_id: str, version: int, at: datetime) -> Case:
    return Case.model_validate(
        {
            "id": case_id,
            "case_no": f"12351-2026-{version:07d}",
            "created_at": T0.isoformat(),
            "updated_at": at.isoformat(),
            "version": version,
            "service_type": "legal_aid",
            "priority": "normal",
            "subject": "公司拖欠工资",
            "status": "received",
        }
    )


def test_mark_is_the_latest_updated_at_and_seen_holds_only_changes_at_it():
    pos = CasesPosition().after("c1", [case("a", 1, T0), case("b", 1, T0), case("a", 2, T0)])
    assert (pos.mark, pos.seen) == (T0, {("a", 1), ("b", 1), ("a", 2)})
    later = T0 + timedelta(milliseconds=1)
    pos = pos.after("c2", [case("c", 1, later)])
    assert (pos.cursor, pos.mark, pos.seen) == ("c2", later, {("c", 1)})


def test_after_a_restart_changes_at_the_mark_already_read_are_dropped():
    pos = CasesPosition().after("c1", [case("a", 1, T0)])
    assert not pos.is_new(case("a", 1, T0))
    assert pos.is_new(case("b", 1, T0))  # same instant, not read yet
    assert not pos.is_new(case("z", 3, T0 - timedelta(seconds=1)))  # before the mark: read
    assert pos.is_new(case("a", 2, T0 + timedelta(microseconds=1)))


def test_position_text_round_trips_and_is_versioned():
    pos = CasesPosition().after("c1", [case("b", 1, T0), case("a", 1, T0)])
    assert CasesPosition.decode(pos.encode()) == pos
    assert CasesPosition.decode(None) == CasesPosition()
    with pytest.raises(ValueError):
        CasesPosition.decode('{"v": 99}')


def test_since_needs_an_aware_time():
    assert CasesPosition.since(T0).mark == T0
    with pytest.raises(ValueError):
        CasesPosition.since(datetime(2026, 11, 29))


@pytest.mark.parametrize(
    ("key", "kept"),
    [
        pytest.param("ref-1/create", True, id="short-ascii"),
        pytest.param("k" * 255, True, id="255"),
        pytest.param("k" * 256, False, id="256"),
        pytest.param("ref-转办-1", False, id="non-ascii"),
    ],
)
def test_idempotency_key_is_kept_or_hashed_to_fit(key: str, kept: bool):
    header = idempotency_key(key)
    assert (header == key) is kept
    assert len(header) <= 255 and header.isascii() and header == idempotency_key(key)


@pytest.mark.parametrize(("etag", "version"), [('"7"', 7), ('W/"7"', 7), ("7", None), (None, None)])
def test_etag_carries_the_version(etag: str | None, version: int | None):
    assert parse_etag(etag) == version
