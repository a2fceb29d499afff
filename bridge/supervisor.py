"""The supervisor: runs every background task of a node, restarts one that crashes,
and gives up on the process when a task keeps crashing.

- A task is a name and a factory of coroutines (a fresh coroutine per start).
- A crash (any `Exception` out of the coroutine) is logged once as `task.crashed` with
  the exception's type only (its text may carry personal data); the task is started
  again after a back-off that doubles from `backoff_start_s` up to `backoff_max_s`.
- A task that runs `healthy_after_s` without crashing has its streak forgotten.
- A task whose streak of crashes has lasted longer than `crash_exit_after_s` makes the
  supervisor *fail*: `failed` is set and `failure` names the task; the daemon then
  stops and exits non-zero, so that the service manager starts a clean process.
- A task that returns normally is finished (a probe that saw its hotline answer).
- `CancelledError` goes through: `aclose()` cancels every task and waits for them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger(__name__)

TaskFactory = Callable[[], Coroutine[Any, Any, Any]]


@dataclass
class TaskState:
    """What the supervisor knows of one task (for readiness and status)."""

    name: str
    running: bool = True
    crashes: int = 0
    last_error: str | None = None
    failing_since: float | None = None  # monotonic time of the first crash of the streak


class Supervisor:
    def __init__(
        self,
        *,
        crash_exit_after_s: float = 300.0,
        backoff_start_s: float = 0.5,
        backoff_max_s: float = 30.0,
        healthy_after_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.crash_exit_after_s = crash_exit_after_s
        self.backoff_start_s = backoff_start_s
        self.backoff_max_s = backoff_max_s
        self.healthy_after_s = healthy_after_s
        self.clock = clock
        self.states: dict[str, TaskState] = {}
        self.failed = asyncio.Event()
        self.failure: str | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def spawn(self, name: str, factory: TaskFactory) -> None:
        """Run `factory()` under supervision as task `name` (unless one of that name
        still runs: a second probe of the same hotline is not needed)."""
        running = self._tasks.get(name)
        if running is not None and not running.done():
            return
        self.states[name] = TaskState(name)
        self._tasks[name] = asyncio.create_task(self._supervise(name, factory), name=name)

    def running(self, name: str) -> bool:
        task = self._tasks.get(name)
        return task is not None and not task.done()

    def failing(self) -> list[TaskState]:
        """Tasks in a streak of crashes, for readiness."""
        return [s for s in self.states.values() if s.failing_since is not None]

    async def stop(self, name: str) -> None:
        """Cancel one task and wait until it has stopped (its transaction settled)."""
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def _supervise(self, name: str, factory: TaskFactory) -> None:
        state = self.states[name]
        backoff = self.backoff_start_s
        while True:
            started = self.clock()
            try:
                await factory()
            except asyncio.CancelledError:
                state.running = False
                raise
            except Exception as exc:
                now = self.clock()
                if now - started >= self.healthy_after_s:
                    state.failing_since, backoff = None, self.backoff_start_s
                if state.failing_since is None:
                    state.failing_since = now
                state.crashes += 1
                state.last_error = type(exc).__name__
                streak_s = now - state.failing_since
                log.error(
                    "task.crashed",
                    task=name,
                    error=type(exc).__name__,
                    crashes=state.crashes,
                    failing_for_s=round(streak_s, 1),
                    restart_in_s=backoff,
                )
                if streak_s >= self.crash_exit_after_s:
                    self._fail(name, state)
                    return
                await asyncio.sleep(min(backoff, self._time_left(state, now)))
                backoff = min(backoff * 2, self.backoff_max_s)
                continue
            state.running, state.failing_since = False, None
            return

    def _time_left(self, state: TaskState, now: float) -> float:
        """Sleep no longer than the streak has left, so that the exit comes on time."""
        assert state.failing_since is not None
        return max(0.0, self.crash_exit_after_s - (now - state.failing_since)) + 0.01

    def _fail(self, name: str, state: TaskState) -> None:
        state.running = False
        self.failure = (
            f"task {name} kept crashing for {self.crash_exit_after_s:g}s "
            f"({state.crashes} crashes, last {state.last_error})"
        )
        log.critical("node.failed", task=name, error=state.last_error, crashes=state.crashes)
        self.failed.set()
