"""Fixtures of the 12351 contract tests: the simulator on a real port, the adapter over a
real `aiohttp.ClientSession`, and helpers for raw calls (what the typed client would
never send: unknown fields, malformed headers).

Imported by the test modules (no shared conftest.py in this folder).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict
from yarl import URL

from adapters.hotline12351 import Client12351, Hotline12351, Hotline12351Config
from adapters.hotline12351.sim.server import BASE_PATH, Simulator12351, serve
from adapters.simkit import SimClock
from schemas.hotline12351 import CreateCaseRequest, OriginIn, WorkerIn

KEY = "demo-key"
CLIENT_NAME = "hotline-bridge"
START = datetime(2026, 11, 29, 1, 12, 44, tzinfo=UTC)  # 09:12:44 in Beijing


@dataclass
class Sim12351:
    """One running simulator and an adapter pointed at it."""

    sim: Simulator12351
    clock: SimClock
    root: str  # http://127.0.0.1:<port>
    session: aiohttp.ClientSession
    hotline: Hotline12351

    @property
    def client(self) -> Client12351:
        return self.hotline.client

    def config(self, **overrides: Any) -> Hotline12351Config:
        values = {"base_url": self.root + BASE_PATH, "api_key": KEY, "timeout_s": 5} | overrides
        return Hotline12351Config(**values)

    def adapter(self, **overrides: Any) -> Hotline12351:
        return Hotline12351(self.session, self.config(**overrides))

    async def raw(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        key: str | None = KEY,
        query: str = "",
    ) -> tuple[int, CIMultiDict[str], Any]:
        """A call under the API base path as typed; `query` is sent verbatim."""
        all_headers = {"Authorization": f"Bearer {key}"} if key else {}
        url = f"{self.root}{BASE_PATH}{path}" + (f"?{query}" if query else "")
        async with self.session.request(
            method,
            URL(url, encoded=True),
            json=json,
            headers=all_headers | (headers or {}),
        ) as resp:
            body = await resp.json(content_type=None) if await resp.read() else None
            return resp.status, CIMultiDict(resp.headers), body

    async def control(self, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        """A `/_sim` control call."""
        async with self.session.request(method, f"{self.root}/_sim{path}", json=json) as resp:
            return resp.status, await resp.json(content_type=None)

    def transferred_case(self, to: str = "12345") -> dict[str, Any]:
        """A case a union agent recorded and handed to another hotline."""
        return self.sim.record_case(
            subject="宿舍暖气不热",
            district_code="110108",
            transfer={"to": to, "reason": "非工会职责", "category": "0302"},
        )

    async def partner_case(self, key: str = "create-1", **overrides: Any) -> dict[str, Any]:
        case, _ = await self.client.create_case(create_request(**overrides), key)
        return self.sim.cases[case.id]

    def respond(self, case_id: str) -> None:
        """The union's agents take a case through to `responded`."""
        for step in ("dispatch", "handle"):
            self.sim.agent(case_id, step)
        self.sim.agent(case_id, "respond", text="已协调单位补发工资", resolved=True)


def create_request(**overrides: Any) -> CreateCaseRequest:
    values: dict[str, Any] = {
        "origin": OriginIn(
            system="12345",
            external_no="BJ12345-20261129-004211",
            deadline=datetime(2026, 12, 4, 9, 0, tzinfo=UTC),
        ),
        "worker": WorkerIn(name="王某某", phone="138-1234-5678"),
        "district_code": "110108",
        "service_type": "legal_aid",
        "priority": "high",
        "subject": "公司拖欠三个月工资",
        "description": "来电人反映单位拖欠工资。",
        "location": "海淀区某街道某号",
    } | overrides
    return CreateCaseRequest(**values)


def create_json(**overrides: Any) -> dict[str, Any]:
    """A valid `POST /cases` body as plain JSON, for raw calls."""
    return create_request().model_dump(mode="json", exclude_none=True) | overrides


class FrozenClock(SimClock):
    """A clock that moves only when told: changes made in a row share one `updated_at`,
    which is what the feed's exact-mark dedup must cope with."""

    def __init__(self, start: datetime) -> None:
        super().__init__()
        self._at = start

    def now(self) -> datetime:
        return self._at

    def advance(self, seconds: float) -> None:
        self._at += timedelta(seconds=seconds)


@contextlib.asynccontextmanager
async def running_sim(clock: SimClock, **config: Any) -> AsyncIterator[Sim12351]:
    """The simulator serving on 127.0.0.1 (any port) and an adapter with the `KEY`
    client's credentials (`config` overrides its settings, e.g. `page_limit`)."""
    sim = Simulator12351(clock=clock, seed=12351, api_keys={KEY: CLIENT_NAME, "other-key": "ops"})
    runner = await serve(sim, "127.0.0.1", 0)
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            root = f"http://127.0.0.1:{port}"
            harness = Sim12351(sim, clock, root, session, hotline=None)  # type: ignore[arg-type]
            harness.hotline = harness.adapter(**config)
            yield harness
            await harness.hotline.aclose()
    finally:
        await runner.cleanup()


@pytest.fixture(name="s12351")
async def s12351_fixture() -> AsyncIterator[Sim12351]:
    """The simulator on a moving clock starting at `START`, and the adapter."""
    async with running_sim(SimClock(START)) as harness:
        yield harness


@pytest.fixture(name="s12351_frozen")
async def s12351_frozen_fixture() -> AsyncIterator[Sim12351]:
    """The simulator on a `FrozenClock`, and the adapter reading pages of 3."""
    async with running_sim(FrozenClock(START), page_limit=3) as harness:
        yield harness
