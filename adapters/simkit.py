"""What both hotline simulators share: a clock tests can move, switchable faults and
rate limits, the log of what they answered, and the control routes under `/_sim`
(seeded realistic data is in `adapters.simkit`).

Control API (JSON, on each simulator's server, outside its base path):

| route | body | effect |
|---|---|---|
| `POST /_sim/advance` | `{"seconds": s}` | move the clock forward |
| `POST /_sim/faults` | any `Faults` fields | switch faults (merged into the current ones) |
| `DELETE /_sim/faults` | – | all faults off |
| `GET /_sim/state` | – | dump the whole state (simulator-specific), with `calls` |
| `GET /_sim/counters` | – | `{"counts", "refusals"}` (`CallLog`) alone: cheap on a large book |
| `POST /_sim/counters/reset` | – | forget the calls counted so far (`CallLog`) |
| `GET /_sim/calls?route=` | – | `{"items": [Call]}`: the calls answered, oldest first |

`CallLog` counts every API call per client and keeps a record of each one the simulator
refused, apart from the answers of the rate limit (`rate_limited`) and of injected
faults (`faulted`): a test can say "zero refused" with faults on. It also keeps the last
`TRACE_MAX` calls (`Call`: when, by whom, which route and query), so that a test can
count one kind of call over a stretch of time. `DELETE /_sim/faults` leaves it alone.
Each simulator adds its own seed / workflow routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

BEIJING: Final = ZoneInfo("Asia/Shanghai")


class SimClock:
    """Wall-clock time plus an offset that tests move forward with `advance()`."""

    def __init__(self, start: datetime | None = None) -> None:
        self._offset = timedelta(0)
        if start is not None:
            self._offset = start - datetime.now(UTC)

    def now(self) -> datetime:
        """Aware UTC now, as the simulated world sees it."""
        return datetime.now(UTC) + self._offset

    def now_beijing(self) -> datetime:
        return self.now().astimezone(BEIJING)

    def advance(self, seconds: float) -> None:
        self._offset += timedelta(seconds=seconds)


class Faults(BaseModel):
    """Faults a test switches on; all off by default."""

    model_config = ConfigDict(extra="forbid")

    error_rate: float = Field(default=0.0, ge=0, le=1, description="share of calls answered 5xx")
    error_status: int = 500
    rate_limit_per_s: float | None = Field(
        default=None, description="requests/s per client; None = the simulator's default"
    )
    burst_429: int = Field(default=0, ge=0, description="the next N calls get 429")
    retry_after: str = Field(default="1", description="Retry-After value sent with 429")
    latency_ms: int = Field(default=0, ge=0)
    maintenance_until: datetime | None = Field(
        default=None, description="until this (simulated) time every call gets 503"
    )
    maintenance_s: float | None = Field(
        default=None, description="shortcut: maintenance for this many simulated seconds"
    )
    lost_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="share of calls that take effect but whose answer is lost on the way "
        "back (a gateway answers `lost_status` instead): the client must find out",
    )
    lost_status: int = 504


@dataclass(frozen=True)
class Fault:
    """An answer given instead of the API's: `rate_limited` by the per-client limit,
    `faulted` by a fault a test switched on."""

    kind: Literal["rate_limited", "faulted"]
    response: web.Response


class FaultInjector:
    """Applies `Faults` to each API request (not to `/_sim` routes)."""

    def __init__(self, clock: SimClock, *, default_rate_per_s: float | None, seed: int = 0):
        self.clock = clock
        self.faults = Faults()
        self.default_rate_per_s = default_rate_per_s
        self._rng = random.Random(seed)
        self._calls: dict[str, deque[float]] = {}

    def update(self, patch: dict) -> Faults:
        merged = self.faults.model_dump() | patch
        faults = Faults.model_validate(merged)
        if faults.maintenance_s is not None:
            faults.maintenance_until = self.clock.now() + timedelta(seconds=faults.maintenance_s)
            faults.maintenance_s = None
        self.faults = faults
        return faults

    def reset(self) -> None:
        self.faults = Faults()
        self._calls.clear()

    def _rate_limited(self, client: str) -> bool:
        limit = self.faults.rate_limit_per_s
        if limit is None:
            limit = self.default_rate_per_s
        if not limit:
            return False
        now = time.monotonic()
        window = self._calls.setdefault(client, deque())
        while window and now - window[0] > 1.0:
            window.popleft()
        if len(window) >= limit:
            return True
        window.append(now)
        return False

    async def check(self, client: str) -> Fault | None:
        """A fault answer for this call, or None to serve it normally."""
        f = self.faults
        if f.latency_ms:
            await asyncio.sleep(f.latency_ms / 1000)
        if f.maintenance_until is not None and self.clock.now() < f.maintenance_until:
            text = "<html>系统维护中</html>"
            return Fault("faulted", web.Response(status=503, text=text, content_type="text/html"))
        if f.burst_429 > 0:
            f.burst_429 -= 1
            return Fault("faulted", _too_many(f.retry_after))
        if self._rate_limited(client):
            return Fault("rate_limited", _too_many("1"))
        if f.error_rate and self._rng.random() < f.error_rate:
            return Fault(
                "faulted", web.Response(status=f.error_status, text="Internal Server Error")
            )
        return None

    def lose(self) -> Fault | None:
        """After a call took effect: the gateway's answer instead of the API's, when the
        `lost_rate` fault loses this one."""
        f = self.faults
        if f.lost_rate and self._rng.random() < f.lost_rate:
            return Fault("faulted", web.Response(status=f.lost_status, text="Gateway Timeout"))
        return None


def _too_many(retry_after: str) -> web.Response:
    return web.Response(status=429, text="Too Many Requests", headers={"Retry-After": retry_after})


# --- what the simulators answered ----------------------------------------------------

SIM_CLIENT: Final = web.RequestKey("sim_client", str)  # the caller, once the API knows it
SIM_FAULT: Final = web.RequestKey("sim_fault", str)  # set when a `Fault` kind answered


TRACE_MAX: Final = 200_000
"""The most calls a `CallLog` remembers one by one (the oldest go first)."""


@dataclass(frozen=True)
class Call:
    """One API call as a simulator answered it: `at` on the real wall clock (epoch
    seconds, not the simulated clock: rates are measured in real time), the client, the
    route template, the query parameters (paging, times, identifiers; never a body) and
    what answered it: `api`, `rate_limited` or `faulted`."""

    at: float
    client: str
    route: str  # "GET /orders/{orderNo}"
    query: dict[str, str]
    answered_by: str


@dataclass(frozen=True)
class Refusal:
    """One call the simulator refused. `message` is the simulator's own error text
    (field names and identifiers, never the caller's data)."""

    method: str
    route: str  # the route template: "POST /orders/{orderNo}/sign"
    code: str  # the envelope code or the HTTP status
    client: str
    at: str  # simulated time, ISO 8601
    message: str


class TickingDriver:
    """A simulator's workflow driver: a background task that calls `tick(TICK_S)` every
    `TICK_S` while it runs (`switch(True)`), logging (not dying on) a failed tick."""

    TICK_S: float = 0.1
    NAME: str = "sim"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._due = 0.0

    async def switch(self, on: bool) -> None:
        """Start the task if `on` and it is not running; stop it if not `on`."""
        if on and self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"{self.NAME}.driver")
        elif not on:
            await self.stop()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.TICK_S)
            try:
                self.tick(self.TICK_S)
            except Exception:
                structlog.get_logger(__name__).exception("sim_driver.failed", system=self.NAME)

    def tick(self, seconds: float) -> None:
        raise NotImplementedError


