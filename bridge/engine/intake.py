"""Intake: native records read from a feed → ledger + outbox, in ONE transaction with
the feed position (a position never advances past what was not recorded).

A side's `IntakePolicy` decides per record: ignore it, park it (it does not map), record
it without forwarding, or publish its snapshot to the other side. The version of the
mapping tables that made the snapshot (`MappingTables.version`) goes with its timeline
event and with a parked record, from which a replay may re-map it with those tables.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol, Self

from bridge.errors import MappingError
from bridge.mapping import MappingTables
from bridge.store import DeadLetterIn, OutboxMessage, ReferralRow, Tx
from bridge.transport import Topology
from schemas.canonical import Referral


@dataclass(frozen=True)
class Intake:
    """What a policy made of one record: a snapshot to publish (or just to record)."""

    referral: Referral
    forward: bool = True
    mapping: str | None = None
    """The version of the mapping tables that made `referral`."""
    target: str | None = None
    """The partner the snapshot goes to (None: the snapshot's own `target`)."""

    def __post_init__(self) -> None:
        # raised inside the policy's `take`: the record is parked, nothing else stops
        if self.forward and self.to is None:
            ref = self.referral
            raise MappingError("target", None, ref.source_no, "no partner to send it to")

    @property
    def to(self) -> str | None:
        return self.target or self.referral.target


class IntakePolicy(Protocol):
    system: str
    tables: MappingTables

    def with_tables(self, tables: MappingTables) -> Self:
        """The same policy mapping with `tables` (a replay with the tables of its time)."""
        ...

    async def take(
        self,
        feed: str,
        record: Any,
        tx: Tx,
        read_at: datetime,
        *,
        force: bool = False,
        current: bool = False,
    ) -> Intake | None:
        """The snapshot of `record`, or None when it is not the bridge's business or is a
        repeat; raises MappingError for a record that does not map. `force` re-reads a
        record even if it was seen (an admin replaying a parked record); `current` says
        the record is the system's state now (read by id), not an entry of a feed's
        history, so a change its version does not show still counts."""
        ...

    def native_key(self, record: Any) -> str:
        """The record's native id, for dead letters."""
        ...

    def dump(self, record: Any) -> dict[str, Any]:
        """The record as JSON, for dead letters (replayable)."""
        ...

    def fetch_key(self, record: Any) -> str:
        """The id to `Hotline.fetch` the record by."""
        ...

    def parse(self, data: dict[str, Any]) -> Any:
        """A record back from `dump()` (replaying a dead letter)."""
        ...

    def referral_of(self, record: Any) -> str:
        """The id of the referral the record belongs to (if it is one), read from the
        record alone: no store, no mapping tables."""
        ...

    def missing_actions(self, record: Any, actions: Mapping[str, tuple[str, str]]) -> list[str]:
        """The keys of the `actions` (key → (kind, outcome)) recorded as having taken
        effect on this system whose effect `record`, as it stands now, does not show.
        Only effects the system's spec makes unambiguous are judged."""
        ...


def content_hash(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def snapshot_headers(ref: Referral) -> dict[str, Any]:
    return {
        "message_id": ref.message_id,
        "x-bridge-source": ref.source,
        "x-bridge-version": ref.source_version,
        "x-bridge-referral-id": ref.referral_id,
    }


REPLAY_HEADER = "x-bridge-replay"
"""Set on snapshots an admin replays or the reconciler re-publishes: the receiving
applier then does not drop them as stale (it still performs only what is missing)."""


TOOK_EFFECT: Final = frozenset({"applied", "already_applied", "already_signed"})
"""Action outcomes that mean the action's effect is on the system (performed by the
bridge, found already there, or done in the system's own UI before the bridge saw it)."""


def _event_detail(ref: Referral, intake: Intake) -> dict[str, Any]:
    """What a snapshot's timeline event records: identifiers and states only (the
    canonical `state` too, which a reconciliation run compares across the sides)."""
    return {
        "version": ref.source_version,
        "status": ref.native_status,
        "state": ref.state.value,
        "mapping": intake.mapping,
    }


async def record_intake(
    tx: Tx, topology: Topology, intake: Intake, *, replay: bool = False
) -> bool:
    """Upsert the referral and, when forwarded, enqueue its snapshot for the partner it
    crosses to (`Intake.to`: an `Intake` to forward always has one)."""
    ref = intake.referral
    target = intake.to or ""
    if intake.target is not None and ref.target != intake.target:
        ref = ref.model_copy(update={"target": intake.target})
    await tx.upsert_referral(
        ReferralRow(
            referral_id=ref.referral_id,
            origin_system=ref.origin,
            ids=dict(ref.ids),
            state=ref.state.value,
            early_warning=ref.early_warning,
            numbers=dict(ref.numbers),
            target=intake.to,
            last_snapshot=ref.model_dump(mode="json"),
        )
    )
    if not intake.forward:
        await tx.add_event(
            ref.referral_id,
            ref.source,
            "not_forwarded",
            _event_detail(ref, intake),
        )
        return False
    await tx.enqueue(
        OutboxMessage(
            referral_id=ref.referral_id,
            routing_key=topology.routing_key(target, ref.referral_id, ref.early_warning),
            body=ref.model_dump_json().encode(),
            headers={**snapshot_headers(ref), **({REPLAY_HEADER: True} if replay else {})},
            early_warning=ref.early_warning,
        )
    )
    await tx.add_event(
        ref.referral_id,
        ref.source,
        "snapshot.read",
        _event_detail(ref, intake),
    )
    return True


async def park_record(
    tx: Tx, policy: IntakePolicy, feed: str, record: Any, error: MappingError
) -> None:
    await tx.park(
        DeadLetterIn(
            system=policy.system,
            stage="intake",
            reason=str(error),
            payload={"feed": feed, "record": policy.dump(record), "mapping": policy.tables.version},
            referral_id=None,
            field=error.field,
        )
    )
