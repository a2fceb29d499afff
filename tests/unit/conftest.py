"""Fixtures of the unit tests that more than one module uses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.unit.adminkit import STORE_KINDS, Admin, MovableClock, admin_node, store_url


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def clock_admin(tmp_path: Path, store_kind: str) -> AsyncIterator[tuple[Admin, MovableClock]]:
    """An admin node on each store kind whose store clock the test moves."""
    clock = MovableClock()
    async with (
        store_url(store_kind, tmp_path) as url,
        admin_node(tmp_path, store_url=url, clock=clock) as admin,
    ):
        yield admin, clock
