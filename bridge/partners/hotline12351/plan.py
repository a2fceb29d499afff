"""What the union's side (12351) plans for a partner's snapshot (ARCHITECTURE.md "Flows").

Pure: arguments in, a `Plan` out; no I/O, no clock. Generic over the partner: what the
canonical fields do not say (the union's service type, the partner status) the partner's
kind reads for it (`bridge.partners.UnionView`), so this module names no partner.
- a partner-origin referral (a request the partner referred to the union): create the
  case (not for a request already withdrawn); then a granted extension →
  `partner_update extended`; a reopen → `reopened` of that round; a visit →
  `callback_result` of that round; a withdrawal → `withdrawn`.
- a union-origin referral (the partner's record made from a transferred case):
  `external_ref`, then `partner_update accepted`, then the update of the record's
  current status.
"""

from __future__ import annotations

from typing import Final

from bridge.engine.planner import Hold, Plan, Step
from bridge.mapping import MappingTables, to12351
from bridge.partners import UnionView
from schemas.canonical import Lifecycle, Referral

SYSTEM: Final = "12351"

ONCE_PER_ORDER = frozenset({"extended", "closed", "returned", "withdrawn"})
"""Partner statuses a record reaches at most once (one extension per record, and the
terminal ones); the others are keyed by the reopen round."""


def plan_12351(
    ref: Referral,
    done: frozenset[str],
    *,
    case_id: str | None,
    tables: MappingTables,
    view: UnionView | None = None,
) -> Plan:
    """Missing actions on 12351 for a snapshot read at a partner.

    `case_id`: the 12351 case of this referral when known (the case this node created, or
    the transferred case); None when it does not exist yet. `view`: how the partner's
    kind reads the snapshot for the union (None: the 12345 rows of `tables`).
    Raises MappingError when the snapshot does not map to a 12351 request.
    """
    plan: Plan = []
    if ref.origin != SYSTEM:
        if case_id is None:
            if ref.state is Lifecycle.WITHDRAWN:
                return [
                    Hold(
                        "create_case", "create_case", "withdrawn before delivery", outcome="skipped"
                    )
                ]
            service_type = view.service_type(ref, tables) if view is not None else None
            body = to12351.create_case_request(ref, tables, service_type)
            plan.append(Step("create_case", "create_case", None, body))
        target = case_id or ""  # filled in by the applier once the create step has run
        if (update := to12351.extension_granted_for(ref)) is not None:
            plan.append(Step("partner_update", "partner_update:extended", target, update))
        if (reopened := to12351.reopened_for(ref)) is not None:
            plan.append(Step("reopened", f"reopened:{ref.reopen_count}", target, reopened))
        if (callback := to12351.callback_result_for(ref)) is not None:
            plan.append(Step("callback_result", f"callback:{ref.reopen_count}", target, callback))
        if (withdrawn := to12351.withdrawn_for(ref)) is not None:
            plan.append(Step("withdrawn", "withdrawn", target, withdrawn))
        return plan

    if case_id is None:
        raise LookupError(f"the 12351 case of {ref.referral_id} is not known yet")
    plan.append(Step("external_ref", "external_ref", case_id, to12351.external_ref_for(ref)))
    number = ref.numbers.get(ref.source) or ref.source_no
    if "partner_update:accepted" not in done:
        accepted = to12351.partner_update(_as_first_acceptance(ref), number, ("accepted", False))
        if accepted is not None:
            plan.append(Step("partner_update", "partner_update:accepted", case_id, accepted))
    if view is None:
        update = to12351.partner_update_for(ref, tables)
    else:
        update = to12351.partner_update_for(ref, tables, view.partner_status(ref, tables))
    if update is not None and update.status != "accepted":
        visited = "+satisfaction" if update.satisfaction else ""
        rounds = "" if update.status in ONCE_PER_ORDER else f":{ref.reopen_count}"
        plan.append(
            Step(
                "partner_update",
                f"partner_update:{update.status}{visited}{rounds}",
                case_id,
                update,
            )
        )
    return plan


def _as_first_acceptance(ref: Referral) -> Referral:
    """The snapshot as it stood when the partner first accepted the record (round 0):
    `accepted` is always told first, even when the bridge first sees a later status."""
    return ref.model_copy(update={"reopen_count": 0})
