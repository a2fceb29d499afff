"""Fixtures of the 12385 (Open311) contract tests: the simulator on a real port, the
adapter over a real `aiohttp.ClientSession` on the simulator's clock, and helpers for raw
calls (what the typed client would never send).

Imported by the test modules (no shared conftest.py in this folder).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from yarl import URL

from adapters.open311 import Hotline385, Open311Config
from adapters.open311.sim.server import BASE_PATH, Simulator385, serve
from adapters.simkit import SimClock
from schemas.open311 import CreateRequestForm, open311_time

KEY = "demo-key"
OTHER_KEY = "city-key"
START = datetime(2026, 11, 29, 1, 12, 44, tzinfo=UTC)  # 09:12:44 in Beijing
KEYS = {KEY: "12351", OTHER_KEY: "12345"}


@dataclass
class Sim385:
    """One running simulator and an adapter pointed at it."""

    sim: Simulator385
    root: str  # http://127.0.0.1:<port>
    session: aiohttp.ClientSession
    hotline: Hotline385

    @property
    def clock(self) -> SimClock:
        return self.sim.clock

    def config(self, **overrides: Any) -> Open311Config:
        values = {
            "base_url": self.root + BASE_PATH,
            "api_key": KEY,
            "timeout_s": 5,
            "rate_limit_per_min": None,
        } | overrides
        return Open311Config(**values)

    def adapter(self, **overrides: Any) -> Hotline385:
        """An adapter on the simulator's clock: its sleeps move that clock (no real wait)."""

        async def sleep(seconds: float) -> None:
            self.clock.advance(seconds)

        return Hotline385(self.session, self.config(**overrides), sleep=sleep, now=self.clock.now)

    async def raw(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        form: list[tuple[str, str]] | None = None,
        json: Any = None,
        key: str | None = KEY,
    ) -> tuple[int, dict[str, str], Any]:
        """A call under the base path; `query` is sent verbatim (the key added first for
        a GET, into the form for a POST)."""
        if method == "GET" and key is not None:
            query = f"api_key={key}" + (f"&{query}" if query else "")
        if form is not None and key is not None:
            form = [("api_key", key), *form]
        url = URL(f"{self.root}{BASE_PATH}{path}" + (f"?{query}" if query else ""), encoded=True)
        async with self.session.request(method, url, data=form, json=json) as resp:
            body = await resp.json(content_type=None) if await resp.read() else None
            return resp.status, dict(resp.headers), body

    async def control(self, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, f"{self.root}/_sim{path}", json=json) as resp:
            return resp.status, await resp.json(content_type=None)

    def referred_to_us(self, **fields: Any) -> str:
        """A request 12385 staff took by phone and referred to 12351; its id."""
        request = self.sim.staff_request(**(REQUEST_FIELDS | fields))
        self.sim.refer(request["service_request_id"], "12351")
        return request["service_request_id"]

    def updates_of(self, request_id: str) -> list[dict[str, Any]]:
        return [u.json for u in self.sim.book.updates if u.json["service_request_id"] == request_id]


REQUEST_FIELDS: dict[str, Any] = {
    "service_code": "DP-RIGHTS",
    "description": "来电人反映：用人单位拖欠残疾职工工资。",
    "address_string": "北京市海淀区某街道1号",
    "first_name": "某某",
    "last_name": "王",
    "phone": "13812345678",
}


def create_form(**overrides: Any) -> CreateRequestForm:
    values: dict[str, Any] = {
        "service_code": "DP-RIGHTS",
        "external_ref": "12351-2026-0001234",
        "confidential": True,
        "description": "职工反映：无障碍设施被占用，影响出行。",
        "address_string": "北京市朝阳区建外街道2号",
        "first_name": "某",
        "last_name": "李",
        "phone": "010-62345678",
    } | overrides
    return CreateRequestForm(**values)


def q(when: datetime) -> str:
    """A time for a raw query, its `+` encoded."""
    return open311_time(when).replace("+", "%2B")


@contextlib.asynccontextmanager
async def running_sim(key: str = KEY, **sim_options: Any) -> AsyncIterator[Sim385]:
    """The simulator serving on 127.0.0.1 (any port), seeded, rate limit off unless
    `sim_options` say otherwise, and an adapter with the `KEY` client's credentials."""
    options = {"rate_limit_per_min": None, "api_keys": KEYS} | sim_options
    sim = Simulator385(clock=SimClock(START), seed=12385, **options)
    runner = await serve(sim, "127.0.0.1", 0)
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            harness = Sim385(sim, f"http://127.0.0.1:{port}", session, hotline=None)  # type: ignore[arg-type]
            harness.hotline = harness.adapter(api_key=key)
            yield harness
            await harness.hotline.aclose()
    finally:
        await runner.cleanup()


@pytest.fixture(name="s385")
async def s385_fixture() -> AsyncIterator[Sim385]:
    """The seeded simulator (no rate limit) on a clock starting at `START`, the adapter."""
    async with running_sim() as harness:
        yield harness
