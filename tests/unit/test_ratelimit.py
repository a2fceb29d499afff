"""The per-hotline request budget (`adapters.ratelimit`): windows, priority, 429s."""

from __future__ import annotations

import asyncio
import bisect
from pathlib import Path

import aiohttp
import pytest
from structlog.testing import capture_logs

from adapters.hotline12345.adapter import Hotline12345
from adapters.hotline12345.config import Hotline12345Config
from adapters.hotline12351.config import Hotline12351Config
from adapters.ratelimit import JITTER_S, RequestBudget, is_urgent, urgent
from bridge.config import load_settings


def now() -> float:
    return asyncio.get_running_loop().time()


def most_in_any_window(stamps: list[float], width: float) -> int:
    """The most timestamps in any closed window [t, t + width] (sliding)."""
    stamps = sorted(stamps)
    return max(bisect.bisect_right(stamps, t + width) - i for i, t in enumerate(stamps))


async def test_saturated_budget_keeps_every_window_under_the_limit() -> None:
    """Sliding, fixed and jitter-widened 1-second windows: never more than the limit."""
    limit = 25
    budget = RequestBudget("12345", limit)
    stamps: list[float] = []

    async def call() -> None:
        await budget.acquire()
        stamps.append(now())

    start = now()
    await asyncio.gather(*(call() for _ in range(60)))
    elapsed = now() - start

    assert most_in_any_window(stamps, 1.0) <= limit
    # Calls released over 1 s + (almost) the jitter allowance still fit in one window.
    assert most_in_any_window(stamps, 1.0 + JITTER_S * 0.9) <= limit
    fixed: dict[int, int] = {}
    for t in stamps:
        fixed[int(t - start)] = fixed.get(int(t - start), 0) + 1
    assert max(fixed.values()) <= limit
    # ... and the budget is not needlessly slow: ≥ 75 % of the limit while saturated.
    assert len(stamps) / elapsed >= 0.75 * limit


async def test_urgent_goes_ahead_of_fifty_waiting_normal_calls() -> None:
    budget = RequestBudget("12345", 20)
    await budget.acquire()  # the bucket is full: everyone after this waits
    order: list[str] = []

    async def call(name: str, is_alert: bool) -> None:
        with urgent(is_alert):
            await budget.acquire()
        order.append(name)

    normal = [asyncio.create_task(call(f"n{i}", False)) for i in range(50)]
    await asyncio.sleep(0)  # all 50 are queued
    alert = asyncio.create_task(call("alert", True))
    await asyncio.wait_for(alert, timeout=2)
    assert order == ["alert"]
    await asyncio.sleep(0.2)
    assert order[1:3] == ["n0", "n1"]  # normal calls keep their FIFO order
    for task in normal:
        task.cancel()
    await asyncio.gather(*normal, return_exceptions=True)


async def test_cancelled_waiters_pass_their_turn_on() -> None:
    budget = RequestBudget("12345", 50)
    await budget.acquire()
    first = [asyncio.create_task(budget.acquire()) for _ in range(5)]
    await asyncio.sleep(0)
    for task in first:  # the pump among them
        task.cancel()
    await asyncio.gather(*first, return_exceptions=True)
    await asyncio.wait_for(budget.acquire(), timeout=1)


def test_urgent_is_a_scoped_flag() -> None:
    assert not is_urgent()
    with urgent():
        assert is_urgent()
        with urgent(False):
            assert is_urgent()  # an inner normal scope does not demote urgent work
    with urgent(False):
        assert not is_urgent()
    assert not is_urgent()


async def test_429_makes_every_caller_wait_and_halves_the_rate_for_a_cooldown() -> None:
    budget = RequestBudget("12345", 100, cooldown_s=0.4)
    full_rate = budget.rate_per_s
    assert full_rate is not None
    with capture_logs() as logs:
        budget.rate_limited(0.3)
        budget.rate_limited(0.2)  # a second 429 in the same episode: no second log line
        start = now()

        async def call(is_alert: bool) -> float:
            with urgent(is_alert):
                await budget.acquire()
            return now() - start

        waited = await asyncio.gather(*(call(i == 3) for i in range(6)))
        assert min(waited) >= 0.29  # nobody, urgent or not, goes before Retry-After
        assert budget.current_rate_per_s == pytest.approx(full_rate / 2)
        gaps = sorted(waited)
        assert gaps[-1] - gaps[0] >= 5 / (full_rate / 2) * 0.9  # paced at the halved rate
        await asyncio.sleep(0.75 - (now() - start))  # pause 0.3 + cool-down 0.4 have passed
        await budget.acquire()
        assert budget.current_rate_per_s == pytest.approx(full_rate)
        assert not budget.slowed
    states = [e["state"] for e in logs if e["event"] == "upstream.rate_limited"]
    assert states == ["slowed", "restored"]
    assert all(e["system"] == "12345" for e in logs)


@pytest.mark.parametrize("limit", [None, 0])
async def test_no_limit_means_no_waiting(limit: float | None) -> None:
    budget = RequestBudget("12351", limit)
    start = now()
    await asyncio.gather(*(budget.acquire() for _ in range(1000)))
    assert now() - start < 0.1
    assert budget.current_rate_per_s is None


async def test_no_limit_still_waits_out_a_retry_after() -> None:
    budget = RequestBudget("12351", None)
    budget.rate_limited(0.2)
    start = now()
    await budget.acquire()
    assert now() - start >= 0.19


def test_config_defaults_are_the_published_limits() -> None:
    c12345 = Hotline12345Config(
        base_url="http://x/api/v2", client_id="c", client_secret="s", unit_code="BJZGH"
    )
    assert c12345.rate_limit_rps == 20.0
    assert Hotline12351Config(base_url="http://x", api_key="k").rate_limit_rps is None


def test_rate_limit_keys_and_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(Path("bridge.example.toml").read_text(encoding="utf-8"), encoding="utf-8")
    settings = load_settings(path)
    assert settings.hotline12345 is not None and settings.hotline12345.rate_limit_rps == 20
    monkeypatch.setenv("BRIDGE_HOTLINE12345__RATE_LIMIT_RPS", "0")
    monkeypatch.setenv("BRIDGE_HOTLINE12351__RATE_LIMIT_RPS", "5")
    settings = load_settings(path)
    assert settings.hotline12345 is not None and settings.hotline12345.rate_limit_rps == 0
    assert settings.hotline12351 is not None and settings.hotline12351.rate_limit_rps == 5


async def test_the_adapter_and_its_client_share_one_budget() -> None:
    config = Hotline12345Config(
        base_url="http://x/api/v2", client_id="c", client_secret="s", unit_code="BJZGH"
    )
    async with aiohttp.ClientSession() as session:
        adapter = Hotline12345(session, config)
        assert adapter.budget is adapter.client.budget
        assert adapter.budget.limit == 20.0
