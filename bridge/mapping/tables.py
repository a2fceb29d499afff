"""The mapping tables: categories, service types, priorities, statuses, satisfaction, districts.

The defaults below are data (`Final`), visible and tested row by row; an ops team may
override any table from config (`[mapping]` in TOML) with `MappingTables.from_config`,
which merges rows onto the defaults. Default rows are explicit: a 12345 category with
no row maps to `default_service_type` (`other`), a service type with no row to
`default_category` (`9999`).

`MappingTables.version` names the effective tables by a hash of their canonical JSON: it
is recorded with every intake and action (the timeline shows which tables mapped what)
and, with the tables themselves, in the store, so that a dead letter can be replayed with
the tables of its time (`MappingTables.from_stored`).

Status tables are keyed by the native status; a row keyed `"<status>/reopened"` applies
when the record has been reopened at least once (`reopenCount` / `reopen_count` > 0),
e.g. 12345 `20` first time → partner status `accepted`, `20/reopened` → `in_progress`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from functools import cached_property
from typing import Any, Final, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bridge.errors import ConfigError, MappingError
from schemas.canonical import Lifecycle, Priority, Satisfaction
from schemas.hotline12345 import CREATE_CATEGORY_RE, DISTRICTS, ORDER_STATUSES
from schemas.hotline12345 import Urgency as Urgency12345
from schemas.hotline12351 import CaseStatus, PartnerStatus, ServiceType
from schemas.hotline12351 import Priority as Priority12351

REOPENED: Final = "/reopened"
"""Suffix of a status-table key that applies once a record has been reopened."""

CASE_STATUSES: Final[tuple[str, ...]] = CaseStatus.__args__  # type: ignore[attr-defined]

CATEGORY_TO_SERVICE_TYPE: Final[Mapping[str, str]] = {
    "0201": "legal_aid",
    "0202": "legal_aid",
    "0203": "legal_aid",
    "0204": "legal_aid",
    "0205": "legal_aid",
    "0206": "legal_aid",
    "0299": "legal_aid",
    "0210": "union_membership",
    "0211": "hardship_relief",
    "0212": "mutual_aid",
    "0213": "service_activity",
}
DEFAULT_SERVICE_TYPE: Final = "other"

SERVICE_TYPE_TO_CATEGORY: Final[Mapping[str, str]] = {
    "legal_aid": "0299",
    "union_membership": "0210",
    "hardship_relief": "0211",
    "mutual_aid": "0212",
    "service_activity": "0213",
    "skills": "0213",
    "health": "0799",
    "psych_care": "0799",
    "maternal_care": "0799",
}
DEFAULT_CATEGORY: Final = "9999"

URGENCY_TO_PRIORITY: Final[Mapping[str, str]] = {"1": "normal", "2": "high", "3": "alert"}
URGENCY_TO_CANONICAL: Final[Mapping[str, Priority]] = {
    "1": Priority.NORMAL,
    "2": Priority.URGENT,
    "3": Priority.EARLY_WARNING,
}
PRIORITY_TO_CANONICAL: Final[Mapping[str, Priority]] = {
    "normal": Priority.NORMAL,
    "high": Priority.URGENT,
    "alert": Priority.EARLY_WARNING,
}

ORDER_STATUS_TO_LIFECYCLE: Final[Mapping[str, Lifecycle]] = {
    "10": Lifecycle.DELIVERED,
    "20": Lifecycle.SIGNED,
    "20" + REOPENED: Lifecycle.REOPENED,
    "25": Lifecycle.EXTENDED,
    "30": Lifecycle.REPLIED,
    "40": Lifecycle.CALLBACK_RECORDED,
    "50": Lifecycle.CLOSED,
    "60": Lifecycle.RETURNED,
    "70": Lifecycle.WITHDRAWN,
}

CASE_STATUS_TO_LIFECYCLE: Final[Mapping[str, Lifecycle]] = {
    "received": Lifecycle.SIGNED,  # the union has it (for a case the bridge created)
    "dispatched": Lifecycle.SIGNED,
    "verifying": Lifecycle.IN_PROGRESS,
    "handling": Lifecycle.IN_PROGRESS,
    "handling" + REOPENED: Lifecycle.REOPENED,
    "responded": Lifecycle.REPLIED,
    "callback_done": Lifecycle.CALLBACK_RECORDED,
    "closed": Lifecycle.CLOSED,
    "transferred": Lifecycle.DELIVERED,  # handed to the other hotline
    "rejected": Lifecycle.RETURNED,
}

SATISFACTION_CODES: Final[Mapping[str, Satisfaction]] = {
    "1": Satisfaction.SATISFIED,
    "2": Satisfaction.BASICALLY_SATISFIED,
    "3": Satisfaction.DISSATISFIED,
    "4": Satisfaction.UNREACHABLE,
}

ORDER_STATUS_TO_PARTNER_STATUS: Final[Mapping[str, str]] = {
    "20": "accepted",
    "20" + REOPENED: "in_progress",
    "25": "extended",
    "30": "replied",
    "40": "replied",  # plus `satisfaction` from the visit
    "50": "closed",
    "60": "returned",
    "70": "withdrawn",
}

TRANSFER_TARGETS: Final[tuple[str, ...] | None] = None
"""Hotlines a 12351 case may be transferred to through the bridge; None: every partner
of the deployment (`[bridge] partners`). A list narrows it (an empty one: none)."""


def _known(table: Mapping[str, Any], code: str, field: str) -> Any:
    """The row of `code`; MappingError (parked) for a code the table does not have."""
    try:
        return table[code]
    except KeyError:
        raise MappingError(field, code, None, "unknown code") from None


def _lookup(table: Mapping[str, Any], status: str, reopen_count: int) -> Any:
    if reopen_count > 0 and status + REOPENED in table:
        return table[status + REOPENED]
    return table.get(status)


class MappingTables(BaseModel):
    """Every table the mapping uses; complete and consistent by construction."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    category_to_service_type: dict[str, ServiceType]
    default_service_type: ServiceType
    service_type_to_category: dict[ServiceType, str]
    default_category: str
    urgency_to_priority: dict[Urgency12345, Priority12351]
    urgency_to_canonical: dict[Urgency12345, Priority]
    priority_to_canonical: dict[Priority12351, Priority]
    order_status_to_lifecycle: dict[str, Lifecycle]
    case_status_to_lifecycle: dict[str, Lifecycle]
    satisfaction_codes: dict[str, Satisfaction]
    order_status_to_partner_status: dict[str, PartnerStatus]
    districts: dict[str, str]
    transfer_targets: tuple[str, ...] | None = None
    kinds: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Each partner kind's own tables (`PartnerKind.tables`) as JSON, by kind: the defaults
    of the kind's model with `[mapping.<kind>]` merged onto them, so that they are
    versioned, stored and replayed with the rest (`of()` reads them back)."""

    @classmethod
    def default(cls) -> Self:
        return cls(
            category_to_service_type=dict(CATEGORY_TO_SERVICE_TYPE),
            default_service_type=DEFAULT_SERVICE_TYPE,
            service_type_to_category=dict(SERVICE_TYPE_TO_CATEGORY),
            default_category=DEFAULT_CATEGORY,
            urgency_to_priority=dict(URGENCY_TO_PRIORITY),
            urgency_to_canonical=dict(URGENCY_TO_CANONICAL),
            priority_to_canonical=dict(PRIORITY_TO_CANONICAL),
            order_status_to_lifecycle=dict(ORDER_STATUS_TO_LIFECYCLE),
            case_status_to_lifecycle=dict(CASE_STATUS_TO_LIFECYCLE),
            satisfaction_codes=dict(SATISFACTION_CODES),
            order_status_to_partner_status=dict(ORDER_STATUS_TO_PARTNER_STATUS),
            districts=dict(DISTRICTS),
            transfer_targets=TRANSFER_TARGETS,
            kinds=_kind_defaults(_registered_kind_tables()),
        )

    @classmethod
    def from_config(
        cls,
        overrides: Mapping[str, Any] | None,
        kind_tables: Mapping[str, type[BaseModel]] | None = None,
    ) -> Self:
        """The defaults with `overrides` applied: a table given as a dict is merged row by
        row onto the default table; any other value replaces the default.

        Raises ConfigError naming the offending key when the result is incomplete or
        inconsistent.
        """
        kind_tables = _registered_kind_tables() if kind_tables is None else kind_tables
        data = cls.default().model_dump()
        data["kinds"] = _kind_defaults(kind_tables)
        for key, value in (overrides or {}).items():
            if key in kind_tables:
                data["kinds"][key] = _kind_json(key, kind_tables[key], value)
                continue
            if key not in data:
                raise ConfigError(f"mapping: unknown table {key!r}")
            if isinstance(data[key], dict) and isinstance(value, Mapping):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "tables"
            raise ConfigError(f"mapping.{where}: {first['msg']}") from exc

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> Self:
        """Tables back from `as_json()` (a version kept in the store). Raises ConfigError
        when they no longer validate (the code's tables changed shape since)."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "tables"
            raise ConfigError(f"stored mapping.{where}: {first['msg']}") from exc

    def of(self, kind: str, model: type[T]) -> T:
        """The tables of partner kind `kind` as its `model` (its defaults when these tables
        hold none for it: tables stored before the kind was registered)."""
        found = self.parsed_kinds.get(kind)
        if not isinstance(found, model):
            found = model.model_validate(self.kinds[kind]) if kind in self.kinds else model()
            self.parsed_kinds[kind] = found
        return found

    @cached_property
    def parsed_kinds(self) -> dict[str, Any]:
        """Kind tables read back by `of()`, once per tables object."""
        return {}

    def as_json(self) -> dict[str, Any]:
        """Every table as plain JSON (enum values, lists): what the store keeps."""
        return self.model_dump(mode="json")

    @cached_property
    def version(self) -> str:
        """A stable name of these tables: the first 16 hex digits of the SHA-256 of their
        canonical JSON (keys sorted). Equal tables have equal versions whatever the
        order their rows were given in; any changed row changes it. Computed once per
        tables object (they are frozen): it is read for every record and action."""
        canonical = json.dumps(
            self.as_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @model_validator(mode="after")
    def _complete_and_consistent(self) -> Self:
        for code in self.category_to_service_type:
            if not re.fullmatch(r"\d{4}", code):
                raise ValueError(f"category_to_service_type: {code!r} is not a 4-digit code")
        for name, code in [
            *self.service_type_to_category.items(),
            ("default_category", self.default_category),
        ]:
            if not CREATE_CATEGORY_RE.match(code):
                raise ValueError(f"{name} → {code!r} is not a category 12345 accepts on create")
        _require_keys("urgency_to_priority", self.urgency_to_priority, ("1", "2", "3"))
        _require_keys("urgency_to_canonical", self.urgency_to_canonical, ("1", "2", "3"))
        _require_bijective("urgency_to_canonical", self.urgency_to_canonical)
        _require_keys(
            "priority_to_canonical", self.priority_to_canonical, ("normal", "high", "alert")
        )
        _require_bijective("priority_to_canonical", self.priority_to_canonical)
        for urgency, priority in self.urgency_to_priority.items():
            if self.priority_to_canonical[priority] != self.urgency_to_canonical[urgency]:
                raise ValueError(f"urgency {urgency} → {priority} disagrees with canonical")
        _require_keys("order_status_to_lifecycle", self.order_status_to_lifecycle, ORDER_STATUSES)
        _require_keys("case_status_to_lifecycle", self.case_status_to_lifecycle, CASE_STATUSES)
        _require_keys("satisfaction_codes", self.satisfaction_codes, ("1", "2", "3", "4"))
        _require_bijective("satisfaction_codes", self.satisfaction_codes)
        for code in self.districts:
            if not re.fullmatch(r"\d{6}", code):
                raise ValueError(f"districts: {code!r} is not a 6-digit code")
        return self

    # --- lookups (total where the validator guarantees it) ---

    def service_type_for(self, category: str) -> str:
        """12345 category → 12351 service_type; any other 4-digit code → the default row.
        Raises MappingError for a code that is not 4 digits (malformed: parked)."""
        if not (len(category) == 4 and category.isascii() and category.isdigit()):
            raise MappingError("category", category, None, "not a 4-digit code")
        return self.category_to_service_type.get(category, self.default_service_type)

    def category_for(self, service_type: str, transfer_category: str | None = None) -> str:
        """12351 → 12345 category: the agent's `transfer.category` when 12345's create rule
        accepts it, else the service-type row, else the default row."""
        if transfer_category and CREATE_CATEGORY_RE.match(transfer_category):
            return transfer_category
        return self.service_type_to_category.get(service_type, self.default_category)

    def priority_for_urgency(self, urgency: str) -> Priority:
        return _known(self.urgency_to_canonical, urgency, "urgency")

    def priority_for_12351(self, priority: str) -> Priority:
        return _known(self.priority_to_canonical, priority, "priority")

    def urgency_for(self, priority: Priority) -> str:
        return _inverse(self.urgency_to_canonical)[priority]

    def priority12351_for(self, priority: Priority) -> str:
        return _inverse(self.priority_to_canonical)[priority]

    def order_lifecycle(self, status: str, reopen_count: int = 0) -> Lifecycle:
        _known(self.order_status_to_lifecycle, status, "orderStatus")
        return _lookup(self.order_status_to_lifecycle, status, reopen_count)

    def case_lifecycle(self, status: str, reopen_count: int = 0) -> Lifecycle:
        _known(self.case_status_to_lifecycle, status, "status")
        return _lookup(self.case_status_to_lifecycle, status, reopen_count)

    def partner_status_for(self, order_status: str, reopen_count: int = 0) -> str | None:
        """12345 orderStatus → the 12351 partner status; None when there is none (10)."""
        return _lookup(self.order_status_to_partner_status, order_status, reopen_count)

    def satisfaction_for(self, code: str, *, case: str | None = None) -> Satisfaction:
        try:
            return self.satisfaction_codes[code]
        except KeyError:
            raise MappingError("visit.satisfaction", code, case, "unknown code") from None

    def satisfaction_code_for(self, satisfaction: Satisfaction) -> str:
        return _inverse(self.satisfaction_codes)[satisfaction]

    def is_district(self, code: str | None) -> bool:
        """One of the districts both hotlines route to (Beijing's 16)."""
        return code in self.districts


T = TypeVar("T", bound=BaseModel)


def _registered_kind_tables() -> dict[str, type[BaseModel]]:
    """Partner kinds that bring tables of their own, from the registry."""
    from bridge.partners import kinds

    return {name: kind.tables for name, kind in kinds().items() if kind.tables is not None}


def _kind_defaults(kind_tables: Mapping[str, type[BaseModel]]) -> dict[str, dict[str, Any]]:
    return {name: model().model_dump(mode="json") for name, model in kind_tables.items()}


def _kind_json(kind: str, model: type[BaseModel], overrides: Any) -> dict[str, Any]:
    """A kind's tables with `overrides` merged row by row onto its defaults, as JSON."""
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"mapping.{kind}: a table of the kind's tables, not {overrides!r}")
    data = model().model_dump()
    for key, value in overrides.items():
        if key not in data:
            raise ConfigError(f"mapping.{kind}: unknown table {key!r}")
        both = isinstance(data[key], dict) and isinstance(value, Mapping)
        data[key] = {**data[key], **value} if both else value
    try:
        return model.model_validate(data).model_dump(mode="json")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "tables"
        raise ConfigError(f"mapping.{kind}.{where}: {first['msg']}") from exc


def _require_keys(name: str, table: Mapping[str, Any], keys: Any) -> None:
    missing = [key for key in keys if key not in table]
    if missing:
        raise ValueError(f"{name}: no row for {', '.join(missing)}")


def _require_bijective(name: str, table: Mapping[str, Any]) -> None:
    if len(set(table.values())) != len(table):
        raise ValueError(f"{name}: two rows map to the same value")


def _inverse(table: Mapping[str, Any]) -> dict[Any, str]:
    return {value: key for key, value in table.items()}
