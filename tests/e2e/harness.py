"""End-to-end harness: both simulators over real HTTP, a real RabbitMQ (own namespace
per test, deleted afterwards), a bridge node in-process or as a real daemon process.

Assertions are made on what the simulators hold (the ground truth).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aio_pika

from adapters.retry import RetryPolicy
from bridge.app import Node, start_node, topology_of
from bridge.config import Settings, load_settings
from bridge.demo import Simulators
from bridge.transport import Transport

AMQP_URL = os.environ.get("HB_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
ROOT = Path(__file__).resolve().parents[2]


async def require_broker() -> None:
    """Fail (never skip) with what to do when RabbitMQ does not answer."""
    try:
        connection = await aio_pika.connect(AMQP_URL, timeout=5)
    except Exception as exc:
        raise AssertionError(
            f"RabbitMQ does not answer at {AMQP_URL} ({type(exc).__name__}). Start it "
            "(`rabbitmq-server -detached`, or scripts/services.sh ensure) and run again."
        ) from exc
    await connection.close()


def settings_for(
    sims: Simulators,
    tmp_path: Path,
    namespace: str,
    *,
    sides: list[str] | None = None,
    store_name: str = "bridge.db",
    **bridge: Any,
) -> Settings:
    sections = sims.config_sections()
    sides = sides or ["12345", "12351"]
    overrides: dict[str, Any] = {
        "amqp": {
            "url": AMQP_URL,
            "namespace": namespace,
            "shards": 2,
            "retry_delays_s": (1, 2, 4),
            "publish_timeout_s": 5,
        },
        "store": {"url": f"sqlite:///{tmp_path / store_name}"},
        "bridge": {
            "sides": sides,
            "poll_interval_s": 0.2,
            "poll_max_backoff_s": 2.0,
            "attempt_timeout_s": 5,
            **bridge,
        },
    }
    for side in sides:
        overrides[f"hotline{side}"] = sections[f"hotline{side}"]
    return load_settings(None, **overrides)


def fast_policy() -> RetryPolicy:
    return RetryPolicy(
        max_attempts=3,
        deadline_s=5,
        initial_s=0.05,
        max_wait_s=0.2,
        jitter_s=0.05,
        max_retry_after_s=2,
    )


async def start(settings: Settings, stack: AsyncExitStack) -> Node:
    return await start_node(settings, stack, retry_policy=fast_policy())


async def delete_namespace(settings: Settings) -> None:
    transport = await Transport.connect(settings.amqp.url, topology_of(settings))
    try:
        await transport.delete_topology()
    finally:
        await transport.aclose()


def new_namespace() -> str:
    return f"hb-test-{uuid.uuid4().hex[:10]}"


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]],
    timeout: float = 30.0,  # noqa: ASYNC109 - a polling deadline, not a cancellation scope
    what: str = "",
) -> None:
    """Poll `predicate` until true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)


def get(record: Any, key: str) -> Any:
    if isinstance(record, dict):
        return record.get(key)
    return getattr(record, key, None)


def order(sims: Simulators, order_no: str) -> dict[str, Any]:
    o = sims.sim12345.orders[order_no]
    return o if isinstance(o, dict) else o.model_dump(mode="json")


def cases_from(sims: Simulators, order_no: str) -> list[dict[str, Any]]:
    return [
        c
        for c in sims.sim12351.cases.values()
        if (c.get("origin") or {}).get("external_no") == order_no
    ]


def orders_from(sims: Simulators, case_no: str) -> list[dict[str, Any]]:
    result = []
    for no in list(sims.sim12345.orders):
        o = order(sims, no)
        if o.get("sourceNo") == case_no:
            result.append(o)
    return result


def partner_events(sims: Simulators, case_id: str, type_: str | None = None) -> list[dict]:
    return [
        e
        for e in sims.sim12351.events.get(case_id, [])
        if str(e.get("actor", "")).startswith("partner:")
        and (type_ is None or e.get("type") == type_)
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """`hotline-bridge run` as a real process, for crash tests (SIGKILL)."""

    def __init__(self, config_file: Path, log_file: Path) -> None:
        self.config_file = config_file
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_file.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "run", "--config", str(self.config_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def write_config(settings: Settings, path: Path) -> None:
    """A TOML file equivalent to `settings` (for a daemon process)."""
    import json

    def table(name: str, values: dict[str, Any]) -> str:
        lines = [f"[{name}]"]
        for key, value in values.items():
            if value is None:
                continue
            if isinstance(value, dict):
                inner = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in value.items())
                lines.append(f"{key} = {{ {inner} }}")
            else:
                lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
        return "\n".join(lines)

    data = settings.model_dump(mode="json")
    parts = [
        table(name, values)
        for name, values in data.items()
        if isinstance(values, dict) and values and name != "mapping"
    ]
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
