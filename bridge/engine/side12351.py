"""The 12351 side of a node: what its change feed means (intake) and how snapshots from
the other side become 12351 calls (apply policy). Writes only to 12351."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from adapters.base import Hotline
from adapters.errors import AdapterError
from bridge.engine.intake import TOOK_EFFECT, Intake, content_hash
from bridge.engine.planner import Plan, Step, plan_12351
from bridge.mapping import MappingTables, case_to_referral, concerns_12345
from bridge.store import Tx
from schemas.canonical import Referral, referral_id
from schemas.hotline12351 import Case

SYSTEM: Final = "12351"


def _referral_id(case: Case) -> str:
    if case.origin is not None and case.origin.system == "12345":
        return referral_id("12345", case.origin.external_no)
    return referral_id(SYSTEM, case.case_no)


class Intake12351:
    """Cases created from 12345 orders, and cases transferred to 12345."""

    system = SYSTEM

    def __init__(self, *, tables: MappingTables) -> None:
        self.tables = tables

    def with_tables(self, tables: MappingTables) -> Intake12351:
        return Intake12351(tables=tables)

    def native_key(self, record: Case) -> str:
        return record.case_no

    def dump(self, record: Case) -> dict[str, Any]:
        return record.model_dump(mode="json")

    def fetch_key(self, record: Case) -> str:
        return record.id

    def parse(self, data: dict[str, Any]) -> Case:
        return Case.model_validate(data)

    def referral_of(self, record: Case) -> str:
        return _referral_id(record)

    def missing_actions(self, record: Case, actions: Mapping[str, tuple[str, str]]) -> list[str]:
        """An `external_ref` shows as `transfer.external_no` (12351 never changes it once
        set: another number is a 409); a `withdrawn` as a `closed` case (or `rejected`,
        on which it is a no-op). Other events only add to the timeline or can be undone
        by a reopen: not judged."""
        missing = []
        for key, (kind, outcome) in sorted(actions.items()):
            if outcome not in TOOK_EFFECT:
                continue
            if kind == "external_ref" and (
                record.transfer is None or not record.transfer.external_no
            ):
                missing.append(key)
            elif kind == "withdrawn" and record.status not in ("closed", "rejected"):
                missing.append(key)
        return missing

    async def take(
        self,
        feed: str,
        record: Case,
        tx: Tx,
        read_at: datetime,
        *,
        force: bool = False,
        current: bool = False,
    ) -> Intake | None:
        # Feed entries are the case as it stood after each change: an entry can be older
        # than one already read. The case's own version orders them; at the same version
        # the content decides, since a case fixed by hand in the union's database keeps
        # its version (and its feed shows nothing): only a read of the case finds it.
        seen = await tx.get_seen(SYSTEM, record.id)
        digest = _content(record)
        if seen is not None and not force:
            # a feed entry at the version already read is a repeat whatever it holds (an
            # older entry of the history); the case read now is judged by its content
            same = record.version == seen.seq and (not current or digest == seen.content_hash)
            if record.version == seen.seq and seen.content_hash == f"v{record.version}":
                # recorded before cases were compared by content (the version alone):
                # take it as the same and record its content from now on
                await tx.put_seen(SYSTEM, record.id, digest, record.version)
                return None
            if record.version < seen.seq or same:
                return None
        await tx.put_seen(SYSTEM, record.id, digest, record.version)
        if record.origin is not None and record.origin.system == "12345":
            await tx.put_created(SYSTEM, record.origin.external_no, record.id)
        if not concerns_12345(record) and await tx.get_referral(_referral_id(record)) is None:
            return None
        return Intake(
            case_to_referral(record, read_at=read_at, tables=self.tables),
            mapping=self.tables.version,
        )


class Apply12351:
    """Snapshots of 12345 orders → create case / external_ref / partner_update /
    callback_result / reopened / withdrawn."""

    system = SYSTEM

    def __init__(self, *, hotline: Hotline, tables: MappingTables) -> None:
        self.hotline = hotline
        self.tables = tables

    def with_tables(self, tables: MappingTables) -> Apply12351:
        return Apply12351(hotline=self.hotline, tables=tables)

    async def plan(self, ref: Referral, done: frozenset[str], tx: Tx) -> Plan:
        if ref.origin == "12345":
            case_id = await tx.lookup_created(SYSTEM, ref.source_no)
        else:
            row = await tx.get_referral(ref.referral_id)
            case_id = row.ids.get(SYSTEM) if row is not None else None
        return plan_12351(ref, done, case_id=case_id, tables=self.tables)

    async def took_effect(self, step: Step, target: str, error: AdapterError) -> bool:
        # Every 12351 write carries an Idempotency-Key: a retry replays the first answer,
        # so an ambiguous failure is settled by retrying, not by reading.
        return False

    async def resolve_conflict(self, step: Step, ref: Referral, tx: Tx) -> str | None:
        return await tx.lookup_created(SYSTEM, ref.source_no)

    async def after_create(self, ref: Referral, native_id: str, tx: Tx) -> None:
        await tx.put_created(SYSTEM, ref.source_no, native_id)


def _content(record: Case) -> str:
    """What the ledger compares of a case: all of it, as 12351 gives it."""
    return "c" + content_hash(record.model_dump_json().encode())[:40]
