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

Every action recorded and every snapshot parked names the version of the mapping tables
it was planned with (`MappingTables.version`) and the delivery attempt it took. A
snapshot an admin replays "with the original tables" carries `MAPPING_HEADER`: it is
planned with the tables of that version, read once from the store and kept.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, Self

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
from bridge.engine.metrics import EngineMetrics, ParkReason
from bridge.engine.planner import Hold, Plan, Step
from bridge.engine.versions import MAPPING_HEADER, StoredTables
from bridge.errors import MappingError
from bridge.mapping import MappingTables
from bridge.store import ActionRow, ReferralRow, Store, Tx
from bridge.transport import Outcome, Verdict
from bridge.transport.delivery import Delivery
from schemas.canonical import SCHEMA_VERSION, Referral

log = structlog.get_logger(__name__)


class ApplyPolicy(Protocol):
    """What differs per target system; one implementation per hotline."""

    system: str
    tables: MappingTables

    def with_tables(self, tables: MappingTables) -> Self:
        """The same policy planning with `tables` (a replay with the tables of its time)."""
        ...

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
        metrics: EngineMetrics | None = None,
    ) -> None:
        self.store = store
        self.hotline = hotline
        self.policy = policy
        self.system = policy.system
        self.retry_policy = retry_policy
        self.on_unavailable = on_unavailable
        self.metrics = metrics or EngineMetrics()
        self._stored = StoredTables(store)
        self._by_version: dict[str, ApplyPolicy] = {}  # policies with other tables
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
        outcome = await self._handle(delivery)
        if isinstance(outcome, Verdict) and outcome.outcome is Outcome.RETRY:
            self.metrics.retry(self.system)
        return outcome

    async def _handle(self, delivery: Delivery) -> Outcome | Verdict:
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
            try:
                policy = await self._policy_for(delivery.headers.get(MAPPING_HEADER))
            except MappingError as exc:  # a replay asked for tables this store lacks
                work = {"mapping": exc.value, "attempt": delivery.attempt + 1}
                async with self.store.begin() as tx:
                    await parking.park_snapshot(tx, self.system, ref, str(exc), exc.field, work)
                self._count_park("unknown_mapping")
                return Outcome.ACK
            async with self._lock(ref.referral_id):
                return await self.apply(
                    ref,
                    replay=bool(delivery.headers.get(REPLAY_HEADER)),
                    attempt=delivery.attempt,
                    policy=policy,
                )

    async def _policy_for(self, version: object) -> ApplyPolicy:
        """The policy planning with the tables of mapping `version` (None: the current
        ones), made once per version. Raises MappingError (see `StoredTables.get`)."""
        if version is None or version == self.policy.tables.version:
            return self.policy
        policy = self._by_version.get(str(version))
        if policy is None:
            tables = await self._stored.get(str(version))
            policy = self._by_version[str(version)] = self.policy.with_tables(tables)
        return policy

    async def apply(
        self,
        ref: Referral,
        *,
        replay: bool = False,
        attempt: int = 0,
        policy: ApplyPolicy | None = None,
    ) -> Outcome | Verdict:
        """Perform what `ref` needs that the ledger does not hold yet. A stale or
        repeated snapshot does nothing, unless it is a replay (admin, reconciler).
        `attempt`: the delivery's (0 on the first); `policy`: another version's tables
        (a replay with the original tables), else this applier's own."""
        work = _Work(policy or self.policy, attempt)
        async with self.store.begin() as tx:
            last = await tx.get_last_version(ref.referral_id, ref.source)
            if last is not None and ref.source_version <= last and not replay:
                log.debug("snapshot.stale", version=ref.source_version, last=last)
                return Outcome.ACK
            done = await tx.action_keys(ref.referral_id, self.system)
            plan: Plan | None
            try:
                plan = await work.policy.plan(ref, done, tx)
            except MappingError as exc:
                await tx.upsert_referral(_row(ref, self.system))
                await self._park_in(tx, work, ref, exc)
                await tx.set_last_version(ref.referral_id, ref.source, ref.source_version)
                plan = None
            except LookupError as exc:
                log.info("snapshot.deferred", reason=str(exc))
                return Verdict.retry(str(exc))
            if plan is not None and all(step.key in done for step in plan):
                # nothing missing (an echo of our own change, a repeat): settle it here
                await self._settle(tx, ref)
                return Outcome.ACK
        if plan is None:  # parked, and committed
            self._count_park("mapping")
            return Outcome.ACK

        created: str | None = None
        todo = [step for step in plan if step.key not in done]
        settled = False
        for step in todo:
            if isinstance(step, Hold):
                await self._hold(work, ref, step)
                continue
            target = step.target or created
            if step.target == "" and created is None:
                # an event on a case whose create is still unconfirmed: next snapshot
                return Verdict.retry(f"{step.kind}: the target does not exist yet")
            # The last step records the snapshot as applied in its own transaction.
            settled = step is todo[-1]
            verdict = await self._perform(work, ref, step, target, settle=settled)
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
        await tx.upsert_referral(_row(ref, self.system))
        last = await tx.get_last_version(ref.referral_id, ref.source)
        if last is None or ref.source_version > last:
            await tx.set_last_version(ref.referral_id, ref.source, ref.source_version)
        log.info("snapshot.applied", version=ref.source_version, state=ref.state.value)

    async def _perform(
        self, work: _Work, ref: Referral, step: Step, target: str | None, *, settle: bool = False
    ) -> str | Verdict:
        """Perform one step; the native id it concerned, or the verdict to stop with.
        `settle`: when the step is recorded as done, record the snapshot as applied in
        the same transaction (its last step: one commit instead of two)."""
        action = AdapterAction(step.kind, _key(ref, step), target, step.body)
        outcome = "applied"
        try:
            result = await self._call(work.policy, action, step)
        except StatusNotAllowed as exc:
            try:
                took_effect = target is not None and await work.policy.took_effect(
                    step, target, exc
                )
            except TransientError as read_error:  # the read failed: decide on a later try
                return Verdict.retry(f"{step.kind}: refused, then {read_error}")
            if not took_effect:
                return await self._refused(work, ref, step, exc)
            result, outcome = ActionResult(native_id=target), "already_applied"
        except Conflict as exc:
            async with self.store.begin() as tx:
                existing = (
                    await work.policy.resolve_conflict(step, ref, tx) if target is None else None
                )
            if existing is None:
                if target is None:
                    return Verdict.retry(
                        f"{step.kind}: conflict, the existing record is not indexed yet"
                    )
                return await self._refused(work, ref, step, exc)
            result, outcome = ActionResult(native_id=existing), "already_applied"
        except StaleVersion as exc:
            return Verdict.retry(f"{step.kind}: {exc}")
        except TransientError as exc:
            if (
                exc.ambiguous
                and target is not None
                and await self._confirmed(work.policy, step, target, exc)
            ):
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
            return await self._refused(work, ref, step, exc)
        if result.replayed:
            outcome = "already_applied"

        async with self.store.begin() as tx:
            if step.target is None:
                await work.policy.after_create(ref, result.native_id, tx)
                await tx.upsert_referral(_row(ref, self.system, {self.system: result.native_id}))
            await tx.record_action(
                ActionRow(
                    ref.referral_id,
                    self.system,
                    step.key,
                    step.kind,
                    outcome,
                    work.detail(native_id=result.native_id),
                )
            )
            if settle:
                await self._settle(tx, ref)
        self.metrics.action(self.system, step.kind, outcome)
        log.info("action.applied", kind=step.kind, key=step.key, outcome=outcome)
        return result.native_id

    async def _call(self, policy: ApplyPolicy, action: AdapterAction, step: Step) -> ActionResult:
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
                    if await policy.took_effect(step, target, _LOST_ANSWER):
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

    async def _confirmed(
        self, policy: ApplyPolicy, step: Step, target: str, exc: AdapterError
    ) -> bool:
        try:
            return await policy.took_effect(step, target, exc)
        except AdapterError:
            return False

    async def _refused(self, work: _Work, ref: Referral, step: Step, exc: AdapterError) -> Outcome:
        await parking.park_refusal(self.store, self.system, ref, step, exc, work.detail())
        self.metrics.action(self.system, step.kind, "parked")
        self._count_park("refused")
        return Outcome.ACK

    async def _hold(self, work: _Work, ref: Referral, hold: Hold) -> None:
        await parking.hold(self.store, self.system, ref, hold, work.detail())
        self.metrics.action(self.system, hold.kind, hold.outcome)
        if hold.outcome == "parked":
            self._count_park("held")

    async def _park_in(self, tx: Tx, work: _Work, ref: Referral, exc: MappingError) -> None:
        await parking.park_snapshot(tx, self.system, ref, str(exc), exc.field, work.detail())

    async def _park_message(self, delivery: Delivery, reason: str, field: str | None) -> None:
        await parking.park_message(self.store, self.system, delivery, reason, field)
        self._count_park("invalid")

    def _count_park(self, reason: ParkReason) -> None:
        self.metrics.park(self.system, "apply", reason)


