"""Supervision in the real daemon: a task that keeps crashing (here: its store table
dropped under it) ends `hotline-bridge run` with a non-zero exit within
`crash_exit_after_s`, so that the service manager starts a clean process; and a poller
that crashes once is restarted and its feed goes on."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from harness import (
    Daemon,
    _in_thread,
    _pg_execute,
    cases_from,
    delete_namespace,
    new_namespace,
    running_node,
    settings_for,
    wait_until,
    write_config,
)
from sim_actions import dispatch
from test_crash import wait_started

from bridge.demo import Simulators

CRASH_EXIT_AFTER_S = 4.0


async def test_a_task_that_keeps_crashing_ends_the_daemon_non_zero(
    sims: Simulators, tmp_path: Path
) -> None:
    settings = settings_for(
        sims, tmp_path, new_namespace(), crash_exit_after_s=CRASH_EXIT_AFTER_S
    )
    write_config(settings, tmp_path / "bridge.toml")
    daemon = Daemon(tmp_path / "bridge.toml", tmp_path / "daemon.log")
    try:
        daemon.start()
        await wait_started(daemon, 1)
        drop_table(settings.store.url, "feed_positions")  # every poller's next tx fails
        dropped = time.monotonic()
        assert daemon.proc is not None
        while daemon.proc.poll() is None:
            assert time.monotonic() - dropped < CRASH_EXIT_AFTER_S + 15, "the daemon kept on"
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - dropped
        log = (tmp_path / "daemon.log").read_text("utf-8", "replace")
        assert daemon.proc.returncode == 1, log[-2000:]
        assert "task.crashed" in log and "node.failed" in log
        assert elapsed >= CRASH_EXIT_AFTER_S
        # the exit comes at the limit, plus one restart's crash and the clean stop
        assert elapsed < CRASH_EXIT_AFTER_S + 10, elapsed
    finally:
        daemon.kill()
        await delete_namespace(settings)


def drop_table(url: str, table: str) -> None:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute(f"DROP TABLE {table}")
    else:
        _in_thread(_pg_execute(url, f"DROP TABLE {table} CASCADE"))


class CrashOnce:
    """Wraps a hotline: its next feed read raises a bug-like error once."""

    def __init__(self, hotline) -> None:  # type: ignore[no-untyped-def]
        self._hotline = hotline
        self.crashed = False

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._hotline, name)

    async def read_feed(self, feed: str, position: str | None):  # type: ignore[no-untyped-def]
        if not self.crashed:
            self.crashed = True
            raise KeyError("a bug in the feed reader")
        return await self._hotline.read_feed(feed, position)


async def test_a_poller_that_crashes_once_is_restarted_and_its_feed_goes_on(
    sims: Simulators, tmp_path: Path
) -> None:
    async with running_node(sims, tmp_path) as node:
        poller = next(p for p in node.pollers if p.feed == "dispatched")
        await node.supervisor.stop(poller.name)
        poller.hotline = CrashOnce(poller.hotline)  # type: ignore[assignment]
        node.spawn(poller.name, poller.run)
        no = await dispatch(sims)
        await wait_until(lambda: len(cases_from(sims, no)) == 1, what="case after the crash")
        assert poller.hotline.crashed  # type: ignore[attr-defined]
        assert node.supervisor.states[poller.name].crashes == 1
        assert not node.supervisor.failed.is_set()
