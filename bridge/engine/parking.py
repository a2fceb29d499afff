"""What the applier parks for an admin, and how: a dead letter in the store (stage
`apply`) with the other side's own message or the mapping's reason, never the snapshot's
personal data in the reason; the snapshot or message itself goes into the payload, from
which a replay starts again.

`work` is what the timeline records of the delivery (`{"mapping": <version>, "attempt":
<n>}`): it goes into the action's detail, and the mapping version into the dead letter's
payload (a replay may plan it again with those tables)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from adapters.errors import AdapterError, ErrorInfo
from bridge.engine.planner import Hold, Step
from bridge.store import ActionRow, DeadLetterIn, Store, Tx
from bridge.transport.delivery import Delivery
from schemas.canonical import Referral

log = structlog.get_logger(__name__)


async def park_refusal(
    store: Store,
    system: str,
    ref: Referral,
    step: Step,
    exc: AdapterError,
    work: Mapping[str, Any],
) -> None:
    """`system` refused `step` for good: park the snapshot and record the step as parked
    (so that it is not tried again by itself)."""
    info = ErrorInfo.of(exc)
    reason = (
        f"{system} refused {step.kind} for {ref.referral_id}: {info.kind}"
        f"{': ' + info.detail if info.detail else ''}"
    )
    field = info.fields[0]["pointer"] if info.fields else None
    async with store.begin() as tx:
        await park_snapshot(tx, system, ref, reason, field, work)
        await tx.record_action(
            ActionRow(
                ref.referral_id, system, step.key, step.kind, "parked", {"reason": reason, **work}
            )
        )
    log.warning("action.parked", kind=step.kind, key=step.key, error=info.kind)


async def hold(
    store: Store, system: str, ref: Referral, held: Hold, work: Mapping[str, Any]
) -> None:
    """Record a step that is not performed: parked for an admin, or a decision (skipped)."""
    async with store.begin() as tx:
        if held.outcome == "parked":
            await park_snapshot(tx, system, ref, held.reason, held.field, work)
        await tx.record_action(
            ActionRow(
                ref.referral_id,
                system,
                held.key,
                held.kind,
                held.outcome,
                {"reason": held.reason, **work},
            )
        )
    log.info("action.held", kind=held.kind, key=held.key, outcome=held.outcome)


async def park_snapshot(
    tx: Tx, system: str, ref: Referral, reason: str, field: str | None, work: Mapping[str, Any]
) -> None:
    await tx.park(
        DeadLetterIn(
            system=system,
            stage="apply",
            reason=reason,
            payload={"snapshot": ref.model_dump(mode="json"), "mapping": work.get("mapping")},
            referral_id=ref.referral_id,
            field=field,
            attempts=int(work.get("attempt", 1)),
        )
    )
    log.warning("snapshot.parked", field=field)


async def park_message(
    store: Store, system: str, delivery: Delivery, reason: str, field: str | None
) -> None:
    """A message that is not a snapshot we can read: parked as it came."""
    async with store.begin() as tx:
        await tx.park(
            DeadLetterIn(
                system=system,
                stage="apply",
                reason=reason,
                payload={
                    "message_id": delivery.message_id,
                    "body": delivery.body.decode("utf-8", "replace"),
                },
                referral_id=delivery.referral_id,
                field=field,
            )
        )
    log.warning("message.parked", message_id=delivery.message_id, field=field)
