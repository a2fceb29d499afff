"""One store transaction, as the engine sees it.

A :class:`Tx` is handed out by :meth:`Store.begin() <bridge.store.store.Store.begin>`
and is valid only inside that ``async with`` block: everything done through
it commits together on a clean exit and is rolled back on an exception. That
is what makes "a position advances only with the outbox rows of what was read"
and "an action is recorded with its ledger effects" hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from . import dead_letters, events, feeds, ledger, outbox, reconciliation
from .models import (
    ActionRow,
    Clock,
    DeadLetterIn,
    DeadLetterRow,
    OutboxMessage,
    OutboxRow,
    ReferralFacts,
    ReferralRow,
    Seen,
)


class Tx:
    """The writes and reads of one database transaction (see module docstring)."""

    def __init__(self, conn: AsyncConnection, clock: Clock) -> None:
        self._conn = conn
        self._clock = clock

    @property
    def connection(self) -> AsyncConnection:
        """The underlying connection, for queries the store does not offer yet."""
        return self._conn

    # feeds
    async def get_position(self, system: str, feed: str) -> str | None:
        """The stored position of a feed, or ``None`` before the first read."""
        return await feeds.get_position(self._conn, system, feed)

    async def set_position(self, system: str, feed: str, position: str) -> None:
        """Advance a feed's position (visible when the transaction commits)."""
        await feeds.set_position(self._conn, system, feed, position, self._clock())

    async def get_seen(self, system: str, native_id: str) -> Seen | None:
        """What was last seen of one native record, or ``None``."""
        return await feeds.get_seen(self._conn, system, native_id)

    async def put_seen(self, system: str, native_id: str, content_hash: str, seq: int) -> None:
        """Record the content hash and sequence number last seen of a native record."""
        await feeds.put_seen(self._conn, system, native_id, content_hash, seq, self._clock())

    async def lookup_created(self, system: str, origin_ref: str) -> str | None:
        """The native id of the case this node created on ``system`` for ``origin_ref``."""
        return await feeds.lookup_created(self._conn, system, origin_ref)

    async def put_created(self, system: str, origin_ref: str, native_id: str) -> str:
        """Index a created case (first entry wins); returns the native id indexed."""
        return await feeds.put_created(self._conn, system, origin_ref, native_id, self._clock())

    # outbox
    async def enqueue(self, message: OutboxMessage) -> int:
        """Add a message to the outbox; returns its id."""
        return await outbox.enqueue(self._conn, message, self._clock())

    async def defer_outbox(self, row: OutboxRow, delay_s: float) -> bool:
        """Count a failed publish of ``row``; it is not pending again for ``delay_s``."""
        return await outbox.defer(self._conn, row, delay_s, self._clock())

    async def park_outbox(self, row_id: int, letter: DeadLetterIn) -> int | None:
        """Move a pending message to the dead letters; ``None`` if no longer pending."""
        return await outbox.park(self._conn, row_id, letter, self._clock())

    # ledger
    async def upsert_referral(self, row: ReferralRow) -> ReferralRow:
        """Insert or update a referral, merging ``ids``; see :func:`ledger.upsert_referral`."""
        return await ledger.upsert_referral(self._conn, row, self._clock())

    async def get_referral(self, referral_id: str) -> ReferralRow | None:
        """One referral, locked for this transaction on PostgreSQL; ``None`` if unknown."""
        return await ledger.get_referral(self._conn, referral_id, for_update=True)

    async def get_last_version(self, referral_id: str, system: str) -> int | None:
        """The last source version of ``system`` applied to the referral, or ``None``."""
        return await ledger.get_last_version(self._conn, referral_id, system)

    async def set_last_version(self, referral_id: str, system: str, version: int) -> None:
        """Store the last applied source version (replaces; compare first)."""
        await ledger.set_last_version(self._conn, referral_id, system, version, self._clock())

    async def get_action(self, referral_id: str, system: str, key: str) -> ActionRow | None:
        """The recorded action with this key, or ``None``."""
        return await ledger.get_action(self._conn, referral_id, system, key)

    async def action_keys(self, referral_id: str, system: str) -> frozenset[str]:
        """The keys of every action recorded for this referral on this system."""
        return await ledger.action_keys(self._conn, referral_id, system)

    async def delete_action(self, referral_id: str, system: str, key: str) -> bool:
        """Forget a recorded action so that it is planned again (replay of a parked one)."""
        return await ledger.delete_action(self._conn, referral_id, system, key)

    async def record_action(self, row: ActionRow) -> bool:
        """Record an action once (first record wins) and add a timeline event.

        Returns ``False`` if the key was already recorded.
        """
        return await ledger.record_action(self._conn, row, self._clock())

    # dead letters and timeline
    async def park(self, letter: DeadLetterIn) -> int:
        """Park a dead letter; returns its id. Raises ``ValueError`` for a bad stage."""
        return await dead_letters.park(self._conn, letter, self._clock())

    async def get_dead_letter(self, letter_id: int) -> DeadLetterRow | None:
        """One dead letter, or ``None``."""
        return await dead_letters.get(self._conn, letter_id)

    async def set_dead_letter_status(self, letter_id: int, status: str) -> DeadLetterRow | None:
        """Set a dead letter's status in this transaction (``"replayed"`` counts an attempt)."""
        return await dead_letters.set_status(self._conn, letter_id, status, self._clock())

    async def referral_facts(self, referral_ids: Sequence[str]) -> dict[str, ReferralFacts]:
        """What the ledger holds of each referral of a page (a reconciliation's checks;
        see :func:`reconciliation.facts`)."""
        return await reconciliation.facts(self._conn, referral_ids)

    async def add_event(
        self, referral_id: str, system: str, kind: str, detail: dict[str, Any]
    ) -> int:
        """Append an event to a referral's timeline (no personal data in ``detail``)."""
        return await events.add_event(self._conn, referral_id, system, kind, detail, self._clock())
