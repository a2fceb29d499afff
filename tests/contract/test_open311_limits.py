"""The Open311 adapter stays under 12385's rate limit (one budget for every call), honours
a 429's Retry-After, and never lets its api_key reach a log line or an error text."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta

import pytest
import structlog
from fixtures_open311 import (  # noqa: F401  (the s385 fixture)
    START,
    Sim385,
    create_form,
    running_sim,
    s385_fixture,
)

from adapters.base import Action
from adapters.errors import AdapterError, RateLimited
from adapters.open311 import Hotline385, Open311Config

SECRET = "sekret-385-k3y"
WINDOW_S = 3.0  # the real limit is 10 per 60 s; the same limit on a 3 s window runs in seconds


def test_the_default_budget_is_the_published_10_calls_per_minute():
    config = Open311Config(base_url="http://127.0.0.1:8385/open311/v2", api_key="k")
    assert (config.rate_limit_per_min, config.rate_period_s) == (10, 60.0)
    assert (config.jurisdiction_id, config.poll_interval_s) == ("bj.12385", 30.0)
    budget = Hotline385(None, config).budget  # type: ignore[arg-type]
    # paced as 10 per 61 s: the 1-s margin (`rate_margin_s`) for a call that arrives late
    assert budget.limit == 10 and budget.rate_per_s == pytest.approx(10 / 61.0)


def max_in_any_window(times: list[float], window_s: float) -> int:
    times = sorted(times)
    return max(sum(1 for u in times[i:] if u - t < window_s) for i, t in enumerate(times))


async def test_every_task_shares_one_budget_and_stays_under_the_limit():
    async with running_sim(rate_limit_per_min=10, rate_window_s=WINDOW_S) as s385:
        hotline = s385.adapter(rate_limit_per_min=10, rate_period_s=WINDOW_S)
        request_id = s385.referred_to_us()

        async def task(i: int) -> None:
            match i % 4:
                case 0:
                    await hotline.ping()
                case 1:
                    await hotline.fetch(request_id)
                case 2:
                    since = hotline.window_position("updates", START - timedelta(minutes=1))
                    await hotline.read_feed("updates", since)  # a window and 3-4 referrals
                case _:
                    form = create_form(external_ref=f"12351-2026-{i:07d}")
                    await hotline.perform(Action("create_request", form.external_ref, None, form))

        await asyncio.gather(*(task(i) for i in range(12)))
        calls = s385.sim.calls.calls_to()
        assert len(calls) >= 24
        assert s385.sim.counts["rate_limited"] == 0 and s385.sim.refusals == []
        assert max_in_any_window([c.at for c in calls], WINDOW_S) <= 10
        assert not hotline.budget.slowed


async def test_without_the_budget_the_simulator_answers_429_with_retry_after():
    async with running_sim(rate_limit_per_min=2) as s385:
        hotline = s385.adapter()  # no budget: the test's own
        await hotline.ping()
        await hotline.ping()
        with pytest.raises(RateLimited) as caught:
            await hotline.ping()
        assert 1 <= caught.value.retry_after <= 60


async def test_a_429_pauses_every_caller_for_its_retry_after(s385: Sim385):
    hotline = s385.adapter(rate_limit_per_min=600)
    await s385.control("POST", "/faults", {"burst_429": 1, "retry_after": "1"})
    with pytest.raises(RateLimited) as caught:
        await hotline.ping()
    assert caught.value.retry_after == 1 and hotline.budget.slowed
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.gather(hotline.ping(), hotline.fetch(s385.referred_to_us()))
    assert loop.time() - start >= 0.9


def _texts(exc: BaseException) -> str:
    parts, seen = [], exc
    while seen is not None:
        parts += [str(seen), repr(seen), repr(getattr(seen, "args", ()))]
        seen = seen.__cause__ or seen.__context__
    return " ".join(parts)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_the_api_key_is_in_no_log_line_and_no_error_text(capsys):
    async with running_sim(
        key=SECRET, api_keys={SECRET: "12351"}, rate_limit_per_min=3, rate_window_s=1.0
    ) as s385:
        failures: list[BaseException] = []

        async def attempt(call) -> None:
            try:
                await call
            except AdapterError as exc:
                failures.append(exc)

        async def no_time_passes(seconds: float) -> None:
            pass

        hasty = Hotline385(
            s385.session,
            s385.config(api_key=SECRET, token_polls=1, rate_limit_per_min=600),
            sleep=no_time_passes,
        )
        gone = s385.adapter(api_key=SECRET, base_url=f"http://127.0.0.1:{_free_port()}/open311/v2")
        slow = s385.adapter(api_key=SECRET, timeout_s=0.2)
        with structlog.testing.capture_logs() as logs:
            await attempt(s385.hotline.fetch("nope"))  # 404
            await attempt(s385.hotline.client.service_definition("DP-NONE"))  # 404
            form = create_form(service_code="DP-SUBSIDY")
            await attempt(s385.hotline.perform(Action("create_request", "k", None, form)))  # 400
            await attempt(s385.hotline.ping())  # 429 from the sim's limit of 3
            await attempt(hasty.ping())  # 429 again: the budget logs it
            form = create_form(service_code="DP-EMPLOY", external_ref="t-1")
            s385.sim.rate.set(None)
            await attempt(hasty.perform(Action("create_request", "t", None, form)))  # token
            await attempt(gone.ping())  # cannot connect
            await s385.control("POST", "/faults", {"latency_ms": 400})
            await attempt(slow.ping())  # timeout
            await s385.control("POST", "/faults", {"latency_ms": 0, "error_rate": 1.0})
            await attempt(s385.hotline.ping())  # 500
            await s385.control("POST", "/faults", {"error_rate": 0, "maintenance_s": 60})
            await attempt(s385.hotline.ping())  # 503
        assert len(failures) == 10, failures
        kinds = {type(f).__name__ for f in failures}
        assert {"NotFound", "Rejected", "RateLimited", "TransientError", "Unavailable"} <= kinds
        assert any(e["event"] == "upstream.rate_limited" for e in logs)
        assert any(e["event"] == "token.pending" for e in logs)
        for exc in failures:
            assert SECRET not in _texts(exc)
        assert SECRET not in repr(logs)
        out = capsys.readouterr()
        assert SECRET not in out.out + out.err