@dataclass(frozen=True, slots=True)
class _Work:
    """One delivery of a snapshot: the policy it is planned with (and so the mapping
    tables) and the delivery attempt (0 on the first)."""

    policy: ApplyPolicy
    attempt: int = 0

    def detail(self, **fields: Any) -> dict[str, Any]:
        """`fields` plus what the timeline shows of every action: the mapping version
        and the how-manieth try it took (1 on the first delivery)."""
        return {**fields, "mapping": self.policy.tables.version, "attempt": self.attempt + 1}


_LOST_ANSWER = TransientError("lost", "the answer to the last attempt was lost", ambiguous=True)


def _key(ref: Referral, step: Step) -> str:
    """The idempotency key sent to the other side: referral + action, deterministic."""
    return f"{ref.referral_id}/{step.key}"


def _row(ref: Referral, system: str, ids: dict[str, str] | None = None) -> ReferralRow:
    """The ledger row of a snapshot applied on `system`: the referral goes to `system`
    unless the snapshot names its target (an older node's snapshot names none); one
    that began on `system` names none it goes to, and the ledger keeps what it has."""
    return ReferralRow(
        referral_id=ref.referral_id,
        origin_system=ref.origin,
        ids={**ref.ids, **(ids or {})},
        state=ref.state.value,
        early_warning=ref.early_warning,
        numbers=dict(ref.numbers),
        target=ref.target or (system if system != ref.origin else None),
    )
