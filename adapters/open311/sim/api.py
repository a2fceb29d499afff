"""The simulated 12385 Open311 interface itself (served under `/open311/v2`).

Every call goes through `Api._guard` in the order section 8 fixes:
faults (a gateway in front) → unknown path or a suffix other than `.json` (404) → a POST
with a JSON body (400, not counted) → `api_key` (403, not counted; GET: the query, POST:
the form, nothing else authenticates) → the rate limit (429, counted too) → the call's
own checks (400, a wrong method included) → unknown id or code (404). A `jurisdiction_id`
other than `bj.12385` is answered 404 right after the rate limit, before the call's own
checks (a reading: it names the whole server, not a record). Answers are bare
arrays, errors bare error arrays. The aiohttp access log is off (`server.serve`): GET
calls carry `api_key` in the URL.
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from datetime import timedelta
from typing import Any, Final

from aiohttp import web
from multidict import MultiDictProxy

from adapters.open311.sim.requests import (
    Refused,
    check_attributes,
    comma_list,
    error_response,
    external_ref_of,
    json_response,
    only_params,
    optional,
    parse_create,
    parse_time,
    parse_update,
    update_values,
)
from adapters.open311.sim.state import REQUEST_SPAN, RequestBook
from adapters.simkit import SIM_CLIENT, SIM_FAULT, FaultInjector, SimClock

BASE_PATH: Final = "/open311/v2"
JURISDICTION: Final = "bj.12385"
FORM: Final = web.RequestKey("open311_form", MultiDictProxy)
CLIENT: Final = web.RequestKey("open311_client", str)


class RateWindow:
    """A sliding window of `window_s` real seconds per api_key: at most `limit` calls;
    a call refused with 429 counts too. `limit` None or 0: no limit."""

    def __init__(self, limit: int | None, window_s: float = 60.0) -> None:
        self.limit = limit or None
        self.window_s = window_s
        self._calls: dict[str, deque[float]] = {}

    def set(self, limit: int | None, window_s: float | None = None) -> None:
        self.limit = limit or None
        if window_s is not None:
            self.window_s = window_s
        self._calls.clear()

    def admit(self, client: str) -> int | None:
        """Count one call; None if admitted, else the whole seconds until one would be."""
        now = time.monotonic()
        calls = self._calls.setdefault(client, deque())
        while calls and now - calls[0] >= self.window_s:
            calls.popleft()
        calls.append(now)
        if self.limit is None or len(calls) <= self.limit:
            return None
        # Accepted once all but limit - 1 of the calls in the window have left it.
        free_at = calls[len(calls) - self.limit] + self.window_s
        return max(1, math.ceil(free_at - now))


class Api:
    """Handlers of the simulated interface over one `RequestBook`."""

    def __init__(
        self,
        book: RequestBook,
        faults: FaultInjector,
        rate: RateWindow,
        api_keys: dict[str, str],
        clock: SimClock,
    ) -> None:
        self.book = book
        self.faults = faults
        self.rate = rate
        self.api_keys = api_keys
        self.clock = clock

    def client_of(self, request: web.Request) -> str:
        """The caller for the call log from the query (the guard corrects it for a POST)."""
        return self.api_keys.get(request.query.get("api_key", ""), "anonymous")

    def routes(self) -> list[web.RouteDef]:
        b = BASE_PATH
        return [
            web.route("*", b + "/services.{ext}", self.services),
            web.route("*", b + "/services/{code}.{ext}", self.definition),
            web.route("*", b + "/requests.{ext}", self.requests),
            web.route("*", b + "/requests/{id}.{ext}", self.one_request),
            web.route("*", b + "/tokens/{token}.{ext}", self.token),
            web.route("*", b + "/servicerequestupdates.{ext}", self.updates),
        ]

    @web.middleware
    async def guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith(BASE_PATH + "/"):
            return await handler(request)
        fault = await self.faults.check(request.get(SIM_CLIENT, "anonymous"))
        if fault is not None:
            request[SIM_FAULT] = fault.kind
            return _fault_answer(fault.response, self.faults)
        try:
            not_found = _not_found(request)
            form: MultiDictProxy[str] | None = None
            if request.method == "POST" and not_found is None:
                if request.content_type == "application/json":
                    raise Refused(400, "the body must be form encoded, not JSON")
                form = request[FORM] = await request.post()
            params = request.query if form is None else form
            client = self.api_keys.get(optional(params, "api_key") or "")
            if client is not None:
                request[SIM_CLIENT] = request[CLIENT] = client
            if not_found is not None:
                if client is not None:
                    self.rate.admit(client)  # it counts, but the 404 comes first
                raise not_found
            if client is None:
                raise Refused(403, "missing or invalid api_key")
            retry_after = self.rate.admit(client)
            if retry_after is not None:
                request[SIM_FAULT] = "rate_limited"
                headers = {"Retry-After": str(retry_after)}
                raise Refused(429, "rate limit exceeded", headers)
            jurisdiction = optional(params, "jurisdiction_id")
            if jurisdiction is not None and jurisdiction != JURISDICTION:
                raise Refused(404, f"unknown jurisdiction_id {jurisdiction}")
            resp = await handler(request)
        except Refused as exc:
            return exc.response()
        lost = self.faults.lose()  # it took effect; the answer may be lost on the way back
        if lost is not None:
            request[SIM_FAULT] = lost.kind
            return error_response(lost.response.status, "gateway timeout")
        return resp

    # --- handlers --------------------------------------------------------------------

    async def services(self, request: web.Request) -> web.Response:
        _method(request, "GET")
        only_params(request.query, frozenset())
        return json_response(list(self.book.services.values()))

    async def definition(self, request: web.Request) -> web.Response:
        _method(request, "GET")
        only_params(request.query, frozenset())
        return json_response(self.book.definition(request.match_info["code"]))

    async def one_request(self, request: web.Request) -> web.Response:
        _method(request, "GET")
        only_params(request.query, frozenset())
        return json_response([self.book.get(request.match_info["id"], request[CLIENT])])

    async def token(self, request: web.Request) -> web.Response:
        _method(request, "GET")
        only_params(request.query, frozenset())
        return json_response([self.book.token(request.match_info["token"])])

    async def requests(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            return self._create(request, request[FORM])
        _method(request, "GET")
        query = request.query
        allowed = {"service_request_id", "service_code", "start_date", "end_date", "status"}
        only_params(query, frozenset(allowed))
        statuses = comma_list(query, "status")
        if statuses is not None and not set(statuses) <= {"open", "closed"}:
            raise Refused(400, "status must be open, closed or both")
        start_text, end_text = optional(query, "start_date"), optional(query, "end_date")
        start = parse_time("start_date", start_text) if start_text else None
        end = parse_time("end_date", end_text) if end_text else None
        if start is None and end is None:
            end = self.clock.now()
        if start is None:
            start = end - REQUEST_SPAN  # type: ignore[operator]
        if end is None:
            end = start + REQUEST_SPAN
        if end < start:
            raise Refused(400, "end_date is before start_date")
        if end - start > REQUEST_SPAN:
            raise Refused(400, "start_date..end_date spans more than 90 days")
        ids = comma_list(query, "service_request_id")
        codes = comma_list(query, "service_code")
        return json_response(self.book.query(ids, codes, statuses, start, end))

    def _create(self, request: web.Request, form: MultiDictProxy[str]) -> web.Response:
        """External_ref replay first (whatever the other fields), then the form (400),
        the service (404), its attributes (400)."""
        client = request[CLIENT]
        replay = self.book.replayed_create(client, external_ref_of(form))
        if replay is not None:
            return json_response(replay)
        create = parse_create(form)
        check_attributes(create, self.book.definition(create.service_code))
        return json_response(self.book.create(create, client))

    async def updates(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            return self._post_update(request, request[FORM])
        _method(request, "GET")
        query = request.query
        only_params(query, frozenset({"start_date", "end_date"}))
        start_text, end_text = optional(query, "start_date"), optional(query, "end_date")
        if start_text is None or end_text is None:
            raise Refused(400, "start_date and end_date are both required")
        start, end = parse_time("start_date", start_text), parse_time("end_date", end_text)
        return json_response(self.book.updates_for(request[CLIENT], start, end))

    def _post_update(self, request: web.Request, form: MultiDictProxy[str]) -> web.Response:
        """A known update_id first (replay or `already exists`), then the body (400),
        the request (404), the referral (400)."""
        client = request[CLIENT]
        update_id = optional(form, "update_id") or ""
        values = update_values(form)
        known = self.book.posted.get((client, update_id))
        if known is not None:
            if known[0] != values:
                raise Refused(400, "update_id already exists with different values")
            return json_response([{"update_id": known[1]}])
        update = parse_update(form, self.clock.now())
        server_id = self.book.post_update(client, update)
        self.book.posted[(client, update_id)] = (values, server_id)
        return json_response([{"update_id": server_id}])


def _not_found(request: web.Request) -> Refused | None:
    match = request.match_info
    if match.http_exception is not None:
        return Refused(404, "Not found")
    if match.get("ext") != "json":
        return Refused(404, "Bad extension")
    return None


def _method(request: web.Request, *allowed: str) -> None:
    if request.method not in allowed:
        raise Refused(400, f"{request.method} is not allowed here")


def _fault_answer(answer: web.Response, faults: FaultInjector) -> web.Response:
    """An injected fault as an error array: 503 (maintenance) with `Retry-After` in whole
    seconds until its end, a 429 with the fault's `Retry-After`."""
    headers: dict[str, str] = {}
    if answer.status == 429:
        headers["Retry-After"] = answer.headers["Retry-After"]
    until = faults.faults.maintenance_until
    if answer.status == 503 and until is not None:
        left = (until - faults.clock.now()) / timedelta(seconds=1)
        headers["Retry-After"] = str(max(1, math.ceil(left)))
        return error_response(503, "maintenance", headers)
    return error_response(answer.status, answer.text or "error", headers)


def refusal_of(request: web.Request, resp: web.StreamResponse) -> tuple[str, str] | None:
    """`(status, description)` of a 4xx answer, else None (for the call log)."""
    if resp.status < 400:
        return None
    try:
        entries = json.loads(resp.body)  # type: ignore[attr-defined]
        return str(resp.status), "; ".join(e["description"] for e in entries)
    except (AttributeError, TypeError, ValueError, KeyError):
        return str(resp.status), resp.reason or ""
