"""A paused target is probed until its hotline answers and its consumers run again, even
when resuming them fails at first (the broker channel being restored)."""

from __future__ import annotations

import asyncio
from typing import Any

from adapters.errors import Unavailable
from bridge.app import Node
from bridge.supervisor import Supervisor


class FakeHotline:
    system = "12351"

    def __init__(self, down_for: int) -> None:
        self.down_for = down_for
        self.pings = 0

    async def ping(self) -> None:
        self.pings += 1
        if self.pings <= self.down_for:
            raise Unavailable("12351", "HTTP 503")


class FakeTransport:
    def __init__(self, failing_resumes: int) -> None:
        self.failing_resumes = failing_resumes
        self.resumes = 0
        self.consuming = True

    async def pause(self, target: str) -> None:
        self.consuming = False

    async def resume(self, target: str) -> None:
        self.resumes += 1
        if self.resumes <= self.failing_resumes:
            raise ConnectionError("channel is being restored")
        self.consuming = True


class FakeSide:
    def __init__(self, hotline: FakeHotline) -> None:
        self.hotline = hotline


def node_with(hotline: FakeHotline, transport: FakeTransport) -> Node:
    fake: Any = None
    return Node(
        settings=fake,
        store=fake,
        transport=transport,  # type: ignore[arg-type]
        sides={"12351": FakeSide(hotline)},  # type: ignore[dict-item]
        appliers={},
        pollers=[],
        relay=fake,
        node_id="test",
        supervisor=Supervisor(),
        probe_interval_s=0.01,
    )


async def test_a_failed_resume_is_retried_until_consumers_run_again() -> None:
    hotline, transport = FakeHotline(down_for=2), FakeTransport(failing_resumes=3)
    node = node_with(hotline, transport)
    await node.pause_target("12351")
    assert not transport.consuming and node.paused == {"12351"}
    for _ in range(200):
        if transport.consuming:
            break
        await asyncio.sleep(0.01)
    assert transport.consuming and node.paused == set()
    assert transport.resumes == 4 and hotline.pings >= 3
    await node.supervisor.aclose()


async def test_pausing_twice_runs_one_probe() -> None:
    hotline, transport = FakeHotline(down_for=10**6), FakeTransport(failing_resumes=0)
    node = node_with(hotline, transport)
    await node.pause_target("12351")
    await node.pause_target("12351")
    assert [n for n in node.supervisor.states if n.startswith("probe.")] == ["probe.12351"]
    await node.supervisor.aclose()
