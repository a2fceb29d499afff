"""The outbox relay's retry policy, and what a lost connection costs a message (nothing).

The broker's own answers (returned, nacked) are tested against RabbitMQ in
``tests/integration/test_relay.py``; a lost connection is a fake transport here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bridge.engine.relay import OutboxRelay, RelayPolicy
from bridge.store import OutboxMessage, Store
from bridge.transport import PublishError, PublishFailure, Topology


@pytest.mark.parametrize(
    ("failures", "delay_s"),
    [
        pytest.param(1, 1.0, id="first"),
        pytest.param(2, 2.0, id="doubles"),
        pytest.param(5, 16.0, id="fifth"),
        pytest.param(10, 300.0, id="capped"),
        pytest.param(10_000, 300.0, id="no-overflow"),
    ],
)
def test_back_off_doubles_up_to_its_cap(failures: int, delay_s: float) -> None:
    assert RelayPolicy(retry_initial_s=1.0, retry_max_s=300.0).delay_s(failures) == delay_s


class Unreachable:
    """A transport whose connection is lost and not back."""

    topology = Topology("test", targets=("12345", "12351"))

    async def publish(self, routing_key: str, body: bytes, **_: Any) -> None:
        raise PublishError(PublishFailure.CONNECTION, routing_key, "ConnectionResetError()")


async def test_a_lost_connection_spends_no_attempt_and_parks_nothing(tmp_path: Path) -> None:
    store = await Store.connect(f"sqlite:///{tmp_path}/bridge.db")
    try:
        async with store.begin() as tx:
            await tx.enqueue(OutboxMessage("12345:BJ1", "to.12351.normal.0", b"{}"))
        relay = OutboxRelay(
            store=store,
            transport=Unreachable(),
            policy=RelayPolicy(max_attempts=1),  # type: ignore[arg-type]
        )
        assert await relay.relay_once() == 0
        (row,) = await store.outbox_pending(10)
        assert row.attempts == 0
        assert await store.list_dead_letters() == []
    finally:
        await store.aclose()
