"""The admin application's typed runtime state, under one `web.AppKey`."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from bridge.admin.background import Background

if TYPE_CHECKING:
    from bridge.admin.auth import Tokens
    from bridge.app import Node
    from bridge.store import Figures


@dataclass
class AdminState:
    """What the handlers read: the node, where each side's referrals go (for a ledger
    row that does not know its target, and for replays), and the node's own metrics
    registry (never the global one: several nodes share a process in tests)."""

    node: Node
    partner: Mapping[str, str]
    tokens: Tokens
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    started_at: float = field(default_factory=time.monotonic)
    figures: Figures | None = None
    """The store's counts as read by the scrape in progress (None: the store failed)."""
    background: Background = field(default_factory=Background)
    """Replay jobs and reconciliations started over the API, cancelled at cleanup."""
    requests: Counter = field(init=False)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "hotline_bridge_admin_requests",
            "Requests to the admin API, by route pattern, method and status code",
            ("route", "method", "status"),
            registry=self.registry,
        )

    def route(self, origin: str) -> str | None:
        """The one partner this deployment sends every referral of `origin` to, or None
        (it routes none of them, or several partners: `*`). For a ledger row that does
        not know its target."""
        to = self.partner.get(origin)
        return None if to in (None, "*") else to


STATE = web.AppKey("admin", AdminState)
