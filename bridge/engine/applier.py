"""The applier: one snapshot from the broker → the missing actions on this node's own
system, each recorded in the ledger before the message is acknowledged. An early-warning
snapshot's hotline calls are `adapters.ratelimit.urgent`: they go first for the budget.

The one place that decides a message's fate from the outcome of its work:
- applied (or nothing left to do, or a stale/repeated snapshot) → ACK;
- a transient failure that outlived the in-process retry policy → RETRY (the broker's
  delayed-retry ladder; bounded, then parked by the transport);
- a failure no retry can fix (the snapshot does not map, the other side refuses for good)
  → a dead letter in the store with the other side's own message, then ACK: the
  referral's other work and every other referral go on.
Actions that the other side refuses with "status does not allow" or that failed
ambiguously are checked against the record (`ApplyPolicy.took_effect`) before anything
is parked: a lost response must not turn into a duplicate or a false alarm.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog
from pydantic import ValidationError

from adapters.base import Action as AdapterAction
from adapters.base import ActionResult, Hotline
from adapters.errors import (
    AdapterError,
    Conflict,
    RateLimited,
    StaleVersion,
    StatusNotAllowed,
    TransientError,
)
from adapters.ratelimit import urgent
from adapters.retry import RetryPolicy, retrying
from bridge.engine import parking
from bridge.engine.intake import REPLAY_HEADER
from bridge.engine.planner import Hold, Plan, Step
from bridge.errors import MappingError
from bridge.store import ActionRow, ReferralRow, Store, Tx
from bridge.transport import Outcome, Verdict
from bridge.transport.delivery import Delivery
from schemas.canonical import SCHEMA_VERSION, Referral

log = structlog.get_logger(__name__)


class ApplyPolicy(Protocol):
    """What differs per target system; one implementation per hotline."""

    system: str

    async def plan(self, ref: Referral, done: frozenset[str], tx: Tx) -> Plan:
        """The missing actions (raises MappingError, or LookupError to retry later)."""
        ...

    async def took_effect(self, step: Step, target: str, error: AdapterError) -> bool:
        """After a refusal or an ambiguous failure: read the record and say whether the
        step's effect is already there."""
        ...

    async def resolve_conflict(self, step: Step, ref: Referral, tx: Tx) -> str | None:
        """A create refused as a conflict: the native id of what exists, if known."""
        ...

    async def after_create(self, ref: Referral, native_id: str, tx: Tx) -> None:
        """Index what a create made (its origin reference → the new native id)."""
        ...


