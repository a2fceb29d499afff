"""A strict in-memory 12345 work-order system for tests, the demo and the benchmark.

The interface of `specs/hotline-12345.md` is served under `/api/v2` (`sim.api`), every
rule enforced (`sim.state`): HTTP-200 envelopes for business errors, 7,200 s tokens on the
simulated clock, plain-text 429 / 5xx, strict paging and validation. Control routes under
`/_sim` (JSON bodies):

- `POST /_sim/advance` `{"seconds": s}`: move the clock (simkit).
- `POST /_sim/faults`: simkit `Faults` fields plus `shift_between_pages` (0..1: chance a
  list page touches one order on it or the next page), `busy_rate` (0..1: share of calls
  answered 50001), `reject_tokens` (every bearer token → 40101); `DELETE` clears.
- `GET /_sim/state`: `{"now", "unitCode", "orders", "requestIds", "extended", "actions",
  "tokensIssued", "driver", "calls"}`; `calls` is `{"counts", "refusals"}` (below).
- `GET /_sim/counters`: `calls` alone (`{"counts", "refusals"}`), cheap on a large book.
- `POST /_sim/counters/reset`: forget the calls counted so far.
- `GET /_sim/calls?route=<"GET /orders/{orderNo}">`: the calls answered one by one, oldest
  first (simkit `Call`: real wall time, client, route, query), to count a kind of call.
- `POST /_sim/orders`: order fields, `{"count": n, ...fields}` or `{"orders": [fields]}`:
  dispatch order(s), all in one second (status 10, our unit unless `unitCode` says
  otherwise, random realistic fields) → 201 `{"orderNos": [...]}`.
- `POST /_sim/orders/{no}/<step>` as 12345: `visit {satisfaction, remark}` (30 → 40),
  `reopen {reason}` (30/40 → 20, after visit 3 or an unresolved reply), `withdraw` (→ 70),
  `close` (30/40 → 50), `touch` (only `updateTime` moves); as the order's own unit (the
  district units of partner-created orders): `sign {handler?}`, `reply {content,
  resolved, handler?}`, `extension {newDeadline, reason}`, `return {reason}`.
- `clock_behind_s` (seconds ≥ 0) in the body of a dispatch or a step: the application
  server that writes it has a clock that many seconds slow, so every time it stamps
  (`updateTime`, `dispatchTime`, `acceptTime`, `deadline`, `replyTime`, `visitTime`, the
  action log's) is that much earlier, possibly below the `updateTime` of orders 12345
  already served: an incremental `updatedSince` read past that mark never returns it.
- `POST /_sim/orders/{no}/edit` `{"fields": {...}, "updateTime"?: "yyyy-MM-dd HH:mm:ss"}`:
  a hand fix in 12345's database: the given order fields (any but `orderNo` and
  `updateTime`) replaced as they are, `updateTime` left as it was or set to the given time
  (not later than now); 400 for anything else. Lists sort it by that `updateTime`.
- `POST /_sim/tokens/revoke` `{"token"?}`: revoke one token or all → `{"revoked": n}`.
- `POST /_sim/driver` `{"dispatch_per_s": x, "advance": bool, "min_age_s"?: s}` or
  `{"stop": true}`: start / retune / stop the workflow driver (`sim.driver`); `DELETE`
  stops it.

Order steps answer the order (200), 409 `{"code", "error"}` when a rule refuses, 404 when
there is no such order, 400 for a malformed control body. Python access for in-process
tests: `sim.orders`, `sim.actions`, `sim.book` (rules, `book.slow_clock(s)`, `book.edit`),
`sim.tokens`, `sim.clock`, `sim.faults`, `sim.driver`, `sim.calls`.

Refused calls (`sim.refusals`, `sim.counts`, simkit's `CallLog`): every API answer with an
envelope code other than `0` and `40901` (a replay is a success), and every other HTTP
4xx, unless an injected fault gave it (`error_rate`, `burst_429`, maintenance,
`busy_rate`, `reject_tokens`: counted as `faulted`) or the rate limit did
(`rate_limited`). A call counts under its token's client (`/oauth/token` under its
`client_id`, once its form is read), else `anonymous:<address>`. `DELETE /_sim/faults`
leaves the counts alone.
"""

from __future__ import annotations

import random
from typing import Any

from aiohttp import web

from adapters.hotline12345.sim.api import (
    BASE_PATH,
    Api,
    FaultInjector12345,
    Tokens,
    refusal_of,
)
from adapters.hotline12345.sim.control import control_routes_12345
from adapters.hotline12345.sim.driver import WorkflowDriver
from adapters.hotline12345.sim.state import OrderBook
from adapters.simkit import (
    CallLog,
    CountsCalls,
    SimClock,
    call_log_middleware,
    control_routes,
)

__all__ = ["BASE_PATH", "Simulator12345", "serve"]


class Simulator12345(CountsCalls):
    """The simulated 12345 for one partner client (credentials → `unit_code`)."""

    def __init__(
        self,
        *,
        client_id: str = "demo-client",
        client_secret: str = "demo-secret",
        unit_code: str = "BJZGH",
        clock: SimClock | None = None,
        rate_limit_per_s: float | None = 20,
        seed: int = 0,
    ) -> None:
        self.clock = clock or SimClock()
        self.book = OrderBook(self.clock, unit_code, random.Random(seed))
        self.tokens = Tokens(self.clock, {client_id: client_secret})
        self.faults = FaultInjector12345(self.clock, default_rate_per_s=rate_limit_per_s, seed=seed)
        self.driver = WorkflowDriver(self.book)
        self.calls = CallLog(self.clock)
        self._api = Api(self.book, self.tokens, self.faults)

    @property
    def unit_code(self) -> str:
        return self.book.unit_code

    @property
    def orders(self) -> dict[str, dict[str, Any]]:
        return self.book.orders

    @property
    def actions(self) -> list[dict[str, Any]]:
        return self.book.actions

    def dump(self) -> dict[str, Any]:
        return self.book.dump() | {
            "tokensIssued": self.tokens.issued,
            "driver": self.driver.settings(),
        }

    def make_app(self) -> web.Application:
        record = call_log_middleware(self.calls, BASE_PATH, self._api.client_of, refusal_of)
        app = web.Application(middlewares=[record, self._api.middleware])
        app.add_routes(self._api.routes())
        app.add_routes(control_routes(self.clock, self.faults, self.calls, self.dump))
        app.add_routes(control_routes_12345(self.book, self.tokens, self.driver))

        async def stop_driver(app: web.Application) -> None:
            await self.driver.stop()

        app.on_cleanup.append(stop_driver)
        return app


async def serve(sim: Simulator12345, host: str, port: int) -> web.AppRunner:
    """Serve the simulator on host:port (0 = any free port); the caller cleans the
    runner up. The API is at `http://host:port/api/v2`."""
    runner = web.AppRunner(sim.make_app())
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
