"""The admin server: one `web.Application` per node, its runtime state under one
`web.AppKey`, served by a `web.AppRunner` that the node's `AsyncExitStack` cleans up.

Routes (no token needed for these): `GET /livez`, `GET /readyz`, `GET /metrics`, and the
admin page `GET /` with its assets under `/page/` (`bridge.admin.page`: static, no data);
under `/api/v1` the route groups of `ROUTES` (see `bridge.admin.api`), which need one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import structlog
from aiohttp import web

from bridge.admin import (
    audit,
    dead_letters,
    health,
    jobs,
    metrics,
    reconciliations,
    referrals,
    status,
)
from bridge.admin.api import install_api
from bridge.admin.auth import Tokens
from bridge.admin.page import install_page
from bridge.admin.state import STATE, AdminState

if TYPE_CHECKING:
    from bridge.app import Node

log = structlog.get_logger(__name__)

ROUTES = (
    status.routes,
    referrals.routes,
    dead_letters.routes,
    jobs.routes,
    reconciliations.routes,
    audit.routes,
)
"""Every `/api/v1` route group, in the order of the OpenAPI document."""


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request by its route's pattern (never the raw path: no ids in labels);
    an HTTP error (404, 405) answers as an RFC 9457 problem document."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    status = 500  # what aiohttp answers for an exception out of a handler
    try:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                status = exc.status
                raise
            response = problem(exc.status, exc.reason)
        except Exception as exc:  # a bug: answered as a problem, logged with its stack
            log.exception("admin.handler_failed", route=route, error=type(exc).__name__)
            response = problem(500, "internal error")
        status = response.status
        return response
    finally:
        request.app[STATE].requests.labels(route, request.method, str(status)).inc()


def problem(status: int, title: str) -> web.Response:
    body = {"type": "about:blank", "title": title, "status": status}
    return web.json_response(body, status=status, content_type="application/problem+json")


def build_app(node: Node) -> web.Application:
    """The admin application of `node` (not yet served)."""
    app = web.Application(middlewares=[_count_requests])
    config = node.settings.admin
    routes = node.partners.routes()
    state = AdminState(node, routes, Tokens.load(config.tokens, config.token_files))
    state.registry.register(metrics.NodeCollector(state))
    state.registry.register(node.metrics.registry)  # the engine's counters
    app[STATE] = state
    app.router.add_get("/livez", health.livez)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", metrics.scrape)
    install_page(app)
    install_api(app, ROUTES)
    app.on_cleanup.append(_stop_background)
    return app


async def _stop_background(app: web.Application) -> None:
    """Replay jobs and reconciliations started over the API stop with the server (the
    store is still open: they record that they were interrupted)."""
    await app[STATE].background.aclose()


async def serve_admin(node: Node, stack: AsyncExitStack) -> str | None:
    """Serve the admin API on `[admin] listen` until `stack` closes; returns its URL
    with the port actually bound (port 0 picks a free one), or None when
    `[admin] enabled` is false. First, jobs a previous run left open are failed (only
    the admin API starts jobs). Raises `OSError` if the address cannot be bound."""
    config = node.settings.admin
    if not config.enabled:
        return None
    await jobs.recover(node)
    runner = web.AppRunner(build_app(node), access_log=None, handle_signals=False)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    host, port = config.host_port
    await web.TCPSite(runner, host, port).start()
    bound = runner.addresses[0][1]
    url = f"http://{f'[{host}]' if ':' in host else host}:{bound}"
    log.info("admin.listening", url=url)
    return url
