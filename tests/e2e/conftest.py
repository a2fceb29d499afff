"""Fixtures of the end-to-end tests (real RabbitMQ, simulators over HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from harness import require_broker

from bridge.demo import Simulators


@pytest.fixture
async def sims() -> AsyncIterator[Simulators]:
    await require_broker()
    async with Simulators(port_12345=0, port_12351=0, rate_limits=False) as running:
        yield running
