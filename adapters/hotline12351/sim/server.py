"""A strict in-memory 12351 case system for tests, the demo and the benchmark.

The interface of `specs/hotline-12351.md` is served under `/integration/v1`
(`adapters.hotline12351.sim.api`), with every rule enforced; the control routes under
`/_sim` move its clock, switch faults and play the union's agents:

- `POST /_sim/advance` `{"seconds": s}`: move the clock (simkit).
- `POST /_sim/faults` any `Faults` fields, e.g. `{"burst_429": 1, "retry_after": "<seconds
  or HTTP date>"}`, `{"maintenance_s": 600}`: switch faults (simkit); `DELETE` clears them.
- `GET /_sim/state`: `{"now", "cases", "events", "feed_length", "cursors", "driver",
  "calls"}`; `calls` is `{"counts", "refusals"}` (below).
- `GET /_sim/counters`: `calls` alone (`{"counts", "refusals"}`), cheap on a large book.
- `POST /_sim/counters/reset`: forget the calls counted so far.
- `GET /_sim/calls?route=<"GET /cases/{id}">`: the calls answered one by one, oldest
  first (simkit `Call`: real wall time, client, route, query), to count a kind of call.
- `POST /_sim/cases`: agents record case(s) → 201 `{"items": [...]}`. Body: the fields of
  one case (`subject` required; `service_type`, `priority`, `district_code`, `channel`,
  `worker {name, phone, employer, member_card_no, is_member, confidential}`,
  `description`, `location`, `transfer {to, reason, category}`, `agent`), or
  `{"count": n, "transfer_share": 0.5}` for realistic random ones.
- `POST /_sim/cases/{id}/agent` `{"action": a, "agent"?: name, ...params}`: one workflow
  step → the case (409 when its status refuses it). `a`: `dispatch`, `verify`, `handle`,
  `respond {text, resolved}`, `callback {satisfaction, note}`, `close`,
  `reject {reason}`, `transfer {to, reason, category}`,
  `request_extension {new_deadline, reason}` (once, partner cases only).
- `POST /_sim/cases/{id}/fix` `{field: value, ...}`: a hand fix in the union's database
  (a status set back or forward, a response filled in): the case's fields (any but `id`,
  `case_no`, `created_at`, `updated_at`, `version`) replaced as given, while its
  `version`, `updated_at`, timeline and feed stay as they were, so no cursor or
  `changed_since` read shows the change; only `GET /cases/{id}` (and `case_no=`) does.
  → the case; 422 for another field, a status outside the spec's or a case that would no
  longer read as one.
- `POST /_sim/cursors/expire`: every cursor issued so far answers 410.
- `POST /_sim/driver` `{"cases_per_s": x, "transfer_share"?: s}`: start, retune or stop
  (`0`) the background workflow driver.

Python access for in-process tests: `sim.cases`, `sim.events`, `sim.record_case()`,
`sim.agent()`, `sim.fix_case()`, `sim.expire_cursors()`, `sim.clock`, `sim.faults`,
`sim.calls`.

Refused calls (`sim.refusals`, `sim.counts`, simkit's `CallLog`): every 4xx answer (400,
401, 404, 409, 410, 412, 422, a replayed one too) unless an injected fault gave it
(`burst_429`: counted as `faulted`, with `error_rate` and maintenance) or the rate limit
did (`rate_limited`). `DELETE /_sim/faults` leaves the counts alone.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

from adapters.hotline12351.sim.api import BASE_PATH, Api, refusal_of
from adapters.hotline12351.sim.control import agent_step, fix_case, record_cases
from adapters.hotline12351.sim.driver import WorkflowDriver
from adapters.hotline12351.sim.requests import Problem, problem_response
from adapters.hotline12351.sim.state import CaseBook
from adapters.simkit import (
    CallLog,
    CountsCalls,
    FaultInjector,
    SimClock,
    call_log_middleware,
    control_routes,
)

__all__ = ["BASE_PATH", "DEFAULT_API_KEYS", "Simulator12351", "serve"]

DEFAULT_API_KEYS: Final[Mapping[str, str]] = {"demo-key": "hotline-bridge"}


class Simulator12351(CountsCalls):
    """The simulated 12351. `api_keys` maps each accepted key to the client name the
    union gave it (actor `partner:<name>`); default `{"demo-key": "hotline-bridge"}`.
    `rate_limit_per_s` is the per-client limit when no fault overrides it."""

    def __init__(
        self,
        *,
        api_keys: Mapping[str, str] | None = None,
        clock: SimClock | None = None,
        rate_limit_per_s: float | None = None,
        seed: int = 0,
    ) -> None:
        self.clock = clock or SimClock()
        self.api_keys = dict(DEFAULT_API_KEYS if api_keys is None else api_keys)
        self.book = CaseBook(self.clock, random.Random(seed))
        self.faults = FaultInjector(self.clock, default_rate_per_s=rate_limit_per_s, seed=seed)
        self.driver = WorkflowDriver(self.book)
        self.calls = CallLog(self.clock)

    @property
    def cases(self) -> dict[str, dict[str, Any]]:
        """Every case as it stands now, by id (JSON as the API serves it)."""
        return self.book.cases

    @property
    def events(self) -> dict[str, list[dict[str, Any]]]:
        """Every case's timeline, by case id."""
        return self.book.events

    def record_case(self, **fields: Any) -> dict[str, Any]:
        """An agent records one case (same fields as `POST /_sim/cases`)."""
        return record_cases(self.book, fields)[0]

    def record_random_cases(self, count: int, transfer_share: float = 0.5) -> list[dict]:
        return record_cases(self.book, {"count": count, "transfer_share": transfer_share})

    def agent(self, case_id: str, action: str, **params: Any) -> dict[str, Any]:
        """One agent step (same as `POST /_sim/cases/{id}/agent`); raises `Problem`."""
        return agent_step(self.book, case_id, {"action": action, **params})

    def fix_case(self, case_id: str, **fields: Any) -> dict[str, Any]:
        """A hand fix in the database (same as `POST /_sim/cases/{id}/fix`); raises
        `Problem`."""
        return fix_case(self.book, case_id, fields)

    def expire_cursors(self) -> int:
        return self.book.expire_cursors()

    def state(self) -> dict[str, Any]:
        return {
            "now": self.clock.now().isoformat(),
            "cases": list(self.book.cases.values()),
            "events": self.book.events,
            "feed_length": len(self.book.feed),
            "cursors": self.book.cursor_count,
            "driver": self.driver.state(),
        }

    def make_app(self) -> web.Application:
        api = Api(self.book, self.faults, self.api_keys, self.clock)
        record = call_log_middleware(self.calls, BASE_PATH, api.client_of, refusal_of)
        app = web.Application(middlewares=[record])
        app.add_routes(control_routes(self.clock, self.faults, self.calls, self.state))
        app.add_routes(
            [
                web.post("/_sim/cases", self._post_cases),
                web.post("/_sim/cases/{id}/agent", self._post_agent),
                web.post("/_sim/cases/{id}/fix", self._post_fix),
                web.post("/_sim/cursors/expire", self._post_expire),
                web.post("/_sim/driver", self._post_driver),
            ]
        )
        app.add_subapp(BASE_PATH, api.app())

        async def stop_driver(_: web.Application) -> None:
            await self.driver.stop()

        app.on_cleanup.append(stop_driver)
        return app

    # --- control handlers ------------------------------------------------------------

    async def _post_cases(self, request: web.Request) -> web.Response:
        return await _control(request, lambda b: ({"items": record_cases(self.book, b)}, 201))

    async def _post_agent(self, request: web.Request) -> web.Response:
        case_id = request.match_info["id"]
        return await _control(request, lambda b: (agent_step(self.book, case_id, b), 200))

    async def _post_fix(self, request: web.Request) -> web.Response:
        case_id = request.match_info["id"]
        return await _control(request, lambda b: (fix_case(self.book, case_id, b), 200))

    async def _post_expire(self, request: web.Request) -> web.Response:
        return web.json_response({"expired": self.expire_cursors()})

    async def _post_driver(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            rate = float(body["cases_per_s"])
            share = body.get("transfer_share")
            if rate < 0 or (share is not None and not 0 <= float(share) <= 1):
                raise ValueError("out of range")
        except (ValueError, KeyError, TypeError):
            return problem_response(422, 'body must be {"cases_per_s": x >= 0, "transfer_share"?}')
        await self.driver.set(rate, None if share is None else float(share))
        return web.json_response(self.driver.state())


async def _control(request: web.Request, run: Any) -> web.Response:
    try:
        body = await request.json()
        data, status = run(body)
    except ValueError:
        return problem_response(400, "the body is not JSON")
    except Problem as exc:
        return exc.response()
    return web.json_response(data, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False))


async def serve(sim: Simulator12351, host: str, port: int) -> web.AppRunner:
    """Serve `sim` on `host:port` (0: any free port); the caller `cleanup()`s the runner."""
    runner = web.AppRunner(sim.make_app())
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
