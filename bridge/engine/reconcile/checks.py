"""The checks a run makes on each referral it handled, against what the ledger holds
(`ReferralFacts`). Pure functions: they report, the run decides nothing from them."""

from __future__ import annotations

from typing import Final

from bridge.store import ReferralFacts
from schemas.canonical import Lifecycle

ANSWERED_OR_ENDED: Final = frozenset(
    {Lifecycle.REPLIED, Lifecycle.CALLBACK_RECORDED, Lifecycle.CLOSED, Lifecycle.WITHDRAWN}
)
WORKING: Final = frozenset({Lifecycle.SIGNED, Lifecycle.IN_PROGRESS, Lifecycle.EXTENDED})
"""A side being worked on. Not `delivered`: a 12351 case transferred to 12345 stays
`delivered` on 12351 whatever the order does; not `reopened`: a reopen starts at one
side and reaches the other through the bridge."""


def state_mismatch(
    system: str, state: str, version: int | None, facts: ReferralFacts
) -> tuple[str, str] | None:
    """(the other system, its state) when the two sides disagree in a way the lifecycle
    does not explain, else None. `state`, `version`: this side's snapshot as the run
    sees the record now.

    Conservative: only once both snapshots are in (each side's latest snapshot read has
    been applied on the other: `facts.applied` reaches its version; a snapshot in flight
    explains any difference), and only when one side has answered or ended the referral
    while the other is still working on it (after a reply or a close no step of either
    side puts the other back to work except a reopen, which is `reopened`). Needs both
    sides' snapshots in this store: a node that runs one side only reports none.
    """
    if version is None or facts.applied.get(system, -1) < version:
        return None
    for other, snapshot in sorted(facts.snapshots.items()):
        theirs, their_version = snapshot.get("state"), snapshot.get("version")
        if other == system or theirs is None or not isinstance(their_version, int):
            continue
        if facts.applied.get(other, -1) < their_version:
            continue
        pair = {state, theirs}
        if pair & ANSWERED_OR_ENDED and pair & WORKING:
            return other, theirs
    return None
