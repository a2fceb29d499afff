"""What the 12385 simulator accepts, checked as strictly as section 8 of
`specs/open311-georeport-v2.md` says, and its error arrays.

The simulator parses the raw form and query itself (no pydantic coercion, and not the
bridge's own form models), so that a mistake in those cannot make the contract tests
pass for nothing. Every refusal is `Refused(status, description)`; the description names
fields and identifiers, never the caller's data.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from aiohttp import web
from multidict import MultiDictProxy

from schemas.open311 import DESCRIPTION_MAX, PHONE_MAX, POST_STATUSES, UPDATE_ID_PATTERN

_TIME_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$")
_ATTRIBUTE_RE: Final = re.compile(r"^attribute\[([^\[\]]+)\](\[\])?$")
_UPDATE_ID_RE: Final = re.compile(UPDATE_ID_PATTERN)
CREATE_FIELDS: Final = frozenset(
    "api_key jurisdiction_id service_code lat long address_string address_id email "
    "device_id account_id first_name last_name phone description media_url".split()
)
UPDATE_COMPARED: Final = ("service_request_id", "status", "description", "media_url")
"""The fields besides `updated_datetime` (compared as an instant) that make a replay."""
FUTURE_SLACK: Final = timedelta(minutes=5)


class Refused(Exception):
    """An error answer, raised anywhere in the simulator and rendered by the API."""

    def __init__(self, status: int, description: str, headers: dict[str, str] | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.headers = headers or {}

    def response(self) -> web.Response:
        return error_response(self.status, self.description, self.headers)


def error_response(
    status: int, description: str, headers: dict[str, str] | None = None
) -> web.Response:
    """A bare error array, `code` equal to the HTTP status."""
    return json_response([{"code": status, "description": description}], status, headers)


def json_response(
    data: object, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(
        data,
        status=status,
        headers=headers,
        dumps=lambda v: json.dumps(v, ensure_ascii=False),
        content_type="application/json",
    )


def parse_time(name: str, text: str) -> datetime:
    """`YYYY-MM-DDThh:mm:ss` with `Z` or an offset; 400 otherwise (a `+` sent unencoded
    arrives as a space and fails here)."""
    if not _TIME_RE.match(text):
        raise Refused(400, f"{name} must be YYYY-MM-DDThh:mm:ss with Z or an offset")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Refused(400, f"{name} is not a valid date and time") from None


def optional(values: MultiDictProxy[str], name: str) -> str | None:
    """A single-valued optional field: an empty value is an absent one."""
    got = values.getall(name, [])
    if len(got) > 1:
        raise Refused(400, f"{name} given more than once")
    return got[0] if got and got[0] != "" else None


@dataclass
class CreateIn:
    """A `POST requests` form after the checks that need no service definition."""

    service_code: str
    fields: dict[str, str]
    attributes: dict[str, str | list[str]] = field(default_factory=dict)
    lat: float | None = None
    long: float | None = None


def external_ref_of(form: MultiDictProxy[str]) -> str | None:
    return optional(form, "attribute[external_ref]")


def parse_create(form: MultiDictProxy[str]) -> CreateIn:
    """The checks of a `POST requests` form before the service is looked up (400)."""
    attributes: dict[str, str | list[str]] = {}
    for name in form:
        match = _ATTRIBUTE_RE.match(name)
        if match is None:
            if name not in CREATE_FIELDS:
                raise Refused(400, f"unknown field {name}")
            continue
        code, multi = match.group(1), bool(match.group(2))
        if multi:
            attributes[code] = [v for v in form.getall(name) if v != ""]
        else:
            value = optional(form, name)
            if value is not None:
                attributes[code] = value
    code = optional(form, "service_code")
    if code is None:
        raise Refused(400, "service_code is required")
    fields = {n: v for n in CREATE_FIELDS - {"api_key"} if (v := optional(form, n)) is not None}
    lat, long = _coordinate(fields, "lat", 90), _coordinate(fields, "long", 180)
    if "address_string" not in fields and (lat is None or long is None):
        raise Refused(400, "a location is required: address_string, or lat and long")
    description = fields.get("description", "")
    if len(description) > DESCRIPTION_MAX:
        raise Refused(400, f"description is longer than {DESCRIPTION_MAX} characters")
    if len(fields.get("phone", "")) > PHONE_MAX:
        raise Refused(400, f"phone is longer than {PHONE_MAX} characters")
    if "email" in fields and "@" not in fields["email"]:
        raise Refused(400, "email must contain @")
    confidential = attributes.get("confidential")
    if confidential is not None and confidential not in ("true", "false"):
        raise Refused(400, "attribute[confidential] must be true or false")
    return CreateIn(code, fields, attributes, lat, long)


def _coordinate(fields: dict[str, str], name: str, bound: float) -> float | None:
    text = fields.get(name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise Refused(400, f"{name} must be a number") from None
    if not math.isfinite(value) or not -bound <= value <= bound:
        raise Refused(400, f"{name} is outside -{bound}..{bound}")
    return value


def check_attributes(create: CreateIn, definition: dict) -> None:
    """The attributes against the service's definition: unknown codes and missing
    required ones → 400. `confidential` is taken on every service unlisted."""
    known = {a["code"]: a for a in definition["attributes"]} | {"confidential": None}
    unknown = sorted(set(create.attributes) - set(known))
    if unknown:
        raise Refused(400, f"unknown attribute {', '.join(unknown)}")
    for attribute in definition["attributes"]:
        if attribute["required"] and not create.attributes.get(attribute["code"]):
            raise Refused(400, f"attribute[{attribute['code']}] is required")


@dataclass(frozen=True)
class UpdateIn:
    service_request_id: str
    update_id: str
    status: str
    updated_at: datetime
    description: str
    media_url: str


def update_values(form: MultiDictProxy[str]) -> tuple[object, ...]:
    """What makes two posts of one `update_id` "the same": the compared fields as given
    and the time as an instant (a time that does not parse compares as its text)."""
    text = optional(form, "updated_datetime") or ""
    try:
        when: object = parse_time("updated_datetime", text).astimezone(UTC)
    except Refused:
        when = text
    return (*(optional(form, n) or "" for n in UPDATE_COMPARED), when)


def parse_update(form: MultiDictProxy[str], now: datetime) -> UpdateIn:
    """The checks of a `POST servicerequestupdates` body (400); unknown fields ignored."""
    values: dict[str, str] = {}
    for name in ("service_request_id", "update_id", "status", "updated_datetime"):
        value = optional(form, name)
        if value is None:
            raise Refused(400, f"{name} is required")
        values[name] = value
    if not _UPDATE_ID_RE.match(values["update_id"]):
        raise Refused(400, "update_id must be 1..64 characters of [A-Za-z0-9._:-]")
    if values["status"] not in POST_STATUSES:
        raise Refused(400, "status must be one of " + ", ".join(POST_STATUSES))
    if "description" not in form:
        raise Refused(400, "description is required")
    description = optional(form, "description") or ""
    if values["status"] == "FIXED" and not description:
        raise Refused(400, "description is required with FIXED (the answer)")
    if len(description) > DESCRIPTION_MAX:
        raise Refused(400, f"description is longer than {DESCRIPTION_MAX} characters")
    when = parse_time("updated_datetime", values["updated_datetime"])
    if when > now + FUTURE_SLACK:
        raise Refused(400, "updated_datetime is more than 5 minutes in the future")
    return UpdateIn(
        values["service_request_id"],
        values["update_id"],
        values["status"],
        when,
        description,
        optional(form, "media_url") or "",
    )


def only_params(query: MultiDictProxy[str], allowed: frozenset[str]) -> None:
    unknown = sorted(set(query) - allowed - {"api_key", "jurisdiction_id"})
    if unknown:
        raise Refused(400, f"unknown parameter {', '.join(unknown)}")


def comma_list(query: MultiDictProxy[str], name: str) -> list[str] | None:
    value = optional(query, name)
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]
