"""The 12345 client stays under 12345's published rate limit (20 requests/s per client,
`specs/hotline-12345.md`), as the simulator counts it."""

from __future__ import annotations

import asyncio

import pytest
from fixtures_12345 import (  # noqa: F401  (fixtures imported for their registration)
    h12345_client_fixture,
    h12345_config_fixture,
    h12345_ctl_fixture,
    h12345_root_fixture,
    h12345_session_fixture,
    h12345_sim_fixture,
)

from adapters.errors import RateLimited
from adapters.ratelimit import urgent


async def test_100_concurrent_calls_at_the_published_limit_get_no_429(h12345_client, h12345_ctl):
    await h12345_ctl.faults(rate_limit_per_s=20)
    order_no = await h12345_ctl.dispatch()
    assert h12345_client.budget.limit == 20  # the config default: the published limit

    async def call(i: int) -> None:
        with urgent(i % 10 == 0):  # urgent calls jump the queue, but count all the same
            if i % 2:
                await h12345_client.get_order(order_no)
            else:
                await h12345_client.list_dispatched(None)

    results = await asyncio.gather(*(call(i) for i in range(100)), return_exceptions=True)
    limited = [r for r in results if isinstance(r, RateLimited)]
    failed = [r for r in results if isinstance(r, BaseException)]
    assert limited == [] and failed == []
    assert not h12345_client.budget.slowed


async def test_a_429_makes_every_caller_of_the_client_wait_the_retry_after(
    h12345_client, h12345_ctl
):
    await h12345_client.token()
    await h12345_ctl.faults(burst_429=1, retry_after="1")
    with pytest.raises(RateLimited):
        await h12345_client.list_dispatched(None)
    assert h12345_client.budget.slowed
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.gather(*(h12345_client.list_dispatched(None) for _ in range(4)))
    assert loop.time() - start >= 0.9
