"""A reconciliation run in progress: its counts and its report (identifiers and states
only, no personal data); see `bridge.engine.reconcile` for what each kind means."""

from __future__ import annotations

import time
from collections import Counter
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
    """Every system a referral crosses between: the keys of each item's `numbers`."""
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
    ) -> None:
        """Count a finding and list it (up to `REPORT_ITEMS` of its kind)."""
        self.counts[kind] += 1
        if repaired:
            self.counts["repaired"] += 1
        if self._listed[kind] >= REPORT_ITEMS:
            self.truncated = True
            return
        self._listed[kind] += 1
        self.items.append(
            {
                "kind": kind,
                "referral_id": referral_id,
                "system": system,
                "numbers": {s: numbers.get(s) for s in self.systems},
                "detail": detail,
                "repaired": repaired,
                "why": None if repaired else why,
            }
        )

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
