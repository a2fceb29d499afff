"""The supervisor: crashed tasks are restarted, a task that keeps crashing fails the node,
and no crash goes unlogged or logs its (possibly personal) text."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from bridge.supervisor import Supervisor


async def test_a_task_that_crashes_once_is_restarted() -> None:
    runs: list[int] = []
    done = asyncio.Event()

    async def task() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("王某 13800138000")
        done.set()
        await asyncio.Event().wait()

    supervisor = Supervisor(crash_exit_after_s=10, backoff_start_s=0.01)
    with capture_logs() as logs:
        supervisor.spawn("worker", task)
        await asyncio.wait_for(done.wait(), 5)
    await supervisor.aclose()
    assert runs == [0, 1]
    crashed = [e for e in logs if e["event"] == "task.crashed"]
    assert len(crashed) == 1 and crashed[0]["error"] == "RuntimeError"
    assert "13800138000" not in repr(logs) and "王某" not in repr(logs)
    assert not supervisor.failed.is_set()


async def test_a_task_that_keeps_crashing_fails_the_node_within_the_limit() -> None:
    async def task() -> None:
        raise OSError("store gone")

    supervisor = Supervisor(crash_exit_after_s=0.5, backoff_start_s=0.05, backoff_max_s=0.1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    supervisor.spawn("poller.x", task)
    await asyncio.wait_for(supervisor.failed.wait(), 5)
    elapsed = loop.time() - started
    assert 0.5 <= elapsed < 0.8
    assert supervisor.failure is not None and "poller.x" in supervisor.failure
    assert [s.name for s in supervisor.failing()] == ["poller.x"]
    await supervisor.aclose()


async def test_a_healthy_run_forgets_the_streak() -> None:
    """Crashes far apart (a run of `healthy_after_s` between them) never fail the node."""
    clock = [0.0]
    crashes = 0

    async def task() -> None:
        nonlocal crashes
        clock[0] += 100.0  # each run lasts 100 s of the supervisor's clock
        crashes += 1
        if crashes < 6:
            raise RuntimeError
        await asyncio.Event().wait()

    supervisor = Supervisor(
        crash_exit_after_s=150, backoff_start_s=0, healthy_after_s=60, clock=lambda: clock[0]
    )
    supervisor.spawn("relay", task)
    for _ in range(100):
        await asyncio.sleep(0)
    assert crashes == 6 and not supervisor.failed.is_set()
    await supervisor.aclose()


async def test_a_task_that_returns_is_finished_and_can_be_spawned_again() -> None:
    runs = 0

    async def probe() -> None:
        nonlocal runs
        runs += 1

    supervisor = Supervisor()
    supervisor.spawn("probe.12351", probe)
    await asyncio.sleep(0.01)
    assert not supervisor.running("probe.12351")
    supervisor.spawn("probe.12351", probe)
    await asyncio.sleep(0.01)
    assert runs == 2
    await supervisor.aclose()
