"""A partner kind's own tables: defaults, `[mapping.<kind>]` overrides, versions, storage."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict

from bridge.errors import ConfigError
from bridge.mapping import MappingTables


class BookTables(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    codes: dict[str, str] = {"A": "legal_aid", "B": "other"}
    default_code: str = "B"


KINDS = {"bookkind": BookTables}


def test_a_kind_without_overrides_has_its_defaults() -> None:
    tables = MappingTables.from_config(None, KINDS)
    assert tables.of("bookkind", BookTables) == BookTables()


def test_overrides_merge_row_by_row_and_change_the_version() -> None:
    plain = MappingTables.from_config(None, KINDS)
    edited = MappingTables.from_config({"bookkind": {"codes": {"C": "skills"}}}, KINDS)
    assert edited.of("bookkind", BookTables).codes == {
        "A": "legal_aid",
        "B": "other",
        "C": "skills",
    }
    assert edited.version != plain.version
    assert MappingTables.from_config({"bookkind": {}}, KINDS).version == plain.version


def test_a_kinds_tables_come_back_from_the_store_with_the_same_version() -> None:
    edited = MappingTables.from_config({"bookkind": {"default_code": "A"}}, KINDS)
    back = MappingTables.from_stored(edited.as_json())
    assert back.version == edited.version
    assert back.of("bookkind", BookTables).default_code == "A"


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"bookkind": {"colours": {}}}, id="unknown-table"),
        pytest.param({"bookkind": {"default_code": ["A"]}}, id="wrong-type"),
        pytest.param({"bookkind": "A"}, id="not-a-table"),
    ],
)
def test_a_bad_override_names_the_kind(overrides: dict) -> None:
    with pytest.raises(ConfigError, match=r"mapping\.bookkind"):
        MappingTables.from_config(overrides, KINDS)


def test_tables_stored_before_a_kind_existed_read_as_its_defaults() -> None:
    older = MappingTables.from_config(None, {})
    assert older.of("bookkind", BookTables) == BookTables()