SECRET_PARAMS: Final = frozenset({"api_key", "client_secret", "access_token"})
"""Query parameters the call log masks: `GET /_sim/calls` shows no credential."""


class CallLog:
    """Every API call a simulator answered: how many per client, how many the rate limit
    or an injected fault answered, and a `Refusal` for each one it refused."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.refusals: list[Refusal] = []
        self.trace: deque[Call] = deque(maxlen=TRACE_MAX)
        self._requests: Counter[str] = Counter()
        self._answered_by: Counter[str] = Counter()

    def record(self, request: web.Request, route: str, refusal: tuple[str, str] | None) -> None:
        """Count one call of `request.get(SIM_CLIENT)`; `refusal` is `(code, message)`
        when the API refused it, ignored when a fault answered it (`SIM_FAULT`)."""
        client = request.get(SIM_CLIENT, "anonymous")
        self._requests[client] += 1
        kind = request.get(SIM_FAULT)
        # a credential that travels in the query string (Open311's `api_key`) is not kept
        query = {k: ("***" if k in SECRET_PARAMS else v) for k, v in request.query.items()}
        self.trace.append(Call(time.time(), client, route, query, kind or "api"))
        if kind is not None:
            self._answered_by[kind] += 1
        elif refusal is not None:
            code, message = refusal
            at = self.clock.now().isoformat()
            self.refusals.append(Refusal(request.method, route, code, client, at, message))

    @property
    def counts(self) -> dict[str, Any]:
        """`{"requests": {client: n}, "refused": n, "rate_limited": n, "faulted": n}`."""
        return {
            "requests": dict(self._requests),
            "refused": len(self.refusals),
            "rate_limited": self._answered_by["rate_limited"],
            "faulted": self._answered_by["faulted"],
        }

    def dump(self) -> dict[str, Any]:
        return {"counts": self.counts, "refusals": [asdict(r) for r in self.refusals]}

    def calls_to(self, route: str | None = None) -> list[Call]:
        """The remembered calls (to `route`, e.g. `"GET /orders/{orderNo}"`), oldest first."""
        return [c for c in self.trace if route is None or c.route == route]

    def reset(self) -> None:
        self.refusals.clear()
        self.trace.clear()
        self._requests.clear()
        self._answered_by.clear()


class CountsCalls:
    """For a simulator with a `calls: CallLog`: what it refused and counted."""

    calls: CallLog

    @property
    def refusals(self) -> list[Refusal]:
        """Every API call refused so far (not those faults or the rate limit answered)."""
        return self.calls.refusals

    @property
    def counts(self) -> dict[str, Any]:
        """`{"requests": {client: n}, "refused", "rate_limited", "faulted"}` (`CallLog`)."""
        return self.calls.counts


Refuses = Callable[[web.Request, web.StreamResponse], tuple[str, str] | None]


def call_log_middleware(
    calls: CallLog,
    base_path: str,
    client_of: Callable[[web.Request], str],
    refusal_of: Refuses,
) -> Any:
    """The outermost middleware of a simulator: records each call under `base_path` in
    `calls`. `client_of` names the caller (a handler that knows better overwrites
    `SIM_CLIENT`); `refusal_of` says whether an answer is a refusal. A raised HTTP error
    of 400 or more is one, and so is a simulator crash."""

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith(base_path):
            return await handler(request)
        request[SIM_CLIENT] = client_of(request)
        route = f"{request.method} {route_template(request, base_path)}"
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            refused = (str(exc.status), exc.reason) if exc.status >= 400 else None
            calls.record(request, route, refused)
            raise
        except Exception as exc:
            calls.record(request, route, ("500", f"simulator error {exc.__class__.__name__}"))
            raise
        calls.record(request, route, refusal_of(request, resp))
        return resp

    return record


def route_template(request: web.Request, base_path: str) -> str:
    """The matched route's template under `base_path` (`/orders/{orderNo}/sign`), or the
    path itself when no route matched."""
    resource = request.match_info.route.resource
    template = resource.canonical if resource is not None else request.path
    return template.removeprefix(base_path) or "/"


def control_routes(
    clock: SimClock,
    faults: FaultInjector,
    calls: CallLog,
    dump: Callable[[], Awaitable[dict] | dict],
) -> list[web.RouteDef]:
    """The `/_sim` routes every simulator has (see the module docstring)."""

    async def advance(request: web.Request) -> web.Response:
        body = await request.json()
        clock.advance(float(body["seconds"]))
        return web.json_response({"now": clock.now().isoformat()})

    async def set_faults(request: web.Request) -> web.Response:
        try:
            updated = faults.update(await request.json())
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(updated.model_dump(mode="json"))

    async def clear_faults(request: web.Request) -> web.Response:
        faults.reset()
        return web.json_response(faults.faults.model_dump(mode="json"))

    async def state(request: web.Request) -> web.Response:
        result = dump()
        if asyncio.iscoroutine(result):
            result = await result
        return web.json_response(result | {"calls": calls.dump()}, dumps=_dumps)

    async def counted(request: web.Request) -> web.Response:
        return web.json_response(calls.dump(), dumps=_dumps)

    async def reset_counters(request: web.Request) -> web.Response:
        calls.reset()
        return web.json_response(calls.dump())

    async def list_calls(request: web.Request) -> web.Response:
        items = [asdict(c) for c in calls.calls_to(request.query.get("route"))]
        return web.json_response({"items": items}, dumps=_dumps)

    return [
        web.post("/_sim/advance", advance),
        web.post("/_sim/faults", set_faults),
        web.delete("/_sim/faults", clear_faults),
        web.get("/_sim/state", state),
        web.get("/_sim/counters", counted),
        web.post("/_sim/counters/reset", reset_counters),
        web.get("/_sim/calls", list_calls),
    ]


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


# --- seeded realistic data both simulators draw their cases and orders from: names,
# phones, employers, streets, and subjects with their 12345 / 12351 codes ---

SURNAMES: Final = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN: Final = [
    "伟",
    "芳",
    "娜",
    "秀英",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "涛",
    "明",
    "超",
    "秀兰",
    "霞",
    "平",
]
EMPLOYERS: Final = [
    "某某科技有限公司",
    "某建筑劳务公司",
    "某物业管理公司",
    "某餐饮连锁店",
    "某快递站点",
    "某制造厂",
]
STREETS: Final = [
    "中关村街道",
    "建外街道",
    "望京街道",
    "金融街街道",
    "方庄地区",
    "回龙观地区",
    "亦庄地区",
    "永顺镇",
]
LABOUR_SUBJECTS: Final = [
    ("0202", "legal_aid", "公司拖欠三个月工资"),
    ("0201", "legal_aid", "单位未签订劳动合同"),
    ("0203", "legal_aid", "工伤认定后单位拒不赔付"),
    ("0204", "legal_aid", "单位未缴纳社会保险"),
    ("0205", "legal_aid", "加班不给调休也不付加班费"),
    ("0206", "legal_aid", "劳动争议申请调解"),
    ("0210", "union_membership", "咨询如何加入工会"),
    ("0211", "hardship_relief", "家庭困难申请帮扶"),
    ("0212", "mutual_aid", "职工互助保障理赔咨询"),
    ("0213", "service_activity", "咨询职工文体活动报名"),
]
CITY_SUBJECTS: Final = [
    ("0101", "小区门口占道经营"),
    ("0302", "宿舍暖气不热"),
    ("0401", "公交线路调整影响上下班"),
    ("0603", "工地夜间施工噪音扰民"),
    ("0701", "社区医院就诊排队时间过长"),
]


def person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def mobile(rng: random.Random) -> str:
    return "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))


def content_text(rng: random.Random, subject: str, employer: str) -> str:
    return (
        f"来电人反映：其在{employer}工作，{subject}。"
        f"已与单位多次沟通未果，希望相关部门尽快协调处理。诉求编号{rng.randint(1000, 9999)}。"
    )
