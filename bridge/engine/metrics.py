"""What the engine counts for `/metrics`: actions, retries, parkings and reconciliations.

One `EngineMetrics` per node, its counters in a `CollectorRegistry` the node owns (never
the global one: several nodes share a process in tests); the admin server exposes it
beside its own. Labels are small fixed sets only: the system, the action's kind and
outcome, the dead-letter stage and a reason category (`PARK_REASONS`), never ids,
numbers or text. A part built without one (a test, the CLI) counts into a private
registry nobody reads.
"""

from __future__ import annotations

from typing import Final, Literal

from prometheus_client import CollectorRegistry, Counter

PREFIX: Final = "hotline_bridge_"

ParkReason = Literal[
    "mapping",  # the record or snapshot does not map
    "refused",  # the other side refused an action for good
    "held",  # the planner holds an action for an admin
    "invalid",  # a message that is not a snapshot this node reads
    "unknown_mapping",  # a replay names mapping tables this store does not hold
    "retries_exhausted",  # the broker's retry ladder ended
    "delivery_limit",  # the broker dead-lettered it (delivery limit)
    "unroutable",  # the relay's publish was returned
    "publish_failed",  # the relay's publish kept failing
]
PARK_REASONS: Final[tuple[str, ...]] = ParkReason.__args__  # type: ignore[attr-defined]


class EngineMetrics:
    """The engine's counters (see the module docstring)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.actions = Counter(
            PREFIX + "actions",
            "Actions recorded on each system, by kind and outcome",
            ("system", "kind", "outcome"),
            registry=self.registry,
        )
        self.retries = Counter(
            PREFIX + "retries",
            "Snapshots an applier sent back to the retry ladder, by target system",
            ("system",),
            registry=self.registry,
        )
        self.parked = Counter(
            PREFIX + "parked",
            "Dead letters parked, by system, stage and reason category",
            ("system", "stage", "reason"),
            registry=self.registry,
        )
        self.reconciliations = Counter(
            PREFIX + "reconciliations",
            "Reconciliation runs ended, by status (done, failed) and whether a dry run",
            ("status", "dry_run"),
            registry=self.registry,
        )
        self.reconciliation_results = Counter(
            PREFIX + "reconciliation_results",
            "What reconciliation runs found, by result (checked, republished, changed, "
            "missing, failed, parked)",
            ("result", "dry_run"),
            registry=self.registry,
        )
        self._actions: dict[tuple[str, str, str], Counter] = {}

    def action(self, system: str, kind: str, outcome: str) -> None:
        # once per action on the hot path: the labelled child is looked up once, kept
        key = (system, kind, outcome)
        child = self._actions.get(key)
        if child is None:
            child = self._actions[key] = self.actions.labels(*key)
        child.inc()

    def retry(self, system: str) -> None:
        self.retries.labels(system).inc()

    def park(self, system: str, stage: str, reason: ParkReason) -> None:
        self.parked.labels(system, stage, reason).inc()

    def reconciled(self, status: str, dry_run: bool, counts: dict[str, int]) -> None:
        """A reconciliation run ended with `status` and these counts."""
        flag = "true" if dry_run else "false"
        self.reconciliations.labels(status, flag).inc()
        for result, count in counts.items():
            self.reconciliation_results.labels(result, flag).inc(count)
