"""What the 12351 simulator accepts, checked as strictly as the spec says, and its
problem documents (RFC 9457) with JSON pointers.

The simulator validates with its own strict models (no coercion: `"true"` is not a
boolean, a number is not a time) rather than the bridge's request models, so that a
mistake in those cannot make the contract tests pass for nothing.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from schemas.hotline12351 import (
    DESCRIPTION_MAX,
    DISTRICT_CODES,
    PARTNER_TEXT_MAX,
    SUBJECT_MAX,
    Channel,
    PartnerStatus,
    Priority,
    Satisfaction,
    ServiceType,
)

_RFC3339: Final = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
_TITLES: Final = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    409: "Conflict",
    410: "Gone",
    412: "Precondition Failed",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(Exception):
    """An error answer: raised anywhere in the simulator, rendered by the API layer."""

    def __init__(
        self, status: int, detail: str, errors: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []

    def response(self, headers: dict[str, str] | None = None) -> web.Response:
        return problem_response(self.status, self.detail, self.errors, headers)


def problem_response(
    status: int,
    detail: str,
    errors: list[tuple[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    doc: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors:
        doc["errors"] = [{"pointer": p, "detail": d} for p, d in errors]
    return web.json_response(
        doc, status=status, headers=headers, content_type="application/problem+json"
    )


def parse_rfc3339(value: str) -> datetime:
    """An RFC 3339 time with an offset; `ValueError` for anything else."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 time with an offset")
    text = value.upper()
    if "." in text:  # Python reads at most microseconds
        head, _, tail = text.partition(".")
        digits = re.match(r"\d+", tail).group(0)  # type: ignore[union-attr]
        text = f"{head}.{digits[:6]}{tail[len(digits) :]}"
    return datetime.fromisoformat(text)


def _rfc3339(value: str) -> str:
    parse_rfc3339(value)
    return value


def check_district(value: str | None) -> str | None:
    if value is not None and value not in DISTRICT_CODES:
        raise ValueError("must be one of Beijing's 16 district codes, or absent")
    return value


Time = Annotated[str, AfterValidator(_rfc3339)]
NonEmpty = Annotated[str, Field(min_length=1)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class OriginIn(StrictModel):
    system: NonEmpty
    external_no: NonEmpty
    deadline: Time | None = None


class WorkerIn(StrictModel):
    name: str | None = None
    phone: str | None = None
    confidential: bool = False


class CreateIn(StrictModel):
    channel: Channel = "partner"
    origin: OriginIn
    worker: WorkerIn | None = None
    district_code: Annotated[str | None, AfterValidator(check_district)] = None
    service_type: ServiceType
    priority: Priority
    subject: Annotated[str, Field(min_length=1, max_length=SUBJECT_MAX)]
    description: Annotated[str, Field(max_length=DESCRIPTION_MAX)] | None = None
    location: str | None = None


class ExternalRefIn(StrictModel):
    system: NonEmpty
    external_no: NonEmpty


class PartnerUpdateIn(StrictModel):
    status: PartnerStatus
    text: Annotated[str, Field(max_length=PARTNER_TEXT_MAX)] | None = None
    at: Time
    satisfaction: Satisfaction | None = None


class CallbackResultIn(StrictModel):
    satisfaction: Satisfaction
    at: Time
    note: str | None = None


class WithdrawnIn(StrictModel):
    reason: NonEmpty


class ReopenedIn(StrictModel):
    reason: NonEmpty
    at: Time


EVENT_MODELS: Final[dict[str, type[StrictModel]]] = {
    "external_ref": ExternalRefIn,
    "partner_update": PartnerUpdateIn,
    "callback_result": CallbackResultIn,
    "withdrawn": WithdrawnIn,
    "reopened": ReopenedIn,
}


class EventTypeIn(BaseModel):
    """The `type` of an event request; its other fields are checked by the type's model."""

    model_config = ConfigDict(extra="ignore", strict=True)
    type: Literal["external_ref", "partner_update", "callback_result", "withdrawn", "reopened"]


def pointer(loc: tuple[str | int, ...], prefix: str = "") -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in loc]
    return prefix + "".join(f"/{p}" for p in parts)


def validate(model: type[BaseModel], data: Any, prefix: str = "") -> Any:
    """`model` from parsed JSON, or a 422 `Problem` naming every refused field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [(pointer(e["loc"], prefix), e["msg"]) for e in exc.errors()]
        raise Problem(422, "the request has invalid or unknown fields", errors) from None


def validate_event(data: Any) -> tuple[str, dict[str, Any]]:
    """`(type, body)` of a `POST /cases/{id}/events` request: ONE flat object, `type`
    beside that type's fields. Any other key, a nested `body` included, is a 422 naming
    it (`/body`); the body returned (for the timeline) is the fields without `type`."""
    event = validate(EventTypeIn, data)
    fields = {k: v for k, v in data.items() if k != "type"}
    try:
        body = EVENT_MODELS[event.type].model_validate(fields)
    except ValidationError as exc:
        errors = [(pointer(e["loc"]), _event_error(e)) for e in exc.errors()]
        raise Problem(
            422, f"the {event.type} event has invalid or unknown fields", errors
        ) from None
    return event.type, body.model_dump(exclude_unset=True)


def _event_error(error: Any) -> str:
    if error["loc"] == ("body",) and error["type"] == "extra_forbidden":
        return "unknown field: an event request is flat, its fields sit beside type"
    return error["msg"]


def if_match_versions(header: str) -> set[int] | None:
    """The versions an `If-Match` accepts (`"7"`, `W/"7"`, a list); None for `*`.
    A malformed header is a 400."""
    if header.strip() == "*":
        return None
    versions = set()
    for tag in header.split(","):
        match = re.fullmatch(r'\s*(?:W/)?"([^"]*)"\s*', tag)
        if not match:
            raise Problem(400, f"malformed If-Match: {header!r}")
        if match.group(1).isdigit():
            versions.add(int(match.group(1)))
    return versions
