"""The 12385 simulator's own side: what its operators do (take a request by phone, refer
it to a partner, write an update), checked strictly, for the `/_sim` routes and tests."""

from __future__ import annotations

from typing import Any, Final

from multidict import MultiDict, MultiDictProxy

from adapters.open311.sim.data import random_request
from adapters.open311.sim.requests import Refused, check_attributes, parse_create
from adapters.open311.sim.state import STAFF_ON_PARTNER_CREATED, STAFF_ON_REFERRED, RequestBook

STAFF_STATUSES: Final = STAFF_ON_PARTNER_CREATED | STAFF_ON_REFERRED
_REQUEST_FIELDS: Final = frozenset(
    "service_code description address_string lat long first_name last_name phone email "
    "attributes".split()
)


def staff_request(book: RequestBook, body: Any) -> dict[str, Any]:
    """`POST /_sim/requests`: a request an operator takes by phone (12385's own, not a
    partner's): the fields of `POST requests` as JSON (`attributes` an object), or `{}`
    for a realistic random one. → the request with its private fields."""
    if not isinstance(body, dict):
        raise Refused(400, "the body must be an object")
    fields = body or random_request(book.rng)
    unknown = sorted(set(fields) - _REQUEST_FIELDS)
    if unknown:
        raise Refused(400, f"unknown field {', '.join(unknown)}")
    pairs: list[tuple[str, str]] = []
    for name, value in fields.items():
        if name == "attributes":
            pairs += [(f"attribute[{code}]", str(v)) for code, v in dict(value).items()]
        elif value is not None:
            pairs.append((name, str(value)))
    create = parse_create(MultiDictProxy(MultiDict(pairs)))
    check_attributes(create, book.definition(create.service_code))
    answer = book.create(create, None)
    return (
        book.get(answer[0]["service_request_id"], None)
        | book.meta[answer[0]["service_request_id"]].private
    )


def refer(book: RequestBook, request_id: str, body: Any) -> dict[str, Any]:
    """`POST /_sim/requests/{id}/refer` `{"to": partner}`."""
    if not isinstance(body, dict) or not isinstance(body.get("to"), str) or not body["to"]:
        raise Refused(400, 'the body must be {"to": "<partner name>"}')
    return book.refer(request_id, body["to"])


def staff_update(book: RequestBook, request_id: str, body: Any) -> dict[str, Any]:
    """`POST /_sim/requests/{id}/updates` `{"status": s, "description"?: text}`."""
    if not isinstance(body, dict) or body.get("status") not in STAFF_STATUSES:
        raise Refused(400, "status must be one of " + ", ".join(sorted(STAFF_STATUSES)))
    description = body.get("description", "")
    if not isinstance(description, str):
        raise Refused(400, "description must be text")
    return book.staff_update(request_id, body["status"], description)
