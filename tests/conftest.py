"""What every test directory shares: a broker left able to run quorum queues after the
tests that stop it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from collections.abc import Iterator

import pytest

from bridge.transport.probe import restart_app_until_healthy

AMQP_URL = os.environ.get("HB_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


@pytest.fixture(autouse=True)
def _broker_healthy_after_a_restart(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a `broker_restart` test, once its own fixtures are torn down (its queues
    deleted): probe the broker with a quorum queue round trip again and restart the app
    until that works. RabbitMQ 3.10.8 was seen here to pass the probe right after
    `start_app` and then fail every quorum queue declared a moment later
    (`INTERNAL_ERROR`), which broke the tests that came next."""
    yield
    if request.node.get_closest_marker("broker_restart") is None:
        return

    async def heal() -> None:
        await asyncio.sleep(2.0)
        await restart_app_until_healthy(AMQP_URL)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, heal()).result()
