"""Fixtures for the 12345 contract tests: the simulator on a real port, a session, the
client and the adapter pointed at it. Import the `*_fixture` functions into a test module
(that registers them under their `h12345_*` names)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from adapters.hotline12345.adapter import Hotline12345
from adapters.hotline12345.client import Client12345
from adapters.hotline12345.config import Hotline12345Config
from adapters.hotline12345.sim.server import Simulator12345, serve
from adapters.simkit import BEIJING, SimClock
from schemas.hotline12345 import CreateOrderRequest

START = datetime(2026, 11, 29, 9, 0, 0, tzinfo=BEIJING)


def create_request(request_id: str = "req-1", **changes: Any) -> CreateOrderRequest:
    """A create body, unvalidated so that tests can send what 12345 must refuse."""
    fields = {
        "requestId": request_id,
        "sourceNo": "12351-2026-0001234",
        "title": "宿舍暖气不热",
        "content": "职工反映宿舍暖气不热，已持续一周。",
        "callerName": "王伟",
        "callerPhone": "010-62345678",
        "category": "0302",
        "areaCode": "110105",
        "streetCode": "110105012",
        "address": "朝阳区某街道1号",
        "urgency": "1",
    }
    return CreateOrderRequest.model_construct(**(fields | changes))


class SimControl:
    """The simulator's `/_sim` routes over HTTP."""

    def __init__(self, session: aiohttp.ClientSession, root: str) -> None:
        self.session, self.root = session, root

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        async with self.session.post(f"{self.root}{path}", json=body or {}) as resp:
            assert resp.status < 300, f"{path}: {resp.status} {await resp.text()}"
            return await resp.json()

    async def state(self) -> dict[str, Any]:
        async with self.session.get(f"{self.root}/_sim/state") as resp:
            return await resp.json()

    async def dispatch(self, **fields: Any) -> str:
        return (await self.post("/_sim/orders", fields))["orderNos"][0]

    async def step(self, order_no: str, step: str, **body: Any) -> dict[str, Any]:
        return await self.post(f"/_sim/orders/{order_no}/{step}", body)

    async def faults(self, **faults: Any) -> None:
        await self.post("/_sim/faults", faults)

    async def advance(self, seconds: float) -> None:
        await self.post("/_sim/advance", {"seconds": seconds})


@pytest.fixture(name="h12345_sim")
def h12345_sim_fixture() -> Simulator12345:
    return Simulator12345(clock=SimClock(START), rate_limit_per_s=None, seed=7)


@pytest.fixture(name="h12345_root")
async def h12345_root_fixture(h12345_sim: Simulator12345) -> AsyncIterator[str]:
    runner = await serve(h12345_sim, "127.0.0.1", 0)
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


@pytest.fixture(name="h12345_session")
async def h12345_session_fixture() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(name="h12345_config")
def h12345_config_fixture(h12345_root: str) -> Hotline12345Config:
    return Hotline12345Config(
        base_url=f"{h12345_root}/api/v2",
        client_id="demo-client",
        client_secret="demo-secret",
        unit_code="BJZGH",
        timeout_s=5,
    )


@pytest.fixture(name="h12345_client")
def h12345_client_fixture(h12345_session, h12345_config) -> Client12345:
    return Client12345(h12345_session, h12345_config)


@pytest.fixture(name="h12345_adapter")
def h12345_adapter_fixture(h12345_session, h12345_config) -> Hotline12345:
    return Hotline12345(h12345_session, h12345_config)


@pytest.fixture(name="h12345_ctl")
def h12345_ctl_fixture(h12345_session, h12345_root) -> SimControl:
    return SimControl(h12345_session, h12345_root)
