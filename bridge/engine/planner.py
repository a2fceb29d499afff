"""The planner: snapshot + what the ledger says was done → the actions still missing.

Pure: arguments in, a `Plan` out; no I/O, no clock. The applier performs the steps in
order, skipping those whose key the ledger already holds; a step's `key` is the
deterministic idempotency key of the action for this referral (a reply is keyed by the
reopen round it answers, so a reopened order gets a new reply).

Decisions taken here (ARCHITECTURE.md "Flows"):
- 12345 side, 12345-origin referral (snapshot read from 12351): sign once the case exists
  (unless the order was first seen signed: intake then records `sign` as done);
  an `extension_request` before any reply becomes one extension call; a response becomes
  the reply of its round; a rejection, or the case marked `transferred` back, becomes a
  return (退单); a case the union closed without ever responding is parked (a reply
  needs content), unless 12345 had withdrawn the order (`WITHDRAWN` in the ledger):
  then nothing at all is planned.
- 12345 side, 12351-origin referral (a transferred case): create the order, once.
- 12351 side, 12345-origin referral (a dispatched order): create the case (not for an
  order already withdrawn); then a granted extension → `partner_update extended`; a
  reopen → `reopened` of that round; a visit → `callback_result` of that round; a
  withdrawal → `withdrawn`.
- 12351 side, 12351-origin referral (an order created from a transferred case):
  `external_ref`, then `partner_update accepted`, then the update of the order's current
  status (ARCHITECTURE.md's partner-status table).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from bridge.mapping import MappingTables, to12345, to12351
from schemas.canonical import Lifecycle, Referral


@dataclass(frozen=True)
class Step:
    """One action to perform: `target` is the native id it applies to (None: a create)."""

    kind: str
    key: str
    target: str | None
    body: BaseModel


@dataclass(frozen=True)
class Hold:
    """An action that cannot be performed and must wait for an admin (parked), or a
    decision recorded without a call (`outcome`)."""

    kind: str
    key: str
    reason: str
    field: str | None = None
    outcome: str = "parked"


Plan = list[Step | Hold]


def plan_12345(
    ref: Referral,
    done: frozenset[str],
    *,
    order_no: str | None,
    handler: str,
    tables: MappingTables,
) -> Plan:
    """Missing actions on 12345 for a snapshot read from 12351.

    `order_no`: the 12345 order of this referral when known (the origin order, or the
    one this node created); None for a transferred case not yet created.
    Raises MappingError when the snapshot does not map to a 12345 request.
    """
    plan: Plan = []
    if ref.origin == "12351":
        if order_no is None and "create_order" not in done:
            plan.append(
                Step(
                    "create_order",
                    "create_order",
                    None,
                    to12345.create_order_request(ref, request_id=ref.referral_id, tables=tables),
                )
            )
        return plan

    assert order_no is not None, "a 12345-origin referral always names its order"
    if WITHDRAWN in done:
        # 12345 withdrew the order: it takes no action any more, and the case the union
        # then closes (as 12351 does on `withdrawn`) needs no reply: no false alarm.
        return plan
    plan.append(Step("sign", "sign", order_no, to12345.sign_request(handler)))
    round_ = ref.reopen_count
    returned = ref.state is Lifecycle.RETURNED
    if returned:
        plan.append(Step("return", "return", order_no, to12345.return_request(ref)))
        return plan
    if ref.extension is not None and ref.reply is None:
        plan.append(Step("extension", "extension", order_no, to12345.extension_request(ref)))
    if ref.reply is not None:
        plan.append(Step("reply", f"reply:{round_}", order_no, to12345.reply_request(ref, handler)))
    elif ref.native_status == "closed":
        plan.append(
            Hold(
                "reply",
                f"reply:{round_}",
                f"case {ref.source_no} was closed by 12351 without a response; 12345 order "
                f"{order_no} cannot be replied to without content",
                field="response",
            )
        )
    return plan


def plan_12351(
    ref: Referral,
    done: frozenset[str],
    *,
    case_id: str | None,
    tables: MappingTables,
) -> Plan:
    """Missing actions on 12351 for a snapshot read from 12345.

    `case_id`: the 12351 case of this referral when known (the case this node created, or
    the transferred case); None when it does not exist yet.
    Raises MappingError when the snapshot does not map to a 12351 request.
    """
    plan: Plan = []
    if ref.origin == "12345":
        if case_id is None:
            if ref.state is Lifecycle.WITHDRAWN:
                return [
                    Hold(
                        "create_case", "create_case", "withdrawn before delivery", outcome="skipped"
                    )
                ]
            plan.append(
                Step("create_case", "create_case", None, to12351.create_case_request(ref, tables))
            )
        target = case_id or ""  # filled in by the applier once the create step has run
        if (body := to12351.extension_granted_for(ref)) is not None:
            plan.append(Step("partner_update", "partner_update:extended", target, body))
        if (body := to12351.reopened_for(ref)) is not None:
            plan.append(Step("reopened", f"reopened:{ref.reopen_count}", target, body))
        if (body := to12351.callback_result_for(ref)) is not None:
            plan.append(Step("callback_result", f"callback:{ref.reopen_count}", target, body))
        if (body := to12351.withdrawn_for(ref)) is not None:
            plan.append(Step("withdrawn", "withdrawn", target, body))
        return plan

    if case_id is None:
        raise LookupError(f"the 12351 case of {ref.referral_id} is not known yet")
    plan.append(Step("external_ref", "external_ref", case_id, to12351.external_ref_for(ref)))
    if "partner_update:accepted" not in done:
        accepted = to12351.partner_update_for(_as_first_acceptance(ref), tables)
        if accepted is not None:
            plan.append(Step("partner_update", "partner_update:accepted", case_id, accepted))
    update = to12351.partner_update_for(ref, tables)
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


WITHDRAWN = "withdrawn_at_12345"
"""Ledger key the 12345 intake records when it reads an order of the union's in status
70: from then on the 12345 side plans nothing for that referral."""

ONCE_PER_ORDER = frozenset({"extended", "closed", "returned", "withdrawn"})
"""Partner statuses an order reaches at most once (one extension per order, and the
terminal ones); the others are keyed by the reopen round."""


def _as_first_acceptance(ref: Referral) -> Referral:
    """The snapshot as it stood when 12345 first accepted the order (status 20, round 0):
    `accepted` is always told first, even when the bridge first sees a later status."""
    return ref.model_copy(update={"native_status": "20", "reopen_count": 0})
