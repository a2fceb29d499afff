"""A reconciliation run in progress: its counts and its report (identifiers and states
only, no personal data); see `bridge.engine.reconcile` for what each kind means."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

KINDS: Final = (
    "unseen",
    "changed",
    "state_mismatch",
    "action_missing",
    "parked",
    "parked_unresolved",
    "missing",
    "failed",
)
"""The finding kinds, each a count and the kind of its report items."""
COUNTS: Final = ("checked", "listed", "read", *KINDS, "republished", "repaired")
REPORT_ITEMS: Final = 100
"""At most this many items of each kind in a report (the counts are whole)."""
DRY_RUN: Final = "dry run"


@dataclass
class Run:
    """Counts and report of one run; `found` adds a finding."""

    id: int
    dry_run: bool
    systems: tuple[str, ...]
    """Every partner of the deployment (and the sides this node runs)."""
    routes: Mapping[str, str] = field(default_factory=dict)
    """Partner → where its referrals go (`Deployment.routes()`; `*`: each its own)."""
    read_up_to: dict[str, datetime | None] = field(default_factory=dict)
    """Per system, how far its feeds had read when the run began (the earliest of its
    feeds): a record changed at or after that may just not be read yet (normal traffic,
    the run's own repairs reaching the other side): taken, never a finding."""
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    items: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False
    error: str | None = None
    reported_at: float = field(default_factory=time.monotonic)
    letters: set[int] = field(default_factory=set)
    """Parked dead letters already reported (each once a run; there are few)."""
    _listed: Counter[str] = field(default_factory=Counter)

    def found(
        self,
        kind: str,
        referral_id: str | None,
        system: str,
        numbers: dict[str, Any],
        detail: dict[str, Any],
        *,
        repaired: bool = False,
        why: str | None = None,
        target: str | None = None,
    ) -> None:
        """Count a finding and list it (up to `REPORT_ITEMS` of its kind) with the
        numbers of the referral's two partners (`pair`), known or not."""
        self.counts[kind] += 1
        if repaired:
            self.counts["repaired"] += 1
        if self._listed[kind] >= REPORT_ITEMS:
            self.truncated = True
            return
        self._listed[kind] += 1
        pair = self.pair(referral_id, system, numbers, target)
        self.items.append(
            {
                "kind": kind,
                "referral_id": referral_id,
                "system": system,
                "numbers": {s: numbers.get(s) for s in pair},
                "detail": detail,
                "repaired": repaired,
                "why": None if repaired else why,
            }
        )

    def pair(
        self, referral_id: str | None, system: str, numbers: Mapping[str, Any], target: str | None
    ) -> tuple[str, ...]:
        """The two partners a referral crosses between: its origin (its id's prefix) and
        its target: the one named, else the side it was found on, else the one other
        partner with a number, else where the deployment routes the origin."""
        # a record parked before it was a referral: where it was found begins it
        origin = referral_id.partition(":")[0] if referral_id else system
        others = [s for s, n in numbers.items() if n and s != origin]
        route = self.routes.get(origin)
        other = (
            target
            or (system if system != origin else None)
            or (others[0] if len(others) == 1 else None)
            or (route if route not in (None, "*") else None)
            or (self._the_other(origin) if len(self.systems) == 2 else None)
        )
        return tuple(sorted({origin, *([other] if other else [])}))

    def _the_other(self, origin: str) -> str | None:
        rest = [s for s in self.systems if s != origin]
        return rest[0] if len(rest) == 1 else None

    @property
    def report(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "dry_run": self.dry_run,
            "items": self.items,
            "truncated": self.truncated,
        }
        if self.error is not None:
            report["error"] = self.error
        return report
