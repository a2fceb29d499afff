"""The work an admin call starts and answers 202 for: a replay job, a reconciliation.

Such work runs once. It is not a supervised task: the supervisor restarts a task that
crashes, and a job restarted would replay its letters again, endlessly if the cause
persists. Here a task that raises is logged (the exception's type only: its text may
carry personal data) and handed to its `on_error`, which records the failure where the
caller follows it (the job's row, the run's row); nothing dies silently. The admin
application holds every such task and cancels them when it stops (`aclose`, on the
app's cleanup, before the store closes); the work records that it was interrupted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)

OnError = Callable[[BaseException], Awaitable[None]]


async def _ignore(exc: BaseException) -> None:
    return None


class Background:
    """The running one-shot tasks of an admin application, by name."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, work: Coroutine[Any, Any, Any], on_error: OnError = _ignore) -> None:
        """Run `work` as task `name`. `on_error(exc)` runs if it raises, or if it is
        cancelled (`asyncio.CancelledError`) when the admin application stops."""
        task = asyncio.create_task(self._guard(name, work, on_error), name=name)
        self._tasks[name] = task
        task.add_done_callback(lambda _: self._tasks.pop(name, None))

    def running(self, name: str) -> bool:
        return name in self._tasks

    async def aclose(self) -> None:
        """Cancel every task and wait until each has recorded its interruption."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @staticmethod
    async def _guard(name: str, work: Coroutine[Any, Any, Any], on_error: OnError) -> None:
        try:
            await work
        except asyncio.CancelledError as exc:
            log.warning("job.interrupted", task=name)
            await _record(name, on_error, exc)
            raise
        except Exception as exc:
            log.error("job.crashed", task=name, error=type(exc).__name__)
            await _record(name, on_error, exc)


async def _record(name: str, on_error: OnError, exc: BaseException) -> None:
    try:
        await on_error(exc)
    except Exception as failure:  # the store is away: the next start marks it failed
        log.error("job.failure_unrecorded", task=name, error=type(failure).__name__)
