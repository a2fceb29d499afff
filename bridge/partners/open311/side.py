"""The 12385 side of a node: what its `updates` feed means (intake) and how snapshots of
the union's cases become 12385 calls (apply policy). Writes only to 12385. Every referral
of 12385 crosses to or from the union's hotline (`union`, `12351`).

What the intake keeps of each request (a seen row under the request id, its `seq` the
version of the last snapshot made of it):
- `c:<case no>`: a request this node created from that union case (`after_create`);
- `r:<reopen count>`: a request 12385 referred to the union.
Each update is taken once (a seen row under `update:<update_id>`), whatever the
windows' overlap reads twice. Updates on any other request are not the bridge's.

12385 writes no update when a request is created, so the feed would never tell the
union that the request exists: `after_create` records that first snapshot (`open`) and
queues it in the same transaction as the create's ledger row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final

from adapters.base import Hotline
from adapters.errors import AdapterError
from bridge.engine.intake import Intake
from bridge.engine.planner import Plan, Step
from bridge.errors import MappingError
from bridge.mapping import MappingTables
from bridge.partners.open311 import mapping
from bridge.partners.open311.tables import Open311Tables
from bridge.store import ActionRow, Tx
from schemas.canonical import Referral, referral_id
from schemas.open311 import ServiceRequest, UpdateRecord

UNION: Final = "12351"
KIND: Final = "open311"
"""The kind's name: its tables are `MappingTables.of(KIND, Open311Tables)`."""
REFERRAL: Final = "internal_referral"
WITHDRAWN: Final = "withdrawn_at_12385"
"""Ledger key the intake records when 12385 staff cancel a referred request: from then
on the 12385 side posts nothing for it (12385 takes no update on a withdrawn request)."""
UPDATE: Final = "update:"

Publish = Callable[[Tx, Intake], Any]
"""Queue a snapshot of this side's own system (`bridge.engine.intake.record_intake` with
the node's topology)."""


def _seen_of_created(case_no: str) -> str:
    return f"c:{case_no}"


class Intake385:
    """Staff updates on requests created from union cases, and referrals to the union
    (with cancellations and reopens)."""

    def __init__(self, *, system: str, tables: MappingTables, union: str = UNION) -> None:
        self.system = system
        self.tables = tables
        self.union = union

    def with_tables(self, tables: MappingTables) -> Intake385:
        return Intake385(system=self.system, tables=tables, union=self.union)

    @property
    def tables385(self) -> Open311Tables:
        return self.tables.of(KIND, Open311Tables)

    def native_key(self, record: UpdateRecord | ServiceRequest) -> str:
        if isinstance(record, ServiceRequest):
            return record.service_request_id
        return record.update.update_id

    def dump(self, record: UpdateRecord) -> dict[str, Any]:
        return record.model_dump(mode="json")

    def fetch_key(self, record: UpdateRecord | ServiceRequest) -> str:
        if isinstance(record, ServiceRequest):
            return record.service_request_id
        return record.update.service_request_id

    def parse(self, data: dict[str, Any]) -> UpdateRecord:
        return UpdateRecord.model_validate(data)

    def referral_of(self, record: UpdateRecord | ServiceRequest) -> str:
        """From the record alone: a request created by the union names its case only in
        private attributes, so this is exact for referrals (and for a request read with
        its `external_ref`), the request's own id otherwise."""
        request = record if isinstance(record, ServiceRequest) else record.request
        if request is not None and request.external_ref:
            return referral_id(self.union, request.external_ref)
        return referral_id(self.system, self.fetch_key(record))

    def missing_actions(self, record: Any, actions: Mapping[str, tuple[str, str]]) -> list[str]:
        """Not judged: an update list shows what happened, not what stands."""
        return []

    async def take(
        self,
        feed: str,
        record: UpdateRecord | ServiceRequest,
        tx: Tx,
        read_at: datetime,
        *,
        force: bool = False,
        current: bool = False,
    ) -> Intake | None:
        """The snapshot an update makes (None: a repeat, our own post coming back, or not
        the bridge's). A request read by id (a replay's re-read) says nothing new: its
        updates are the changes. Raises MappingError for a referral that does not map."""
        if isinstance(record, ServiceRequest):
            return None
        update = record.update
        key = UPDATE + update.update_id
        if await tx.get_seen(self.system, key) is not None and not force:
            return None
        await tx.put_seen(self.system, key, "1", 1)
        request_id = update.service_request_id
        seen = await tx.get_seen(self.system, request_id)
        version = seen.seq + 1 if seen is not None else 1
        mapping_version = self.tables.version
        if update.status == REFERRAL:
            request = record.request
            if request is None:
                raise MappingError("request", None, request_id, "the referred request is gone")
            if request.agency_responsible != self.union:
                return None  # referred elsewhere since
            rounds = _reopen_count(seen.content_hash) if seen is not None else 0
            ref = mapping.referred_to_referral(
                self.system,
                request,
                update,
                version=version,
                read_at=read_at,
                tables=self.tables385,
                reopen_count=rounds,
                union=self.union,
            )
            await tx.put_seen(self.system, request_id, f"r:{rounds}", version)
            return Intake(ref, mapping=mapping_version, target=self.union)
        if seen is None:
            return None
        if seen.content_hash.startswith("c:"):
            if update.status not in self.tables385.created_status_to_lifecycle:
                return None
            ref = mapping.created_to_referral(
                self.system,
                seen.content_hash[2:],
                request_id,
                update,
                version=version,
                read_at=read_at,
                tables=self.tables385,
                union=self.union,
            )
            await tx.put_seen(self.system, request_id, seen.content_hash, version)
            return Intake(ref, mapping=mapping_version, target=self.union)
        if update.status not in self.tables385.referred_status_to_lifecycle:
            return None  # the union's own post, listed back to us
        rounds = _reopen_count(seen.content_hash) + (update.status == "reopen")
        rid = referral_id(self.system, request_id)
        base = await _last_snapshot(tx, rid)
        if base is None:
            raise MappingError("request", None, request_id, "an update on a referral never read")
        ref = mapping.referred_update(
            self.system,
            base,
            update,
            version=version,
            read_at=read_at,
            tables=self.tables385,
            reopen_count=rounds,
            union=self.union,
        )
        await tx.put_seen(self.system, request_id, f"r:{rounds}", version)
        if update.status == "cancelled":
            await tx.record_action(
                ActionRow(
                    rid, self.system, WITHDRAWN, WITHDRAWN, "recorded", {"mapping": mapping_version}
                )
            )
        return Intake(ref, mapping=mapping_version, target=self.union)


