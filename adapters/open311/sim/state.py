"""The 12385 simulator's world: requests, their updates, tokens, replays, and every rule
of section 8 about who sees what and who may write which status.

A request's `agency_responsible` is `12385` until staff refer it to a partner; each
write of an update stamps it in write order (`seq`), and the request's status and
`status_notes` follow the latest update written. Private fields (names, phone, email,
attributes) stay in the book and reach only the partner a request is referred to or the
one that created it. Rule breaches raise `Refused`.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from adapters.open311.sim.data import DEFINITIONS, SERVICES
from adapters.open311.sim.requests import CreateIn, Refused, UpdateIn
from adapters.simkit import SimClock
from schemas.open311 import HOME_AGENCY, LIST_MAX, WINDOW_MAX, open311_time

TOKEN_DELAY: Final = timedelta(seconds=5)
REQUEST_SPAN: Final = timedelta(days=90)
PRIVATE: Final = ("first_name", "last_name", "phone", "email", "attributes")
CLOSING: Final = frozenset(
    {"fixed", "closed", "duplicate", "not_councils_responsibility", "no_further_action"}
    | {"cancelled"}
)
OPENING: Final = frozenset({"reopen", "in_progress"})
STAFF_ON_PARTNER_CREATED: Final = frozenset(
    {"in_progress", "fixed", "not_councils_responsibility", "duplicate", "closed"}
)
STAFF_ON_REFERRED: Final = frozenset({"cancelled", "reopen"})


@dataclass
class Meta:
    """What the book knows of a request beyond its JSON."""

    created_by: str | None  # the partner that created it; None: 12385's own
    at: datetime  # requested instant
    ready_at: datetime  # a batch request exists 5 s after its POST
    private: dict[str, Any] = field(default_factory=dict)
    referral_seq: int = 0  # the seq of the update that referred it to its current agency


@dataclass
class Update:
    seq: int
    json: dict[str, Any]
    at: datetime
    posted_by: str | None  # the partner that posted it; None: staff


class RequestBook:
    """All requests of the simulated 12385, in memory."""

    def __init__(self, clock: SimClock, rng: random.Random) -> None:
        self.clock = clock
        self.rng = rng
        self.services = {s["service_code"]: s for s in SERVICES}
        self.requests: dict[str, dict[str, Any]] = {}
        self.meta: dict[str, Meta] = {}
        self.updates: list[Update] = []
        self.tokens: dict[str, str] = {}  # token → request id
        self.created: dict[tuple[str, str], list[dict[str, str]]] = {}  # (client, ref) → answer
        self.posted: dict[tuple[str, str], tuple[tuple[object, ...], str]] = {}
        self._seq = 0

    # --- reading ---------------------------------------------------------------------

    def definition(self, code: str) -> dict[str, Any]:
        if code not in DEFINITIONS:
            raise Refused(404, f"no service {code}")
        return DEFINITIONS[code]

    def exists(self, request_id: str) -> bool:
        meta = self.meta.get(request_id)
        return meta is not None and self.clock.now() >= meta.ready_at

    def get(self, request_id: str, client: str | None) -> dict[str, Any]:
        """One request as `client` may see it; 404 unknown (or not made yet)."""
        if not self.exists(request_id):
            raise Refused(404, f"no request {request_id}")
        request = dict(self.requests[request_id])
        if client is not None and self.sees_private(request_id, client):
            request |= self.meta[request_id].private
        return request

    def sees_private(self, request_id: str, client: str) -> bool:
        meta = self.meta[request_id]
        return (
            meta.created_by == client or self.requests[request_id]["agency_responsible"] == client
        )

    def token(self, token: str) -> dict[str, str]:
        request_id = self.tokens.get(token)
        if request_id is None:
            raise Refused(404, f"no token {token}")
        if not self.exists(request_id):
            return {"token": token}
        return {"service_request_id": request_id, "token": token}

    def query(
        self,
        ids: list[str] | None,
        codes: list[str] | None,
        statuses: list[str] | None,
        start: datetime,
        end: datetime,
    ) -> list[dict[str, Any]]:
        """`GET requests`: public fields only, newest first (ties: id descending); ids
        bypass every other filter and the limit."""
        if ids is not None:
            return [dict(self.requests[i]) for i in dict.fromkeys(ids) if self.exists(i)]
        found = [
            r
            for i, r in self.requests.items()
            if self.exists(i)
            and start <= self.meta[i].at <= end
            and (codes is None or r["service_code"] in codes)
            and (statuses is None or r["status"] in statuses)
        ]
        found.sort(key=lambda r: (self.meta[r["service_request_id"]].at, r["service_request_id"]))
        return [dict(r) for r in reversed(found[-LIST_MAX:])]

    def updates_for(self, client: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """`GET servicerequestupdates`: what `client` sees in `[start, end]`, oldest first
        (ties: update_id), the oldest 1,000 when there are more."""
        if end < start or end - start > WINDOW_MAX:
            raise Refused(400, "the window must run forward and span at most 24 hours")
        found = [u for u in self.updates if start <= u.at <= end and self._sees(client, u)]
        found.sort(key=lambda u: (u.at, u.json["update_id"]))
        return [dict(u.json) for u in found[:LIST_MAX]]

    def _sees(self, client: str, update: Update) -> bool:
        request_id = update.json["service_request_id"]
        meta = self.meta[request_id]
        if update.posted_by == client or meta.created_by == client:
            return True
        referred = self.requests[request_id]["agency_responsible"] == client
        return referred and update.seq >= meta.referral_seq

    # --- creating --------------------------------------------------------------------

    def replayed_create(self, client: str, external_ref: str | None) -> list[dict] | None:
        return None if external_ref is None else self.created.get((client, external_ref))

    def create(self, req: CreateIn, client: str | None) -> list[dict[str, str]]:
        """A request from a partner's POST (or from staff, `client` None); the answer."""
        service = self.services[req.service_code]
        now = self.clock.now()
        request_id = f"{now.astimezone(UTC).year}{len(self.requests) + 1:06d}"
        batch = service["type"] == "batch" and client is not None
        self.requests[request_id] = {
            "service_request_id": request_id,
            "status": "open",
            "status_notes": None,
            "service_name": service["service_name"],
            "service_code": req.service_code,
            "description": req.fields.get("description"),
            "agency_responsible": HOME_AGENCY,
            "service_notice": None,
            "requested_datetime": open311_time(now),
            "updated_datetime": open311_time(now),
            "expected_datetime": None,
            "address": req.fields.get("address_string"),
            "address_id": req.fields.get("address_id"),
            "zipcode": None,
            "lat": req.lat,
            "long": req.long,
            "media_url": req.fields.get("media_url"),
        }
        private: dict[str, Any] = {n: req.fields.get(n) for n in PRIVATE[:4]}
        private["attributes"] = dict(req.attributes)
        ready = now + TOKEN_DELAY if batch else now
        self.meta[request_id] = Meta(client, now.replace(microsecond=0), ready, private)
        if batch:
            token = secrets.token_hex(8)
            self.tokens[token] = request_id
            answer = [{"token": token}]
        else:
            answer = [{"service_request_id": request_id}]
        external_ref = req.attributes.get("external_ref")
        if client is not None and isinstance(external_ref, str):
            self.created[(client, external_ref)] = answer
        return answer

    # --- updates ---------------------------------------------------------------------

    def post_update(self, client: str, update: UpdateIn) -> str:
        """A partner's update on a request referred to it; 12385's id of it."""
        if not self.exists(update.service_request_id):
            raise Refused(404, f"no request {update.service_request_id}")
        request = self.requests[update.service_request_id]
        if request["agency_responsible"] != client:
            raise Refused(400, f"request {update.service_request_id} is not referred to {client}")
        status = update.status.lower()
        written = self._write(request, status, update.description, update.updated_at, client)
        if status == "no_further_action":
            request["agency_responsible"] = HOME_AGENCY
            request["status"] = "open"
        return written

    def refer(self, request_id: str, partner: str) -> dict[str, Any]:
        """Staff refer a request to `partner`: `agency_responsible` and an update
        `internal_referral` (`转介至<partner>`)."""
        request = self._staff_request(request_id)
        if request["agency_responsible"] != HOME_AGENCY:
            raise Refused(
                409, f"request {request_id} is referred to {request['agency_responsible']}"
            )
        if self.meta[request_id].created_by == partner or partner == HOME_AGENCY:
            raise Refused(409, f"request {request_id} cannot be referred to {partner}")
        request["agency_responsible"] = partner
        self._write(request, "internal_referral", f"转介至{partner}", self.clock.now(), None)
        self.meta[request_id].referral_seq = self._seq
        return request

    def staff_update(self, request_id: str, status: str, description: str) -> dict[str, Any]:
        """A 12385 operator's update: on a partner's own request one of
        `STAFF_ON_PARTNER_CREATED`, on a referred one `STAFF_ON_REFERRED`."""
        request = self._staff_request(request_id)
        if self.meta[request_id].created_by is not None:
            allowed = STAFF_ON_PARTNER_CREATED
        elif request["agency_responsible"] != HOME_AGENCY:
            allowed = STAFF_ON_REFERRED
        else:
            allowed = STAFF_ON_PARTNER_CREATED | STAFF_ON_REFERRED
        if status not in allowed:
            raise Refused(409, f"staff cannot write {status} on request {request_id}")
        self._write(request, status, description, self.clock.now(), None)
        return request

    def _staff_request(self, request_id: str) -> dict[str, Any]:
        if not self.exists(request_id):
            raise Refused(404, f"no request {request_id}")
        return self.requests[request_id]

    def _write(
        self, request: dict, status: str, description: str, at: datetime, by: str | None
    ) -> str:
        self._seq += 1
        update_id = f"u{self._seq:09d}"
        at = at.replace(microsecond=0)
        self.updates.append(
            Update(
                self._seq,
                {
                    "update_id": update_id,
                    "service_request_id": request["service_request_id"],
                    "status": status,
                    "description": description,
                    "updated_datetime": open311_time(at),
                    "media_url": "",
                },
                at,
                by,
            )
        )
        if status in CLOSING:
            request["status"] = "closed"
        elif status in OPENING:
            request["status"] = "open"
        request["status_notes"] = description
        request["updated_datetime"] = open311_time(at)
        return update_id
