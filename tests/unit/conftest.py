"""Fixtures of the unit tests that more than one module uses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.store import Store
from tests.unit.adminkit import STORE_KINDS, Admin, MovableClock, admin_node, store_url


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def url(store_kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a fresh store of each kind (a module may define its own `url`)."""
    async with store_url(store_kind, tmp_path) as url:
        yield url


@pytest.fixture
async def store(url: str) -> AsyncIterator[Store]:
    """A store connected at `url`, closed after the test."""
    store = await Store.connect(url)
    try:
        yield store
    finally:
        await store.aclose()


@pytest.fixture
async def clock_admin(tmp_path: Path, store_kind: str) -> AsyncIterator[tuple[Admin, MovableClock]]:
    """An admin node on each store kind whose store clock the test moves."""
    clock = MovableClock()
    async with (
        store_url(store_kind, tmp_path) as url,
        admin_node(tmp_path, store_url=url, clock=clock) as admin,
    ):
        yield admin, clock
