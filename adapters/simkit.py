"""What both hotline simulators share: a clock tests can move, switchable faults and
rate limits, seeded realistic data, and the control routes under `/_sim`.

Control API (JSON, on each simulator's server, outside its base path):

| route | body | effect |
|---|---|---|
| `POST /_sim/advance` | `{"seconds": s}` | move the clock forward |
| `POST /_sim/faults` | any `Faults` fields | switch faults (merged into the current ones) |
| `DELETE /_sim/faults` | – | all faults off |
| `GET /_sim/state` | – | dump the whole state (simulator-specific) |

Each simulator adds its own seed / workflow routes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

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

    async def check(self, client: str) -> web.Response | None:
        """A fault response for this call, or None to serve it normally."""
        f = self.faults
        if f.latency_ms:
            await asyncio.sleep(f.latency_ms / 1000)
        if f.maintenance_until is not None and self.clock.now() < f.maintenance_until:
            return web.Response(
                status=503, text="<html>系统维护中</html>", content_type="text/html"
            )
        if f.burst_429 > 0:
            f.burst_429 -= 1
            return web.Response(
                status=429, text="Too Many Requests", headers={"Retry-After": f.retry_after}
            )
        if self._rate_limited(client):
            return web.Response(status=429, text="Too Many Requests", headers={"Retry-After": "1"})
        if f.error_rate and self._rng.random() < f.error_rate:
            return web.Response(status=f.error_status, text="Internal Server Error")
        return None


def control_routes(
    clock: SimClock,
    faults: FaultInjector,
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
        return web.json_response(result, dumps=_dumps)

    return [
        web.post("/_sim/advance", advance),
        web.post("/_sim/faults", set_faults),
        web.delete("/_sim/faults", clear_faults),
        web.get("/_sim/state", state),
    ]


def _dumps(value: object) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, default=str)


# --- seeded realistic data -------------------------------------------------------------

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
