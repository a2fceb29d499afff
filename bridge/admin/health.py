"""Liveness and readiness.

`/livez` answers while the event loop does. `/readyz` answers 200 when every check is
`ok`, else 503 with an RFC 9457 problem document whose `checks` name each one:

- `store`: a `SELECT 1`, bounded by `STORE_TIMEOUT_S`;
- `broker`: the AMQP connection is up;
- `consumers.<system>`: the work queues of each target this node applies to are consumed;
- `hotline.<system>`: from what the node already knows, never a call to the hotline (a
  paused target is not answering, a failing feed poller means its hotline fails);
- `task.<name>`: a supervised task in a streak of crashes (only those are listed).

Values are states and exception type names only: no ids, no personal data.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from bridge.admin.state import STATE

if TYPE_CHECKING:
    from bridge.app import Node

STORE_TIMEOUT_S = 2.0
PROBLEM_TYPE = "urn:hotline-bridge:problem:not-ready"
OK = "ok"


async def livez(request: web.Request) -> web.Response:
    return web.json_response({"status": "live"})


async def readyz(request: web.Request) -> web.Response:
    checks = await readiness(request.app[STATE].node)
    if all(value == OK for value in checks.values()):
        return web.json_response({"status": "ready", "checks": checks})
    problem = {"type": PROBLEM_TYPE, "title": "not ready", "status": 503, "checks": checks}
    return web.json_response(problem, status=503, content_type="application/problem+json")


async def readiness(node: Node) -> dict[str, str]:
    """Every check of the node by name → `ok` or what is wrong."""
    checks = {"store": await _store(node), "broker": OK if node.transport.connected else "down"}
    for system in node.appliers:
        checks[f"consumers.{system}"] = node.transport.consumers_state(system)
    for system in node.sides:
        checks[f"hotline.{system}"] = _hotline(node, system)
    for task in node.supervisor.failing():
        checks[f"task.{task.name}"] = f"crashing: {task.last_error}, {task.crashes} crashes"
    return checks


async def _store(node: Node) -> str:
    try:
        async with asyncio.timeout(STORE_TIMEOUT_S):
            await node.store.ping()
    except TimeoutError:
        return f"unreachable: no answer within {STORE_TIMEOUT_S:g}s"
    except Exception as exc:  # any database error: the store is what is wrong
        return f"unreachable: {type(exc).__name__}"
    return OK


def _hotline(node: Node, system: str) -> str:
    if system in node.paused:
        return "unavailable: consumers paused until it answers a ping"
    failing = [p for p in node.pollers if p.hotline.system == system and p.failing]
    if failing:
        feeds = ", ".join(f"{p.feed} ({p.last_error})" for p in failing)
        return f"failing: feed {feeds}"
    return OK
