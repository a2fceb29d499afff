"""Replaying a dead letter: what an admin does once the cause is fixed (a table
corrected, a record repaired on its side, a refusal resolved by hand).

A replay only writes to the store, in one transaction: the record or snapshot goes back
into the outbox (marked as a replay, so the applier does not drop it as stale; a message
the relay could not publish goes back as it was), the parked actions of its referral
are forgotten so they are planned again, and the dead letter is marked `replayed`. The
running daemon's relay publishes it. Replaying a record that still does not map parks it
again, with a new dead letter.

With which mapping tables (`mapping`): `current`, the node's tables now (say, once a
table was corrected), or `original`, those of the version the letter recorded (say, when
a table change broke what mapped before). A parked record is re-mapped here with them; a
parked snapshot goes back marked `MAPPING_HEADER` and its applier plans it with them. A
letter that recorded no version (older rows, messages parked by the relay or the broker)
can be replayed with the current tables only.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from adapters.base import Hotline
from adapters.errors import AdapterError
from bridge.engine.intake import (
    REPLAY_HEADER,
    IntakePolicy,
    park_record,
    record_intake,
)
from bridge.engine.versions import MAPPING_HEADER, StoredTables
from bridge.errors import MappingError
from bridge.mapping import MappingTables
from bridge.store import OutboxMessage, Store, Tx
from bridge.transport import Topology
from schemas.canonical import Referral


class ReplayError(Exception):
    """The dead letter cannot be replayed (unknown, not parked, no payload to replay, no
    recorded mapping version to replay with)."""


Tables = Literal["current", "original"]


async def replay_dead_letter(
    store: Store,
    letter_id: int,
    *,
    intake: Mapping[str, IntakePolicy],
    topology: Topology,
    hotlines: Mapping[str, Hotline] | None = None,
    now: datetime | None = None,
    mapping: Tables = "current",
) -> str:
    """Replay one parked dead letter with the `current` or the `original` mapping tables
    (see the module docstring); returns what was done. Raises ReplayError.

    A parked record is read again from its system when this node runs that side (the
    admin may have had it repaired there); otherwise the stored copy is replayed.
    """
    now = now or datetime.now(UTC)
    original = await _original_tables(store, letter_id) if mapping == "original" else None
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
            if original is not None:
                policy = policy.with_tables(original)
            record = fresh if fresh is not None else policy.parse(payload["record"])
            feed = payload.get("feed", "")
            try:
                taken = await policy.take(feed, record, tx, now, force=True)
            except MappingError as exc:
                await park_record(tx, policy, feed, record, exc)
                outcome = f"still does not map, parked again: {exc}"
            else:
                outcome = "nothing to forward"
                if taken is not None and await record_intake(tx, topology, taken, replay=True):
                    outcome = f"snapshot of {taken.referral.referral_id} queued again"
        elif "snapshot" in payload:
            ref = Referral.model_validate(payload["snapshot"])
            forgotten = await _forget_parked_actions(tx, ref.referral_id, letter.system)
            version = original.version if original is not None else None
            await _enqueue(tx, topology, letter.system, ref, version)
            outcome = f"snapshot queued again; parked actions retried: {forgotten or 'none'}"
        elif original is not None:  # a message as it came: nothing here maps it
            raise ReplayError(f"dead letter {letter_id} cannot be replayed with other tables")
        elif letter.stage == "publish":
            await tx.enqueue(_unpublished(letter.referral_id, letter.system, payload, topology))
            outcome = "message queued again"
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
    if original is not None:
        outcome += f" (original mapping tables, version {original.version})"
    return outcome


async def _original_tables(store: Store, letter_id: int) -> MappingTables:
    """The tables of the mapping version `letter_id` recorded; raises ReplayError when it
    recorded none or the store does not hold it."""
    letter = await store.get_dead_letter(letter_id)
    if letter is None:
        raise ReplayError(f"dead letter {letter_id} does not exist")
    version = letter.payload.get("mapping")
    if not isinstance(version, str):
        raise ReplayError(
            f"dead letter {letter_id} recorded no mapping version: "
            "it can be replayed with the current tables only"
        )
    try:
        return await StoredTables(store).get(version)
    except MappingError as exc:
        raise ReplayError(f"dead letter {letter_id}: mapping {exc.reason}") from None


async def _refetch(
    store: Store,
    letter_id: int,
    intake: Mapping[str, IntakePolicy],
    hotlines: Mapping[str, Hotline],
) -> Any:
    letter = await store.get_dead_letter(letter_id)
    if letter is None or letter.stage != "intake":
        return None
    if letter.system not in hotlines or letter.system not in intake:
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


async def _enqueue(
    tx: Tx, topology: Topology, target: str, ref: Referral, original: str | None
) -> None:
    """Queue `ref` again for `target`'s applier; `original`: the mapping version it is to
    be planned with (None: the applier's current tables)."""
    from bridge.engine.intake import snapshot_headers

    headers: dict[str, Any] = {**snapshot_headers(ref), REPLAY_HEADER: True}
    if original is not None:
        headers[MAPPING_HEADER] = original
    await tx.enqueue(
        OutboxMessage(
            referral_id=ref.referral_id,
            routing_key=topology.routing_key(target, ref.referral_id, ref.early_warning),
            body=ref.model_dump_json().encode(),
            headers=headers,
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
