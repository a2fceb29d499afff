"""What the 12345 side plans for a snapshot of the union's case (ARCHITECTURE.md "Flows").

Pure: arguments in, a `Plan` out; no I/O, no clock.
- a 12345-origin referral (snapshot read from 12351): sign once the case exists (unless
  the order was first seen signed: intake then records `sign` as done); an
  `extension_request` before any reply becomes one extension call; a response becomes
  the reply of its round; a rejection, or the case marked `transferred` back, becomes a
  return (退单); a case the union closed without ever responding is parked (a reply
  needs content), unless 12345 had withdrawn the order (`WITHDRAWN` in the ledger):
  then nothing at all is planned.
- a union-origin referral (a transferred case): create the order, once.
"""

from __future__ import annotations

from typing import Final

from bridge.engine.planner import Hold, Plan, Step
from bridge.mapping import MappingTables, to12345
from schemas.canonical import Lifecycle, Referral

SYSTEM: Final = "12345"


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
    if ref.origin != SYSTEM:
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
                f"case {ref.source_no} was closed by {ref.source} without a response; 12345 order "
                f"{order_no} cannot be replied to without content",
                field="response",
            )
        )
    return plan


WITHDRAWN = "withdrawn_at_12345"
"""Ledger key the 12345 intake records when it reads an order of the union's in status
70: from then on the 12345 side plans nothing for that referral."""
