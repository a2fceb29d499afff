"""One page of a reconciliation run through the side's intake, in one transaction: the
comparison with the ledger (`unseen`, `changed`, `parked`) and the checks
(`action_missing`, `state_mismatch`, `parked_unresolved`)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from pydantic import ValidationError

from adapters.base import Hotline
from bridge.engine.intake import IntakePolicy, park_record, record_intake
from bridge.engine.metrics import EngineMetrics
from bridge.engine.poller import as_mapping_error
from bridge.engine.reconcile.checks import state_mismatch
from bridge.engine.reconcile.findings import DRY_RUN, Run
from bridge.errors import MappingError
from bridge.store import ReferralFacts, Tx
from bridge.transport import Topology

REPORTED: Final = "reported, not acted on: an admin looks at both systems"
PARKED: Final = "parked: an admin replays or discards the dead letter"
NOT_MAPPED: Final = "it does not map: parked"


class PageSide(Protocol):
    system: str
    hotline: Hotline
    intake: IntakePolicy


def _not_read_yet(run: Run, system: str, changed_at: datetime | None) -> bool:
    """The record changed no earlier than what the feeds had read when the run began: it may be
    on its way (normal traffic, or the run's own repairs reaching the other side), so
    it is taken but not reported as missed. A feed that has read nothing yet reports all."""
    up_to = run.read_up_to.get(system)
    return up_to is not None and changed_at is not None and changed_at >= up_to


@dataclass
class _Handled:
    """One record of a page as the run handled it."""

    record: Any
    native_id: str
    referral_id: str
    state: str | None = None
    version: int | None = None


@dataclass
class PageTaker:
    """Takes pages for a run; `systems`: the sides this node runs."""

    topology: Topology
    metrics: EngineMetrics
    clock: Callable[[], datetime]
    systems: Collection[str]

    async def take(
        self,
        side: PageSide,
        feed: str,
        run: Run,
        covered: dict[str, bool],
        records: Sequence[Any],
        tx: Tx,
        listed: bool,
    ) -> bool:
        """Take `records` (listed, or `(record, row)` pairs read) in `tx` as the poller
        would, report what differs, then check what was handled; True when a snapshot
        was queued (never in a dry run)."""
        system, intake, now = side.system, side.intake, self.clock()
        pairs = [(r, None) for r in records] if listed else list(records)
        facts = await tx.referral_facts([intake.referral_of(r) for r, _ in pairs])
        queued, handled = False, []
        for record, row in pairs:
            native_id = intake.fetch_key(record)
            reported = covered.get(native_id, False)
            if listed:  # only the lists grow the set: it is bounded by the window
                covered.setdefault(native_id, False)
            referral_id = row.referral_id if row is not None else intake.referral_of(record)
            try:
                current = not listed or getattr(side.hotline, "window_current", False)
                taken = await intake.take(feed, record, tx, now, current=current)
            except (MappingError, ValidationError, ValueError, KeyError, TypeError) as exc:
                error = as_mapping_error(exc, intake.native_key(record))
                known = facts.get(referral_id) or ReferralFacts()
                if not reported:
                    if listed:
                        covered[native_id] = True
                    run.found(
                        "parked",
                        referral_id if known.state is not None else None,
                        system,
                        known.numbers,
                        {"native_id": native_id, "field": error.field},
                        why=NOT_MAPPED,
                    )
                if not run.dry_run:
                    await park_record(tx, intake, feed, record, error)
                    self.metrics.park(system, "intake", "mapping")
                continue
            if taken is None:  # as last read (or not the bridge's business)
                if listed and not getattr(side.hotline, "window_current", False):
                    continue  # a past state: the read of the case checks it
                handled.append(_Handled(record, native_id, referral_id))
                continue
            ref = taken.referral
            if ref.referral_id not in facts:
                facts.update(await tx.referral_facts([ref.referral_id]))
            before = facts[ref.referral_id]
            republished = await record_intake(tx, self.topology, taken, replay=True)
            if not taken.forward:
                continue  # handled outside the bridge: no crossing case
            run.counts["republished"] += 1
            queued = True
            if not reported and not _not_read_yet(run, system, ref.updated_at):
                if listed:
                    covered[native_id] = True
                run.found(
                    "unseen" if before.state is None else "changed",
                    ref.referral_id,
                    system,
                    {**before.numbers, **ref.numbers},
                    {
                        "native_id": native_id,
                        "ledger_state": before.state,
                        "source_state": ref.state.value,
                        "source_status": ref.native_status,
                    },
                    repaired=republished and not run.dry_run,
                    why=DRY_RUN if run.dry_run else None,
                )
            handled.append(
                _Handled(record, native_id, ref.referral_id, ref.state.value, ref.source_version)
            )
        self._check(side, run, handled, facts)
        return queued and not run.dry_run

    def _check(
        self,
        side: PageSide,
        run: Run,
        handled: Sequence[_Handled],
        facts: Mapping[str, ReferralFacts],
    ) -> None:
        """`action_missing`, `state_mismatch`, `parked_unresolved` of what a page handled
        (the ledger as it stood before the page; this side's state as the record shows)."""
        system = side.system
        for item in handled:
            known = facts.get(item.referral_id)
            if known is None or known.state is None:
                if item.state is not None:
                    run.counts["checked"] += 1  # unseen: compared, nothing to check against
                continue
            run.counts["checked"] += 1
            ids = {"native_id": item.native_id}
            missing = side.intake.missing_actions(item.record, known.actions.get(system, {}))
            if missing:
                run.found(
                    "action_missing",
                    item.referral_id,
                    system,
                    known.numbers,
                    {**ids, "actions": missing},
                    why=REPORTED,
                )
            state, version = item.state, item.version
            if state is None:  # unchanged: this side's last snapshot is the record now
                last = known.snapshots.get(system, {})
                state, version = last.get("state"), last.get("version")
            origin = item.referral_id.split(":", 1)[0]
            if state is not None and (origin == system or origin not in self.systems):
                mismatch = state_mismatch(system, state, version, known)
                if mismatch is not None:
                    run.found(
                        "state_mismatch",
                        item.referral_id,
                        system,
                        known.numbers,
                        {**ids, "states": {system: state, mismatch[0]: mismatch[1]}},
                        why=REPORTED,
                    )
            # A letter is reported once a run, by the first side that handles its referral
            # (the side whose applier parked it may have no record of the referral).
            letters = [n for n in known.parked if n not in run.letters]
            if letters:
                run.letters.update(letters)
                run.found(
                    "parked_unresolved",
                    item.referral_id,
                    system,
                    known.numbers,
                    {**ids, "dead_letters": letters},
                    why=PARKED,
                )
