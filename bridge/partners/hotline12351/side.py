"""The union's side of a node (12351): what its change feed means (intake) and how
partners' snapshots become 12351 calls (apply policy). Writes only to 12351. Generic
over the partners: it routes each case to the partner it came from or was transferred
to, and reads a partner's snapshots through that partner's kind (`UnionView`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, Final

from adapters.base import Hotline
from adapters.errors import AdapterError
from bridge.engine.intake import TOOK_EFFECT, Intake, content_hash
from bridge.engine.planner import Plan, Step
from bridge.mapping import MappingTables, case_to_referral
from bridge.mapping.from12351 import FIRST_PARTNERS, concerns_partners, target_of
from bridge.partners import Deployment
from bridge.partners.hotline12351.plan import plan_12351
from bridge.store import Tx
from schemas.canonical import Referral, referral_id
from schemas.hotline12351 import Case

SYSTEM: Final = "12351"


def _referral_id(case: Case, partners: Collection[str]) -> str:
    if case.origin is not None and case.origin.system in partners:
        return referral_id(case.origin.system, case.origin.external_no)
    return referral_id(SYSTEM, case.case_no)


class Intake12351:
    """Cases created from partners' requests, and cases transferred to a partner.
    `partners`: the deployment's partner names (`[bridge] partners`)."""

    system = SYSTEM

    def __init__(
        self, *, tables: MappingTables, partners: Collection[str] = FIRST_PARTNERS
    ) -> None:
        self.tables = tables
        self.partners = tuple(p for p in partners if p != SYSTEM)

    def with_tables(self, tables: MappingTables) -> Intake12351:
        return Intake12351(tables=tables, partners=self.partners)

    def native_key(self, record: Case) -> str:
        return record.case_no

    def dump(self, record: Case) -> dict[str, Any]:
        return record.model_dump(mode="json")

    def fetch_key(self, record: Case) -> str:
        return record.id

    def parse(self, data: dict[str, Any]) -> Case:
        return Case.model_validate(data)

    def referral_of(self, record: Case) -> str:
        return _referral_id(record, self.partners)

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
        if record.origin is not None and record.origin.system in self.partners:
            await tx.put_created(SYSTEM, record.origin.external_no, record.id)
        rid = _referral_id(record, self.partners)
        if not concerns_partners(record, self.partners) and await tx.get_referral(rid) is None:
            return None
        ref = case_to_referral(record, read_at=read_at, tables=self.tables, partners=self.partners)
        return Intake(ref, mapping=self.tables.version, target=target_of(record, self.partners))


class Apply12351:
    """Partners' snapshots → create case / external_ref / partner_update /
    callback_result / reopened / withdrawn. `deployment` names each snapshot's kind."""

    system = SYSTEM

    def __init__(
        self, *, hotline: Hotline, tables: MappingTables, deployment: Deployment | None = None
    ) -> None:
        self.hotline = hotline
        self.tables = tables
        self.deployment = deployment

    def with_tables(self, tables: MappingTables) -> Apply12351:
        return Apply12351(hotline=self.hotline, tables=tables, deployment=self.deployment)

    async def plan(self, ref: Referral, done: frozenset[str], tx: Tx) -> Plan:
        view = self.deployment.union_view(ref.source) if self.deployment is not None else None
        if ref.origin != SYSTEM:
            case_id = await tx.lookup_created(SYSTEM, ref.source_no)
        else:
            row = await tx.get_referral(ref.referral_id)
            case_id = row.ids.get(SYSTEM) if row is not None else None
        return plan_12351(ref, done, case_id=case_id, tables=self.tables, view=view)

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
