"""`GET /metrics`: the Prometheus exposition of one node, from its own registry.

Figures from the store are read once per scrape (grouped queries, bounded by
`STORE_TIMEOUT_S`); everything else is the node's memory at that moment. Labels are
systems, feeds, states, stages, outcomes, tasks and route patterns: small fixed sets,
never ids, numbers or text.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from adapters.http import OUTCOMES
from bridge.admin.state import STATE, AdminState
from bridge.store import Figures

STORE_TIMEOUT_S = 5.0
PREFIX = "hotline_bridge_"


async def scrape(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        async with asyncio.timeout(STORE_TIMEOUT_S):
            state.figures = await state.node.store.figures()
    except Exception:  # the store is down: the rest of the metrics still answer
        state.figures = None
    body = generate_latest(state.registry)  # synchronous: no other scrape interleaves
    content_type, _, charset = CONTENT_TYPE_LATEST.partition("; charset=")
    return web.Response(body=body, content_type=content_type, charset=charset or "utf-8")


class NodeCollector(Collector):
    """Builds the node's gauges and counters at collection time."""

    def __init__(self, state: AdminState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        yield from self._store()
        yield from self._runtime()
        yield from self._requests()

    def _store(self) -> Iterator[Metric]:
        figures = self.state.figures
        up = GaugeMetricFamily(PREFIX + "store_up", "1 if the store answered this scrape")
        up.add_metric([], 0 if figures is None else 1)
        yield up
        if figures is None:
            return
        referrals = GaugeMetricFamily(
            PREFIX + "referrals",
            "Referrals in the ledger by direction (<origin>-<target>) and state",
            labels=("direction", "state"),
        )
        for (direction, state), count in sorted(self._directions(figures).items()):
            referrals.add_metric([direction, state], count)
        yield referrals
        depth = GaugeMetricFamily(PREFIX + "outbox_depth", "Outbox messages not yet published")
        depth.add_metric([], figures.outbox_depth)
        yield depth
        age = GaugeMetricFamily(
            PREFIX + "outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox message (0: none waits)",
        )
        oldest = figures.outbox_oldest_at
        age.add_metric([], 0 if oldest is None else _seconds_since(oldest))
        yield age
        parked = GaugeMetricFamily(
            PREFIX + "dead_letters_parked",
            "Dead letters waiting for an admin, by system and stage",
            labels=("system", "stage"),
        )
        for (system, stage), count in sorted(figures.parked.items()):
            parked.add_metric([system, stage], count)
        yield parked
        yield from _sla(figures, self.state.node.partners.sla_kinds())

    def _directions(self, figures: Figures) -> Counter[tuple[str, str]]:
        """(`<origin>-<target>`, state) → referrals. A row that does not know its target
        goes where the deployment sends every referral of its origin (one partner), else
        to `unknown`; rows that end up with the same labels are summed."""
        found: Counter[tuple[str, str]] = Counter()
        for (origin, target, state), count in figures.referrals.items():
            to = target or self.state.route(origin) or "unknown"
            found[f"{origin}-{to}", state] += count
        return found

    def _runtime(self) -> Iterator[Metric]:
        node = self.state.node
        broker = GaugeMetricFamily(PREFIX + "broker_connected", "1 if the AMQP connection is up")
        broker.add_metric([], 1 if node.transport.connected else 0)
        yield broker
        lag = GaugeMetricFamily(
            PREFIX + "feed_lag_seconds",
            "Seconds since the last successful read of each feed (since start if none yet)",
            labels=("system", "feed"),
        )
        failing = GaugeMetricFamily(
            PREFIX + "feed_failing", "1 while a feed's reads fail", labels=("system", "feed")
        )
        for poller in node.pollers:
            labels = [poller.hotline.system, poller.feed]
            last = poller.last_success
            since_start = time.monotonic() - self.state.started_at
            lag.add_metric(labels, since_start if last is None else _seconds_since(last))
            failing.add_metric(labels, 1 if poller.failing else 0)
        yield lag
        yield failing
        tasks = GaugeMetricFamily(
            PREFIX + "tasks_failing", "Supervised tasks in a streak of crashes"
        )
        tasks.add_metric([], len(node.supervisor.failing()))
        yield tasks
        paused = GaugeMetricFamily(
            PREFIX + "target_paused",
            "1 while a target's consumers are paused (its hotline unavailable)",
            labels=("system",),
        )
        for system in node.appliers:
            paused.add_metric([system], 1 if system in node.paused else 0)
        yield paused

    def _requests(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            PREFIX + "hotline_requests",
            "HTTP calls to each hotline by outcome (rate_limited: 429, unavailable: 502-504)",
            labels=("system", "outcome"),
        )
        for system, side in sorted(self.state.node.sides.items()):
            if side.budget is None:
                continue
            for outcome in OUTCOMES:
                requests.add_metric([system, outcome], side.budget.outcomes[outcome])
        yield requests


def _sla(figures: Figures, kinds: Iterable[tuple[str, str]]) -> Iterator[Metric]:
    deadlines = GaugeMetricFamily(
        PREFIX + "sla_deadlines",
        "Deadlines the SLA watch tracks, by hotline (system), kind (sign, reply, answer) "
        "and state (ok, at_risk, breached, met); at_risk and breached are the open alarms",
        labels=("system", "kind", "state"),
    )
    counts = dict(figures.sla)
    for system, kind in {(s, k) for s, k, _ in counts} | set(kinds):
        for state in ("at_risk", "breached"):  # always present: an alert rule sees a 0
            counts.setdefault((system, kind, state), 0)
    for (system, kind, state), count in sorted(counts.items()):
        deadlines.add_metric([system, kind, state], count)
    yield deadlines
    early = GaugeMetricFamily(
        PREFIX + "early_warnings_open",
        "Early-warning referrals (12345 urgency 3, 12351 alert) not closed or withdrawn",
    )
    early.add_metric([], figures.early_warnings_open)
    yield early


def _seconds_since(moment: datetime) -> float:
    return max(0.0, (datetime.now(UTC) - moment).total_seconds())
