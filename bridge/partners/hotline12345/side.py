"""The 12345 side of a node: what its feeds mean (intake) and how snapshots of the
union's cases become 12345 calls (apply policy). Writes only to 12345. Every referral of
12345 crosses to or from the union's hotline (`union`, `12351`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from adapters.base import Hotline
from adapters.errors import AdapterError
from bridge.engine.intake import TOOK_EFFECT, Intake, content_hash
from bridge.engine.planner import Plan, Step
from bridge.mapping import MappingTables, order_to_referral
from bridge.partners.hotline12345.plan import WITHDRAWN, plan_12345
from bridge.store import ActionRow, Tx
from schemas.canonical import Referral, referral_id
from schemas.hotline12345 import Order

SYSTEM: Final = "12345"
UNION: Final = "12351"
ANSWERED: Final = frozenset({"30", "40", "50", "60", "70"})
NOT_FORWARDED: Final = "not_forwarded"
SIGNED_OUTSIDE: Final = "already_signed"
"""Outcome of the `sign` step recorded at intake for an order first seen signed (20/25):
someone signed it in the 12345 UI; 12345 would refuse a second sign (40002)."""


class Intake12345:
    """Orders dispatched to the union's unit (12345-origin referrals) and orders created
    from 12351 cases (12351-origin referrals)."""

    system = SYSTEM

    def __init__(self, *, unit_code: str, tables: MappingTables, union: str = UNION) -> None:
        self.unit_code = unit_code
        self.tables = tables
        self.union = union

    def with_tables(self, tables: MappingTables) -> Intake12345:
        return Intake12345(unit_code=self.unit_code, tables=tables, union=self.union)

    def native_key(self, record: Order) -> str:
        return record.orderNo

    def dump(self, record: Order) -> dict[str, Any]:
        return record.model_dump(mode="json")

    def fetch_key(self, record: Order) -> str:
        return record.orderNo

    def parse(self, data: dict[str, Any]) -> Order:
        return Order.model_validate(data)

    def referral_of(self, record: Order) -> str:
        if record.sourceSystem == self.union and record.sourceNo:
            return referral_id(self.union, record.sourceNo)
        return referral_id(SYSTEM, record.orderNo)

    def missing_actions(self, record: Order, actions: Mapping[str, tuple[str, str]]) -> list[str]:
        """A sign that took effect shows as any status but `10`; the reply of round N as
        a `reply` at `reopenCount` N or a later round (as `Apply12345.took_effect` reads
        them). Returns, extensions and the rest are not judged: 12345 may move on."""
        missing = []
        for key, (kind, outcome) in sorted(actions.items()):
            if outcome not in TOOK_EFFECT:
                continue
            if kind == "sign" and record.orderStatus == "10":
                missing.append(key)
            elif kind == "reply" and key.startswith("reply:") and key[6:].isdigit():
                round_ = int(key[6:])
                shown = record.reopenCount > round_ or (
                    record.reopenCount == round_ and record.reply is not None
                )
                if not shown:
                    missing.append(key)
        return missing

    async def take(
        self,
        feed: str,
        record: Order,
        tx: Tx,
        read_at: datetime,
        *,
        force: bool = False,
        current: bool = True,
    ) -> Intake | None:
        # A 12345 order has no version: dedup on content, stamp our own sequence number.
        # Its lists show orders as they are now, so every record is `current`.
        digest = content_hash(record.model_dump_json().encode())
        seen = await tx.get_seen(SYSTEM, record.orderNo)
        if seen is not None and seen.content_hash == digest and not force:
            return None
        seq = seen.seq + 1 if seen is not None else 1
        mapping = self.tables.version
        await tx.put_seen(SYSTEM, record.orderNo, digest, seq)
        ref = order_to_referral(
            record, version=seq, read_at=read_at, unit_code=self.unit_code, tables=self.tables
        )
        if record.sourceSystem == self.union and record.sourceNo:
            await tx.put_created(SYSTEM, record.sourceNo, record.orderNo)
        if feed == "dispatched" and seen is None and record.orderStatus in ANSWERED:
            # Orders first seen already answered were handled outside the bridge.
            await tx.record_action(
                ActionRow(
                    ref.referral_id,
                    SYSTEM,
                    NOT_FORWARDED,
                    NOT_FORWARDED,
                    "recorded",
                    {"first_seen_status": record.orderStatus, "mapping": mapping},
                )
            )
            return Intake(ref, forward=False, mapping=mapping, target=self.union)
        if await tx.get_action(ref.referral_id, SYSTEM, NOT_FORWARDED) is not None:
            return Intake(ref, forward=False, mapping=mapping, target=self.union)
        if feed == "dispatched" and seen is None and record.orderStatus != "10":
            await tx.record_action(
                ActionRow(
                    ref.referral_id,
                    SYSTEM,
                    "sign",
                    "sign",
                    SIGNED_OUTSIDE,
                    {"first_seen_status": record.orderStatus, "mapping": mapping},
                )
            )
        if feed == "dispatched" and record.orderStatus == "70":
            # 12345 withdrew the order: nothing more may be done to it at 12345 (sign,
            # reply, return are refused), whatever the 12351 case does next.
            await tx.record_action(
                ActionRow(
                    ref.referral_id, SYSTEM, WITHDRAWN, WITHDRAWN, "recorded", {"mapping": mapping}
                )
            )
        return Intake(ref, mapping=mapping, target=self.union)


class Apply12345:
    """Snapshots of 12351 cases → sign / reply / return / extension / create order."""

    system = SYSTEM

    def __init__(self, *, hotline: Hotline, handler: str, tables: MappingTables) -> None:
        self.hotline = hotline
        self.handler = handler
        self.tables = tables

    def with_tables(self, tables: MappingTables) -> Apply12345:
        return Apply12345(hotline=self.hotline, handler=self.handler, tables=tables)

    async def plan(self, ref: Referral, done: frozenset[str], tx: Tx) -> Plan:
        if ref.origin == SYSTEM:
            order_no = ref.referral_id.split(":", 1)[1]
        else:
            order_no = await tx.lookup_created(SYSTEM, ref.source_no)
        return plan_12345(ref, done, order_no=order_no, handler=self.handler, tables=self.tables)

    async def took_effect(self, step: Step, target: str, error: AdapterError) -> bool:
        """Read the order: is the effect of `step` already there? (12345 refuses a
        repeated action with 40002, and a lost response leaves us not knowing.)"""
        order: Order = await self.hotline.fetch(target)
        if step.kind == "sign":
            return order.orderStatus != "10"
        if step.kind == "return":
            return order.orderStatus == "60"
        if step.kind == "extension":
            return order.orderStatus == "25" or (
                order.deadline is not None
                and order.deadline == getattr(step.body, "newDeadline", None)
            )
        if step.kind == "reply":
            round_ = int(step.key.split(":", 1)[1])
            if order.reopenCount > round_:
                return True
            return order.reopenCount == round_ and order.reply is not None
        return False

    async def resolve_conflict(self, step: Step, ref: Referral, tx: Tx) -> str | None:
        return await tx.lookup_created(SYSTEM, ref.source_no)

    async def after_create(self, ref: Referral, native_id: str, tx: Tx) -> None:
        await tx.put_created(SYSTEM, ref.source_no, native_id)
