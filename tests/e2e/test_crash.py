"""Crash safety: the bridge as a real `hotline-bridge run` process, SIGKILLed several
times in the middle of a steady two-way flow and restarted on the same SQLite store.
Nothing is lost and nothing happens twice: asserted on what the simulators hold."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from pathlib import Path

import pytest
from harness import (
    Daemon,
    Flow,
    assert_exactly_once,
    delete_namespace,
    new_namespace,
    settings_for,
    wait_until,
    write_config,
)
from sim_actions import refused_calls

from bridge.demo import Simulators
from bridge.store import Store

KILLS = 4


async def wait_started(daemon: Daemon, starts: int, timeout: float = 20.0) -> None:
    """Until the daemon's log shows its `starts`-th `node.started`."""

    def started() -> bool:
        assert daemon.proc is not None
        if daemon.proc.poll() is not None:
            raise AssertionError(
                f"the daemon exited with {daemon.proc.returncode}; see {daemon.log_file}"
            )
        text = daemon.log_file.read_text("utf-8", "replace")
        return text.count("node.started") >= starts

    await wait_until(started, timeout, what=f"daemon start #{starts}")


async def stop(daemon: Daemon, timeout: float = 20.0) -> int | None:
    """SIGTERM, then wait without blocking the loop (the simulators it talks to run
    here): the exit code, or None if it did not exit in time (then it is killed)."""
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while daemon.proc.poll() is None:
        if time.monotonic() > deadline:
            daemon.kill()
            return None
        await asyncio.sleep(0.1)
    return daemon.proc.returncode


KILL_WINDOW_REFUSALS = {
    "POST /orders/{orderNo}/sign",
    "POST /orders/{orderNo}/reply",
    "POST /orders/{orderNo}/return",
    "POST /orders/{orderNo}/extension",
}
"""12345 takes no key for these: a SIGKILL after 12345 executed one and before the ledger
recorded it makes the restarted node send it again, 12345 refuses the repeat (40002),
and the node reads the order and records the action as already applied."""


@pytest.mark.refusals("SIGKILL between a 12345 action and its record: the repeat is refused")
async def test_sigkill_mid_stream_loses_nothing_and_repeats_nothing(
    sims: Simulators, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # write_config writes secrets masked ("**********"): the daemon gets them from its
    # environment, as a deployment would (BRIDGE_<SECTION>__<KEY>).
    monkeypatch.setenv("BRIDGE_HOTLINE12345__CLIENT_SECRET", sims.client_secret)
    monkeypatch.setenv("BRIDGE_HOTLINE12351__API_KEY", sims.api_key)
    settings = settings_for(sims, tmp_path, new_namespace(), node_id=f"crash-{tmp_path.name}")
    config = tmp_path / "bridge.toml"
    write_config(settings, config)
    daemon = Daemon(config, tmp_path / "daemon.log")
    flow = Flow(sims, seed=11)
    rng = random.Random(5)
    try:
        daemon.start()
        await wait_started(daemon, 1)
        flow.start()
        for n in range(KILLS):
            await asyncio.sleep(rng.uniform(1.0, 3.0))
            daemon.kill()  # SIGKILL: no clean-up of any kind
            assert daemon.proc is not None and daemon.proc.returncode == -signal.SIGKILL
            await asyncio.sleep(rng.uniform(0.0, 0.5))
            daemon.start()
            await wait_started(daemon, n + 2)
        await asyncio.sleep(1.0)
        flow.producing = False
        assert len(flow.orders) >= 10 and len(flow.cases) >= 10, flow.summary()

        await wait_until(flow.done, 60, what=f"convergence: {flow.summary()}")
        assert_exactly_once(sims, flow)
        signed = [no for no in flow.orders if sims.sim12345.orders[no]["orderStatus"] != "10"]
        assert len(signed) == len(flow.orders)

        assert await stop(daemon) == 0, f"no clean stop on SIGTERM; see {daemon.log_file}"
        store = await Store.connect(settings.store.url)
        try:
            stats = await store.stats()
        finally:
            await store.aclose()
        assert stats["dead_letters"]["parked"] == 0, stats  # nothing given up on
        unexpected = [  # a line reads "<system> <method> <route> <code> ..."
            line
            for line in refused_calls(sims)
            if " ".join(line.split()[1:3]) not in KILL_WINDOW_REFUSALS or line.split()[3] != "40002"
        ]
        assert unexpected == [], unexpected
    finally:
        await flow.aclose()
        daemon.kill()
        await delete_namespace(settings)
