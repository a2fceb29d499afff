"""Replaying a dead letter: what an admin does once the cause is fixed (a table
corrected, a record repaired on its side, a refusal resolved by hand).

A replay only writes to the store, in one transaction: the record or snapshot goes back
into the outbox (marked as a replay, so the applier does not drop it as stale; a message
the relay could not publish goes back as it was), the parked actions of its referral
are forgotten so they are planned again, and the dead letter is marked `replayed`. The
running daemon's relay publishes it. Replaying a record that still does not map parks it
again, with a new dead letter.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from adapters.base import Hotline
from adapters.errors import AdapterError
from bridge.engine.intake import (
    REPLAY_HEADER,
    IntakePolicy,
    park_record,
    record_intake,
)
from bridge.errors import MappingError
from bridge.store import OutboxMessage, Store, Tx
from bridge.transport import Topology
from schemas.canonical import Referral


class ReplayError(Exception):
    """The dead letter cannot be replayed (unknown, not parked, no payload to replay)."""


async def replay_dead_letter(
    store: Store,
    letter_id: int,
    *,
    intake: Mapping[str, IntakePolicy],
    topology: Topology,
    partner: Mapping[str, str],
    hotlines: Mapping[str, Hotline] | None = None,
    now: datetime | None = None,
) -> str:
    """Replay one parked dead letter; returns what was done. Raises ReplayError.

    A parked record is read again from its system when this node runs that side (the
    admin may have had it repaired there); otherwise the stored copy is replayed.
    """
    now = now or datetime.now(UTC)
    fresh = await _refetch(store, letter_id, intake, hotlines or {})
    async with store.begin() as tx:
        letter = await tx.get_dead_letter(letter_id)
        if letter is None:
            raise ReplayError(f"dead letter {letter_id} does not exist")
        if letter.status != "parked":
            raise ReplayError(f"dead letter {letter_id} is {letter.status}, not parked")
        payload = letter.payload
        if letter.stage == "intake":
            policy = intake.get(letter.system)
            if policy is None:
                raise ReplayError(f"this node does not run the {letter.system} side")
            record = fresh if fresh is not None else policy.parse(payload["record"])
            feed = payload.get("feed", "")
            try:
                taken = await policy.take(feed, record, tx, now, force=True)
            except MappingError as exc:
                await park_record(tx, policy, feed, record, exc)
                outcome = f"still does not map, parked again: {exc}"
            else:
                outcome = "nothing to forward"
                if taken is not None and await record_intake(
                    tx, topology, partner[letter.system], taken, replay=True
                ):
                    outcome = f"snapshot of {taken.referral.referral_id} queued again"
        elif letter.stage == "publish":
            await tx.enqueue(_unpublished(letter.referral_id, letter.system, payload, topology))
            outcome = "message queued again"
        elif "snapshot" in payload:
            ref = Referral.model_validate(payload["snapshot"])
            forgotten = await _forget_parked_actions(tx, ref.referral_id, letter.system)
            await _enqueue(tx, topology, letter.system, ref)
            outcome = f"snapshot queued again; parked actions retried: {forgotten or 'none'}"
        elif "body" in payload and payload.get("routing_key"):
            await tx.enqueue(
                OutboxMessage(
                    referral_id=letter.referral_id or "",
                    routing_key=payload["routing_key"],
                    body=payload["body"].encode(),
                    headers={"message_id": payload.get("message_id", ""), REPLAY_HEADER: True},
                )
            )
            outcome = "message queued again"
        else:
            raise ReplayError(f"dead letter {letter_id} holds nothing that can be replayed")
        await tx.set_dead_letter_status(letter_id, "replayed")
    return outcome


async def _refetch(
    store: Store,
    letter_id: int,
    intake: Mapping[str, IntakePolicy],
    hotlines: Mapping[str, Hotline],
) -> Any:
    letter = await store.get_dead_letter(letter_id)
    if letter is None or letter.stage != "intake" or letter.system not in hotlines:
        return None
    policy = intake[letter.system]
    try:
        stored = policy.parse(letter.payload["record"])
        return await hotlines[letter.system].fetch(policy.fetch_key(stored))
    except (AdapterError, KeyError, ValueError):
        return None  # fall back on the stored copy


async def _forget_parked_actions(tx: Tx, referral_id: str, system: str) -> list[str]:
    forgotten = []
    for key in sorted(await tx.action_keys(referral_id, system)):
        action = await tx.get_action(referral_id, system, key)
        if action is not None and action.outcome == "parked":
            await tx.delete_action(referral_id, system, key)
            forgotten.append(key)
    return forgotten


async def _enqueue(tx: Tx, topology: Topology, target: str, ref: Referral) -> None:
    from bridge.engine.intake import snapshot_headers

    await tx.enqueue(
        OutboxMessage(
            referral_id=ref.referral_id,
            routing_key=topology.routing_key(target, ref.referral_id, ref.early_warning),
            body=ref.model_dump_json().encode(),
            headers={**snapshot_headers(ref), REPLAY_HEADER: True},
            early_warning=ref.early_warning,
        )
    )


def _unpublished(
    referral_id: str | None, target: str, payload: dict[str, Any], topology: Topology
) -> OutboxMessage:
    """The outbox message of a `publish` dead letter (one the relay could not publish),
    routed again by the current topology when it knows the target: a message parked as
    unroutable after a change of the shard count then reaches its shard's queue. It keeps
    its own headers and no replay mark: it never reached the applier, so the usual
    version check is right (a newer snapshot delivered meanwhile makes it stale)."""
    early_warning = bool(payload.get("early_warning", False))
    routing_key = payload["routing_key"]
    if referral_id and target in topology.targets:
        routing_key = topology.routing_key(target, referral_id, early_warning)
    return OutboxMessage(
        referral_id=referral_id or "",
        routing_key=routing_key,
        body=base64.b64decode(payload["body_b64"]),
        headers=dict(payload.get("headers", {})),
        early_warning=early_warning,
    )