def _reopen_count(seen: str) -> int:
    return int(seen[2:]) if seen.startswith("r:") and seen[2:].isdigit() else 0


async def _last_snapshot(tx: Tx, rid: str) -> Referral | None:
    """The referral as the ledger last recorded it (by either side: the union's case
    made from the request carries its contact, subject and text the same)."""
    row = await tx.get_referral(rid)
    if row is None or row.last_snapshot is None:
        return None
    return Referral.model_validate(row.last_snapshot)


class Apply385:
    """Snapshots of 12351 cases → create a request (a case transferred to 12385), or post
    the union's handling of a request 12385 referred to it."""

    def __init__(
        self,
        *,
        system: str,
        hotline: Hotline,
        tables: MappingTables,
        publish: Publish,
        union: str = UNION,
    ) -> None:
        self.system = system
        self.hotline = hotline
        self.tables = tables
        self.publish = publish
        self.union = union

    @property
    def tables385(self) -> Open311Tables:
        return self.tables.of(KIND, Open311Tables)

    def with_tables(self, tables: MappingTables) -> Apply385:
        return Apply385(
            system=self.system,
            hotline=self.hotline,
            tables=tables,
            publish=self.publish,
            union=self.union,
        )

    async def plan(self, ref: Referral, done: frozenset[str], tx: Tx) -> Plan:
        if ref.origin != self.system:
            if ref.origin != self.union or ref.target != self.system:
                return []
            if "create_request" in done or await tx.lookup_created(self.system, ref.source_no):
                return []
            form = mapping.create_request_form(ref, self.tables385, self.tables.districts)
            return [Step("create_request", "create_request", None, form)]
        if WITHDRAWN in done:
            return []  # 12385 withdrew it: it takes nothing more, and needs nothing
        request_id = ref.referral_id.split(":", 1)[1]
        return [
            Step("post_update", key, request_id, body)
            for key, body in mapping.post_update_steps(ref, request_id)
        ]

    async def took_effect(self, step: Step, target: str, error: AdapterError) -> bool:
        # 12385 replays a repeated external_ref or update_id with its first answer: an
        # ambiguous failure is settled by sending the same body again.
        return False

    async def resolve_conflict(self, step: Step, ref: Referral, tx: Tx) -> str | None:
        return await tx.lookup_created(self.system, ref.source_no)

    async def after_create(self, ref: Referral, native_id: str, tx: Tx) -> None:
        """Index the request, and queue its first snapshot (`open`) for the union."""
        await tx.put_created(self.system, ref.source_no, native_id)
        seen = await tx.get_seen(self.system, native_id)
        if seen is not None:
            return  # recorded already (a replayed create)
        await tx.put_seen(self.system, native_id, _seen_of_created(ref.source_no), 1)
        snapshot = mapping.created_to_referral(
            self.system,
            ref.source_no,
            native_id,
            None,
            version=1,
            read_at=ref.read_at,
            tables=self.tables385,
            union=self.union,
        )
        await self.publish(tx, Intake(snapshot, mapping=self.tables.version, target=self.union))