class Applier:
    """Applies snapshots addressed to `policy.system` through its hotline adapter."""

    def __init__(
        self,
        *,
        store: Store,
        hotline: Hotline,
        policy: ApplyPolicy,
        retry_policy: RetryPolicy,
        on_unavailable: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.hotline = hotline
        self.policy = policy
        self.system = policy.system
        self.retry_policy = retry_policy
        self.on_unavailable = on_unavailable
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._unsure: set[tuple[str, str]] = set()  # actions whose last answer was lost

    def _lock(self, referral_id: str) -> asyncio.Lock:
        lock = self._locks.get(referral_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[referral_id] = lock
        return lock

    async def handle(self, delivery: Delivery) -> Outcome | Verdict:
        """The transport's handler: decode, then apply under the referral's lock."""
        try:
            ref = Referral.model_validate_json(delivery.body)
        except ValidationError as exc:
            first = exc.errors(include_input=False, include_url=False)[0]
            field = ".".join(str(p) for p in first["loc"])
            reason = f"snapshot {delivery.message_id} does not validate: {field}: {first['msg']}"
            await self._park_message(delivery, reason, field)
            return Outcome.ACK
        if ref.schema_version != SCHEMA_VERSION:
            await self._park_message(
                delivery,
                f"snapshot schema version {ref.schema_version} is not supported",
                "schema_version",
            )
            return Outcome.ACK
        with (
            structlog.contextvars.bound_contextvars(
                referral_id=ref.referral_id, system=self.system, message_id=delivery.message_id
            ),
            # Early-warning work takes the hotline's request budget ahead of normal calls.
            urgent(delivery.early_warning or ref.early_warning),
        ):
            async with self._lock(ref.referral_id):
                return await self.apply(ref, replay=bool(delivery.headers.get(REPLAY_HEADER)))

    async def apply(self, ref: Referral, *, replay: bool = False) -> Outcome | Verdict:
        """Perform what `ref` needs that the ledger does not hold yet. A stale or
        repeated snapshot does nothing, unless it is a replay (admin, reconciler)."""
        async with self.store.begin() as tx:
            last = await tx.get_last_version(ref.referral_id, ref.source)
            if last is not None and ref.source_version <= last and not replay:
                log.debug("snapshot.stale", version=ref.source_version, last=last)
                return Outcome.ACK
            done = await tx.action_keys(ref.referral_id, self.system)
            try:
                plan = await self.policy.plan(ref, done, tx)
            except MappingError as exc:
                await tx.upsert_referral(_row(ref))
                await self._park_in(tx, ref, str(exc), exc.field)
                await tx.set_last_version(ref.referral_id, ref.source, ref.source_version)
                return Outcome.ACK
            except LookupError as exc:
                log.info("snapshot.deferred", reason=str(exc))
                return Verdict.retry(str(exc))
            if all(step.key in done for step in plan):
                # nothing missing (an echo of our own change, a repeat): settle it here
                await self._settle(tx, ref)
                return Outcome.ACK

        created: str | None = None
        todo = [step for step in plan if step.key not in done]
        settled = False
        for step in todo:
            if isinstance(step, Hold):
                await self._hold(ref, step)
                continue
            target = step.target or created
            if step.target == "" and created is None:
                # an event on a case whose create is still unconfirmed: next snapshot
                return Verdict.retry(f"{step.kind}: the target does not exist yet")
            # The last step records the snapshot as applied in its own transaction.
            settled = step is todo[-1]
            verdict = await self._perform(ref, step, target, settle=settled)
            if isinstance(verdict, str):
                created = created or (verdict if step.target is None else None)
                continue
            return verdict

        if not settled:
            async with self.store.begin() as tx:
                await self._settle(tx, ref)
        return Outcome.ACK

    async def _settle(self, tx: Tx, ref: Referral) -> None:
        """Record the referral as this snapshot shows it and its version as applied."""
        await tx.upsert_referral(_row(ref))
        last = await tx.get_last_version(ref.referral_id, ref.source)
        if last is None or ref.source_version > last:
            await tx.set_last_version(ref.referral_id, ref.source, ref.source_version)
        log.info("snapshot.applied", version=ref.source_version, state=ref.state.value)

    async def _perform(
        self, ref: Referral, step: Step, target: str | None, *, settle: bool = False
    ) -> str | Verdict:
        """Perform one step; the native id it concerned, or the verdict to stop with.
        `settle`: when the step is recorded as done, record the snapshot as applied in
        the same transaction (its last step: one commit instead of two)."""
        action = AdapterAction(step.kind, _key(ref, step), target, step.body)
        outcome = "applied"
        try:
            result = await self._call(action, step)
        except StatusNotAllowed as exc:
            try:
                took_effect = target is not None and await self.policy.took_effect(
                    step, target, exc
                )
            except TransientError as read_error:  # the read failed: decide on a later try
                return Verdict.retry(f"{step.kind}: refused, then {read_error}")
            if not took_effect:
                return await self._refused(ref, step, exc)
            result, outcome = ActionResult(native_id=target), "already_applied"
        except Conflict as exc:
            async with self.store.begin() as tx:
                existing = (
                    await self.policy.resolve_conflict(step, ref, tx) if target is None else None
                )
            if existing is None:
                if target is None:
                    return Verdict.retry(
                        f"{step.kind}: conflict, the existing record is not indexed yet"
                    )
                return await self._refused(ref, step, exc)
            result, outcome = ActionResult(native_id=existing), "already_applied"
        except StaleVersion as exc:
            return Verdict.retry(f"{step.kind}: {exc}")
        except TransientError as exc:
            if exc.ambiguous and target is not None and await self._confirmed(step, target, exc):
                result, outcome = ActionResult(native_id=target), "already_applied"
            else:
                if not isinstance(exc, RateLimited) and self.on_unavailable is not None:
                    # A run of errors outlived the in-process retries: pause the target
                    # so that what waits for it spends no attempts, and probe it; what
                    # waited then goes as soon as it answers again.
                    await self.on_unavailable(self.system)
                log.warning("action.deferred", kind=step.kind, error=type(exc).__name__)
                return Verdict.retry(f"{step.kind}: {exc}")
        except AdapterError as exc:
            return await self._refused(ref, step, exc)
        if result.replayed:
            outcome = "already_applied"

        async with self.store.begin() as tx:
            if step.target is None:
                await self.policy.after_create(ref, result.native_id, tx)
                await tx.upsert_referral(_row(ref, {self.system: result.native_id}))
            await tx.record_action(
                ActionRow(
                    ref.referral_id,
                    self.system,
                    step.key,
                    step.kind,
                    outcome,
                    {"native_id": result.native_id},
                )
            )
            if settle:
                await self._settle(tx, ref)
        log.info("action.applied", kind=step.kind, key=step.key, outcome=outcome)
        return result.native_id

    async def _call(self, action: AdapterAction, step: Step) -> ActionResult:
        """Perform `action`, retrying what is retriable. After a failure that may have
        reached the other side (a lost answer), the record is read before the call is
        sent again: 12345 takes no key for sign, reply, return or extension and would
        refuse the repeat (40002). This holds across the broker's retries too (in
        memory: after a restart the 40002 path settles it)."""
        unsure_key = (action.key, action.kind)
        async for attempt in retrying(self.retry_policy):
            with attempt:
                target = action.target
                if unsure_key in self._unsure and target is not None:
                    if await self.policy.took_effect(step, target, _LOST_ANSWER):
                        self._unsure.discard(unsure_key)
                        return ActionResult(native_id=target, replayed=True)
                try:
                    result = await self.hotline.perform(action)
                except TransientError as exc:
                    if exc.ambiguous:
                        self._unsure.add(unsure_key)
                    raise
                self._unsure.discard(unsure_key)
                return result
        raise AssertionError("unreachable: retrying re-raises")  # pragma: no cover

    async def _confirmed(self, step: Step, target: str, exc: AdapterError) -> bool:
        try:
            return await self.policy.took_effect(step, target, exc)
        except AdapterError:
            return False

    async def _refused(self, ref: Referral, step: Step, exc: AdapterError) -> Outcome:
        await parking.park_refusal(self.store, self.system, ref, step, exc)
        return Outcome.ACK

    async def _hold(self, ref: Referral, hold: Hold) -> None:
        await parking.hold(self.store, self.system, ref, hold)

    async def _park_in(self, tx: Tx, ref: Referral, reason: str, field: str | None) -> None:
        await parking.park_snapshot(tx, self.system, ref, reason, field)

    async def _park_message(self, delivery: Delivery, reason: str, field: str | None) -> None:
        await parking.park_message(self.store, self.system, delivery, reason, field)


_LOST_ANSWER = TransientError("lost", "the answer to the last attempt was lost", ambiguous=True)


def _key(ref: Referral, step: Step) -> str:
    """The idempotency key sent to the other side: referral + action, deterministic."""
    return f"{ref.referral_id}/{step.key}"


def _row(ref: Referral, ids: dict[str, str] | None = None) -> ReferralRow:
    return ReferralRow(
        referral_id=ref.referral_id,
        origin_system=ref.origin,
        ids={**ref.ids, **(ids or {})},
        state=ref.state.value,
        early_warning=ref.early_warning,
        case_no=ref.numbers.get("12351"),
    )
