"""The simulated 12351 interface itself (served under `/integration/v1`): bearer keys,
faults, problem documents, the feed's query rules, idempotent replay, `If-Match`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from aiohttp import web

from adapters.hotline12351.sim.requests import (
    CreateIn,
    Problem,
    if_match_versions,
    parse_rfc3339,
    problem_response,
    validate,
    validate_event,
)
from adapters.hotline12351.sim.state import CaseBook
from adapters.simkit import SIM_FAULT, FaultInjector, SimClock
from schemas.hotline12351 import IDEMPOTENCY_KEY_MAX, PAGE_LIMIT_MAX

BASE_PATH: Final = "/integration/v1"
REPLAY_WINDOW: Final = timedelta(hours=24)
NOT_STORED: Final = frozenset({401, 412, 429})
DEFAULT_LIMIT: Final = 100
_QUERY: Final = frozenset({"cursor", "limit", "changed_since", "case_no"})
CLIENT: Final = web.RequestKey("client", str)


@dataclass(frozen=True)
class _Stored:
    """A response kept for replay under one client's `Idempotency-Key`."""

    method: str
    path: str
    body: Any
    status: int
    headers: dict[str, str]
    payload: bytes
    stored_at: datetime


class Api:
    """Handlers of the simulated interface over one `CaseBook`."""

    def __init__(
        self, book: CaseBook, faults: FaultInjector, api_keys: dict[str, str], clock: SimClock
    ) -> None:
        self.book = book
        self.faults = faults
        self.api_keys = api_keys
        self.clock = clock
        self._stored: dict[tuple[str, str], _Stored] = {}

    def client(self, request: web.Request) -> str | None:
        """The client name the union gave a call's API key; None without a known key."""
        auth = request.headers.get("Authorization", "")
        key = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        return self.api_keys.get(key) if key else None

    def client_of(self, request: web.Request) -> str:
        """`client()` for the call log: `anonymous` without a known key."""
        return self.client(request) or "anonymous"

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app.add_routes(
            [
                web.get("/cases", self.list_cases),
                web.post("/cases", self.create_case),
                web.get("/cases/{id}", self.get_case),
                web.get("/cases/{id}/events", self.get_events),
                web.post("/cases/{id}/events", self.post_event),
            ]
        )
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Faults first (a gateway answers them), then the key, then the call; every
        error leaves as problem+json."""
        client = self.client(request)
        fault = await self.faults.check(client or "anonymous")
        if fault is not None:
            request[SIM_FAULT] = fault.kind
            answer = fault.response
            headers = {"Retry-After": answer.headers["Retry-After"]} if answer.status == 429 else {}
            detail = "maintenance window" if answer.status == 503 else (answer.text or "")
            return problem_response(answer.status, detail, headers=headers)
        if client is None:
            return problem_response(
                401, "missing or unknown API key", headers={"WWW-Authenticate": "Bearer"}
            )
        request[CLIENT] = client
        try:
            resp = await handler(request)
        except Problem as exc:
            return exc.response()
        except web.HTTPException as exc:
            return problem_response(exc.status, exc.reason)
        lost = self.faults.lose()  # it took effect; the answer may be lost on the way back
        if lost is not None:
            request[SIM_FAULT] = lost.kind
            return problem_response(lost.response.status, "gateway timeout")
        return resp

    # --- reads -----------------------------------------------------------------------

    async def list_cases(self, request: web.Request) -> web.Response:
        query = request.query
        unknown = sorted(set(query) - _QUERY)
        if unknown:
            raise Problem(400, f"unknown query parameter(s): {', '.join(unknown)}")
        limit = _limit(query.get("limit"))
        if "case_no" in query:
            if len(set(query) - {"case_no", "limit"}) > 0:
                raise Problem(400, "case_no cannot be combined with a feed query")
            return _json({"items": self.book.find(query["case_no"])})
        if "cursor" in query and "changed_since" in query:
            raise Problem(400, "pass either cursor or changed_since, not both")
        if "changed_since" in query:
            try:
                when = parse_rfc3339(query["changed_since"])
            except ValueError:
                raise Problem(
                    400,
                    "changed_since must be RFC 3339 with an offset (URL-encode the '+')",
                    [("/changed_since", f"not RFC 3339: {query['changed_since']!r}")],
                ) from None
            items, cursor = self.book.page_since(when, limit)
        else:
            items, cursor = self.book.page(query.get("cursor"), limit)
        return _json({"items": items, "next_cursor": cursor})

    async def get_case(self, request: web.Request) -> web.Response:
        case = self.book.get(request.match_info["id"])
        return _json(case, headers={"ETag": f'"{case["version"]}"'})

    async def get_events(self, request: web.Request) -> web.Response:
        case = self.book.get(request.match_info["id"])
        return _json({"items": self.book.events[case["id"]]})

    # --- writes ----------------------------------------------------------------------

    async def create_case(self, request: web.Request) -> web.Response:
        def execute(body: Any) -> web.Response:
            case = self.book.create_partner_case(validate(CreateIn, body), request[CLIENT])
            headers = {
                "Location": f"{BASE_PATH}/cases/{case['id']}",
                "ETag": f'"{case["version"]}"',
            }
            return _json(case, status=201, headers=headers)

        return await self._idempotent(request, execute)

    async def post_event(self, request: web.Request) -> web.Response:
        def execute(body: Any) -> web.Response:
            case = self.book.get(request.match_info["id"])
            if_match = request.headers.get("If-Match")
            if if_match is not None:
                versions = if_match_versions(if_match)
                if versions is not None and case["version"] not in versions:
                    raise Problem(412, f"stale If-Match: the case is at version {case['version']}")
            type_, event_body = validate_event(body)
            case = self.book.apply_event(case["id"], type_, event_body, request[CLIENT])
            return _json(case, headers={"ETag": f'"{case["version"]}"'})

        return await self._idempotent(request, execute)

    async def _idempotent(self, request: web.Request, execute: Any) -> web.Response:
        """Run `execute(json body)` once per client and `Idempotency-Key`; a repeat within
        24 h with the same JSON value on the same method and path gets the stored answer
        (`Idempotent-Replayed: true`), another body 409. 401/412/429/5xx are not stored.
        Nothing awaits between the lookup and the store, so concurrent repeats are safe."""
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
            parsed = True
        except ValueError:
            body, parsed = raw.decode(errors="replace"), False
        key = request.headers.get("Idempotency-Key")
        scope = (request[CLIENT], key or "")
        if key is not None:
            if not key or len(key) > IDEMPOTENCY_KEY_MAX:
                raise Problem(400, f"Idempotency-Key must be 1..{IDEMPOTENCY_KEY_MAX} characters")
            stored = self._stored.get(scope)
            if stored and self.clock.now() - stored.stored_at > REPLAY_WINDOW:
                del self._stored[scope]
                stored = None
            if stored is not None:
                same = (stored.method, stored.path, stored.body)
                if same != (request.method, request.path, body):
                    raise Problem(409, "Idempotency-Key reused with a different request")
                headers = stored.headers | {"Idempotent-Replayed": "true"}
                return web.Response(status=stored.status, body=stored.payload, headers=headers)
        try:
            if not parsed:
                raise Problem(400, "the body is not JSON")
            resp = execute(body)
        except Problem as exc:
            resp = exc.response()
        if key is not None and resp.status < 500 and resp.status not in NOT_STORED:
            kept = ("Content-Type", "Location", "ETag")
            keep = {h: resp.headers[h] for h in kept if h in resp.headers}
            self._stored[scope] = _Stored(
                request.method,
                request.path,
                body,
                resp.status,
                keep,
                bytes(resp.body),  # type: ignore[arg-type]
                self.clock.now(),
            )
        return resp


def refusal_of(request: web.Request, resp: web.StreamResponse) -> tuple[str, str] | None:
    """`(status, detail and pointers)` of a 4xx answer (a replayed one too), else None."""
    if resp.status < 400:
        return None
    try:
        doc = json.loads(resp.body)  # type: ignore[attr-defined]
        pointers = ", ".join(e["pointer"] for e in doc.get("errors", []))
        detail = f"{doc['detail']} ({pointers})" if pointers else doc["detail"]
    except (AttributeError, TypeError, ValueError, KeyError):
        detail = resp.reason or ""
    return str(resp.status), detail


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not re.fullmatch(r"-?\d+", value) or not 1 <= int(value) <= PAGE_LIMIT_MAX:
        raise Problem(
            400,
            f"limit must be an integer in 1..{PAGE_LIMIT_MAX}",
            [("/limit", f"{value!r} is outside 1..{PAGE_LIMIT_MAX}")],
        )
    return int(value)


def _json(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        data, status=status, headers=headers, dumps=lambda v: json.dumps(v, ensure_ascii=False)
    )
