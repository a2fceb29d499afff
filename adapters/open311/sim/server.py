"""A strict in-memory 12385 Open311 server for tests, the demo and the benchmark.

The interface of `specs/open311-georeport-v2.md` (section 8 binding) is served under
`/open311/v2` (`adapters.open311.sim.api`), with every rule enforced; the control routes
under `/_sim` move its clock, switch faults and the rate limit, and play 12385's staff:

- `POST /_sim/advance` `{"seconds": s}`: move the clock (tokens get their id 5 s after
  the POST on this clock; maintenance ends on it).
- `POST /_sim/faults` any simkit `Faults` fields (`error_rate`, `error_status`,
  `burst_429` + `retry_after`, `maintenance_s`, `lost_rate`, `latency_ms`); `DELETE`
  clears them. Faults answer as error arrays; maintenance is 503 with `Retry-After`.
- `POST /_sim/ratelimit` `{"per_min": n | null, "window_s"?: s}`: the sliding window per
  api_key (default 10 calls per 60 s; null or 0: off), its count restarted.
- `GET /_sim/state`: `{"now", "requests", "updates", "tokens", "driver", "calls"}`.
- `GET /_sim/counters`, `POST /_sim/counters/reset`, `GET /_sim/calls?route=` (simkit):
  calls per client, refusals, and each call (real wall time, client, route, query).
- `POST /_sim/requests`: an operator takes a request by phone (fields of `POST requests`
  as JSON, `attributes` an object; `{}`: a random one) → 201, the request.
- `POST /_sim/requests/{id}/refer` `{"to": partner}`: refer it (`internal_referral`,
  `转介至<partner>`); 409 if referred already or created by that partner.
- `POST /_sim/requests/{id}/updates` `{"status", "description"?}`: a staff update
  (`in_progress`, `fixed`, `not_councils_responsibility`, `duplicate`, `closed` on a
  partner's request; `cancelled`, `reopen` on a referred one); 409 otherwise.
- `POST /_sim/driver` `{"requests_per_min": x, "referral_share"?: s}`: the staff driver
  (0: off, the default).

At start the book holds a few requests referred to `12351`, a few to `12345` and a few
not referred (`data.SEED_*`). Api keys map to the client names 12385 gave them (default
`{"demo-key": "12351"}`). The call log counts a 429 of the rate limit as `rate_limited`,
an injected fault as `faulted`, every other 4xx as a refusal.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

from adapters.open311.sim.api import BASE_PATH, JURISDICTION, Api, RateWindow, refusal_of
from adapters.open311.sim.control import refer, staff_request, staff_update
from adapters.open311.sim.data import SEED_REFERRALS, SEED_UNREFERRED
from adapters.open311.sim.driver import StaffDriver
from adapters.open311.sim.requests import Refused
from adapters.open311.sim.state import RequestBook
from adapters.simkit import (
    CallLog,
    CountsCalls,
    FaultInjector,
    SimClock,
    call_log_middleware,
    control_routes,
)

__all__ = ["BASE_PATH", "DEFAULT_API_KEYS", "JURISDICTION", "Simulator385", "serve"]

DEFAULT_API_KEYS: Final[Mapping[str, str]] = {"demo-key": "12351"}
DEFAULT_PORT: Final = 8385
DEFAULT_RATE_PER_MIN: Final = 10


class Simulator385(CountsCalls):
    """The simulated 12385. `rate_limit_per_min` calls per `rate_window_s` per api_key
    (None or 0: off); `seed_data` False starts with an empty book."""

    def __init__(
        self,
        *,
        api_keys: Mapping[str, str] | None = None,
        clock: SimClock | None = None,
        rate_limit_per_min: int | None = DEFAULT_RATE_PER_MIN,
        rate_window_s: float = 60.0,
        seed: int = 0,
        seed_data: bool = True,
    ) -> None:
        self.clock = clock or SimClock()
        self.api_keys = dict(DEFAULT_API_KEYS if api_keys is None else api_keys)
        self.book = RequestBook(self.clock, random.Random(seed))
        self.faults = FaultInjector(self.clock, default_rate_per_s=None, seed=seed)
        self.rate = RateWindow(rate_limit_per_min, rate_window_s)
        self.driver = StaffDriver(self.book)
        self.calls = CallLog(self.clock)
        if seed_data:
            self._seed()

    def _seed(self) -> None:
        for partner, count in SEED_REFERRALS:
            for _ in range(count):
                self.refer(self.staff_request()["service_request_id"], partner)
        for _ in range(SEED_UNREFERRED):
            self.staff_request()

    # --- Python access for in-process tests ----------------------------------------

    @property
    def requests(self) -> dict[str, dict[str, Any]]:
        """Every request's public JSON, by id."""
        return self.book.requests

    def private(self, request_id: str) -> dict[str, Any]:
        return self.book.meta[request_id].private

    def staff_request(self, **fields: Any) -> dict[str, Any]:
        """An operator takes a request (as `POST /_sim/requests`); raises `Refused`."""
        return staff_request(self.book, fields)

    def refer(self, request_id: str, partner: str) -> dict[str, Any]:
        return refer(self.book, request_id, {"to": partner})

    def staff_update(self, request_id: str, status: str, description: str = "") -> dict:
        return staff_update(self.book, request_id, {"status": status, "description": description})

    def state(self) -> dict[str, Any]:
        return {
            "now": self.clock.now().isoformat(),
            "requests": [
                r | {"private": self.book.meta[i].private} for i, r in self.book.requests.items()
            ],
            "updates": [u.json | {"posted_by": u.posted_by} for u in self.book.updates],
            "tokens": dict(self.book.tokens),
            "driver": self.driver.state(),
        }

    def make_app(self) -> web.Application:
        api = Api(self.book, self.faults, self.rate, self.api_keys, self.clock)
        record = call_log_middleware(self.calls, BASE_PATH, api.client_of, refusal_of)
        app = web.Application(middlewares=[record, api.guard])
        app.add_routes(control_routes(self.clock, self.faults, self.calls, self.state))
        app.add_routes(
            [
                web.post("/_sim/ratelimit", self._post_ratelimit),
                web.post("/_sim/requests", self._post_request),
                web.post("/_sim/requests/{id}/refer", self._post_refer),
                web.post("/_sim/requests/{id}/updates", self._post_update),
                web.post("/_sim/driver", self._post_driver),
            ]
        )
        app.add_routes(api.routes())

        async def stop_driver(_: web.Application) -> None:
            await self.driver.stop()

        app.on_cleanup.append(stop_driver)
        return app

    # --- control handlers ------------------------------------------------------------

    async def _post_ratelimit(self, request: web.Request) -> web.Response:
        async def run(body: Any) -> tuple[Any, int]:
            per_min, window = body.get("per_min"), body.get("window_s")
            if per_min is not None and (not isinstance(per_min, int) or per_min < 0):
                raise Refused(400, "per_min must be a whole number >= 0 or null")
            if window is not None and (not isinstance(window, int | float) or window <= 0):
                raise Refused(400, "window_s must be > 0")
            self.rate.set(per_min, window)
            return {"per_min": self.rate.limit, "window_s": self.rate.window_s}, 200

        return await _control(request, run)

    async def _post_request(self, request: web.Request) -> web.Response:
        async def run(body: Any) -> tuple[Any, int]:
            return staff_request(self.book, body), 201

        return await _control(request, run)

    async def _post_refer(self, request: web.Request) -> web.Response:
        async def run(body: Any) -> tuple[Any, int]:
            return refer(self.book, request.match_info["id"], body), 200

        return await _control(request, run)

    async def _post_update(self, request: web.Request) -> web.Response:
        async def run(body: Any) -> tuple[Any, int]:
            return staff_update(self.book, request.match_info["id"], body), 200

        return await _control(request, run)

    async def _post_driver(self, request: web.Request) -> web.Response:
        async def run(body: Any) -> tuple[Any, int]:
            rate, share = body.get("requests_per_min"), body.get("referral_share")
            if not isinstance(rate, int | float) or rate < 0:
                raise Refused(400, "requests_per_min must be a number >= 0")
            if share is not None and not (isinstance(share, int | float) and 0 <= share <= 1):
                raise Refused(400, "referral_share must be in 0..1")
            await self.driver.set(float(rate), None if share is None else float(share))
            return self.driver.state(), 200

        return await _control(request, run)


async def _control(request: web.Request, run: Any) -> web.Response:
    try:
        body = await request.json()
        if not isinstance(body, dict):
            raise Refused(400, "the body must be an object")
        data, status = await run(body)
    except ValueError:
        return Refused(400, "the body is not JSON").response()
    except Refused as exc:
        return exc.response()
    return web.json_response(data, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False))


async def serve(sim: Simulator385, host: str, port: int) -> web.AppRunner:
    """Serve `sim` on `host:port` (0: any free port); the caller `cleanup()`s the runner.
    No access log: GET calls carry the api_key in their query string."""
    runner = web.AppRunner(sim.make_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
