"""The planner: snapshot + what the ledger says was done → the actions still missing.

Pure: arguments in, a `Plan` out; no I/O, no clock. The applier performs the steps in
order, skipping those whose key the ledger already holds; a step's `key` is the
deterministic idempotency key of the action for this referral (a reply is keyed by the
reopen round it answers, so a reopened order gets a new reply).

What each partner's side plans is its kind's business (`bridge/partners/<kind>/plan.py`):
the engine only runs the steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel


@dataclass(frozen=True)
class Step:
    """One action to perform: `target` is the native id it applies to (None: a create)."""

    kind: str
    key: str
    target: str | None
    body: BaseModel


@dataclass(frozen=True)
class Hold:
    """An action that cannot be performed and must wait for an admin (parked), or a
    decision recorded without a call (`outcome`)."""

    kind: str
    key: str
    reason: str
    field: str | None = None
    outcome: str = "parked"


Plan = list[Step | Hold]
