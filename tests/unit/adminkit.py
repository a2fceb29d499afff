"""A node of a real store and supervisor with fakes of the broker, hotlines and feed
pollers, its admin server on port 0 over real HTTP: what the admin API tests share.

    async with admin_node(tmp_path, tokens={"r": "read", "o": "operate"}) as admin:
        status, content_type, body = await admin.get("/api/v1/status", token="r")
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from sqlalchemy.engine import make_url

from adapters.ratelimit import RequestBudget
from bridge.admin import serve_admin
from bridge.app import Node
from bridge.config import Settings
from bridge.partners import Deployment, Side
from bridge.store import Clock, Store, utc_now
from bridge.supervisor import Supervisor

READ, OPERATE = "read-token-for-tests", "operate-token-for-tests"
POSTGRES_ADMIN_URL = os.environ.get(
    "HB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
STORE_KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
"""Parametrize a `store_kind` argument with these to run a test on both stores."""
TOKENS = {READ: "read", OPERATE: "operate"}


class FakeTransport:
    connected = True

    def __init__(self) -> None:
        self.states = {"12345": "ok", "12351": "ok"}
        self.depths: dict[str, int | None] = {"12345": 0, "12351": 0}

    def consumers_state(self, target: str) -> str:
        return self.states[target]

    async def queue_depths(self, target: str) -> int | None:
        return self.depths[target]


@dataclass
class FakeHotline:
    system: str


@dataclass
class FakePoller:
    hotline: FakeHotline
    feed: str
    failing: bool = False
    last_error: str | None = None
    last_success: datetime | None = None


@dataclass
class Admin:
    node: Node
    url: str
    http: aiohttp.ClientSession

    async def get(self, path: str, token: str | None = None) -> tuple[int, str, Any]:
        return await self.call("GET", path, token=token)

    async def post(
        self, path: str, json: Any = None, token: str | None = OPERATE
    ) -> tuple[int, str, Any]:
        return await self.call("POST", path, token=token, json=json)

    async def call(
        self, method: str, path: str, *, token: str | None = None, json: Any = None
    ) -> tuple[int, str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(method, self.url + path, headers=headers, json=json) as resp:
            text = await resp.text()
            body = text if path == "/metrics" else await resp.json(content_type=None)
            return resp.status, resp.content_type, body


@contextlib.asynccontextmanager
async def store_url(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh store URL: a SQLite file in `tmp_path`, or a PostgreSQL database of its
    own on the local server, dropped at the end (an unreachable server fails)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'bridge.db'}"
        return
    name = f"hb_admin_{uuid.uuid4().hex[:10]}"
    await _postgres(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(False)
    finally:
        await _postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _postgres(statement: str) -> None:
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def admin_node(
    tmp_path: Path,
    *,
    tokens: dict[str, str] | None = None,
    store_url: str | None = None,
    clock: Clock = utc_now,
    deployment: Deployment | None = None,
) -> AsyncIterator[Admin]:
    """The admin server of a node with a real store (SQLite in `tmp_path` unless
    `store_url`; stamped by `clock`), real supervisor, fake broker/hotlines/pollers;
    its partners are `deployment`'s (default: the settings', 12345 and 12351)."""
    settings = Settings(admin={"listen": "127.0.0.1:0", "tokens": tokens or TOKENS})
    async with AsyncExitStack() as stack:
        store = await Store.connect(store_url or f"sqlite:///{tmp_path / 'bridge.db'}", clock=clock)
        stack.push_async_callback(store.aclose)
        supervisor = Supervisor(backoff_start_s=0.01, backoff_max_s=0.01)
        stack.push_async_callback(supervisor.aclose)
        sides: dict[str, Any] = {
            s: Side(s, FakeHotline(s), None, None, RequestBudget(s, None))  # type: ignore[arg-type]
            for s in ("12345", "12351")
        }
        now = clock()
        pollers: Any = [
            FakePoller(FakeHotline("12345"), "dispatched", last_success=now - timedelta(seconds=3)),
            FakePoller(FakeHotline("12351"), "changes", last_success=now),
        ]
        node = Node(
            settings=settings,
            store=store,
            transport=FakeTransport(),  # type: ignore[arg-type]
            sides=sides,
            appliers=dict.fromkeys(sides),  # type: ignore[arg-type]
            pollers=pollers,
            relay=None,  # type: ignore[arg-type]
            node_id="test",
            supervisor=supervisor,
            deployment=deployment,
        )
        url = await serve_admin(node, stack)
        assert url is not None and not url.endswith(":0")
        http = await stack.enter_async_context(aiohttp.ClientSession())
        yield Admin(node, url, http)


T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


class MovableClock:
    """A store clock a test moves by setting `now`."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now
