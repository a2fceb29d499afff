"""The deadlines (办理时限) of a 12345-origin referral: pure functions.

Arguments in, values out; `now` is a parameter. The SLA watch (`bridge.engine.sla`)
feeds them the referral's last snapshot, the ledger's actions and the rows it stored.

Kinds, each on the clock of one hotline (`system`), for 12345-origin referrals (orders
dispatched to the union; their 12351 case is answered by the union). A 12351-origin
referral (a case transferred to 12345) owes the union nothing: it has no deadline.

- `sign` (12345): within 2 h of dispatch, 30 min for urgency 3 (early warning), from the
  order's `dispatchTime`. Met once signed: the ledger's `sign` took effect (or intake saw
  it signed outside the bridge), or the order shows a status after 10.
- `reply` (12345): by the order's `deadline`; a granted extension moves it (12345 shows
  the new `deadline`; read from the case, the extension the union asked for counts once
  the ledger holds the granted extension). Met once replied for the current reopen
  round (`reply:<round>` took effect), returned (`return`), or the order shows replied,
  visited, closed or returned. A reopen makes it due again with the deadline as it was
  (12345: "the deadline stays as it was").
- `answer` (12351): `alert` 2 h, `high` 24 h, `normal` 5 working days from the case's
  creation (the case's `created_at`; read from an order, when the ledger recorded
  `create_case`), moved to a granted extension's new deadline (never earlier). Met once
  the case shows an answer (responded, callback done), or is closed or rejected
  (returned), or the ledger holds the reply of its round, a return or a withdrawal. A
  reopen makes it due again, counted from the creation as before (never later).

A withdrawn order (12345 status 70, or the ledger's withdrawal marker) owes nothing more:
its deadlines are `met` (closed, nothing is due). Orders first seen already answered
were handled outside the bridge: no deadlines at all.

Facts of another system's snapshot: a snapshot read from 12351 does not carry the
order's dispatch time, so `sign` keeps the due time stored from an order snapshot, or
else derives it from the case's `origin.deadline` (12345 sets it at dispatch, per
urgency); `answer` stays met while only order snapshots come (only the case can say it
was reopened).

Working days and `state_at`: `bridge.engine.deadlines`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Final

from bridge.engine.deadlines import AT_RISK as AT_RISK
from bridge.engine.deadlines import BREACHED as BREACHED
from bridge.engine.deadlines import MET, Deadline, WorkCalendar
from bridge.engine.deadlines import OK as OK
from bridge.engine.deadlines import state_at as state_at
from bridge.partners.hotline12345.plan import WITHDRAWN
from bridge.partners.hotline12345.side import NOT_FORWARDED, SIGNED_OUTSIDE
from bridge.store.models import ActionRow, SlaRow
from schemas.canonical import Lifecycle, Priority, Referral

SIGN: Final = "sign"
REPLY: Final = "reply"
ANSWER: Final = "answer"
KIND_SYSTEM: Final[Mapping[str, str]] = {SIGN: "12345", REPLY: "12345", ANSWER: "12351"}


SIGN_WITHIN: Final[Mapping[Priority, timedelta]] = {
    Priority.NORMAL: timedelta(hours=2),
    Priority.URGENT: timedelta(hours=2),
    Priority.EARLY_WARNING: timedelta(minutes=30),
}
ORDER_DEADLINE: Final[Mapping[Priority, timedelta]] = {
    Priority.NORMAL: timedelta(days=7),
    Priority.URGENT: timedelta(hours=24),
    Priority.EARLY_WARNING: timedelta(hours=2),
}
"""What 12345 sets `deadline` to at dispatch, per urgency (only to derive a dispatch
time from a case's `origin.deadline`)."""
ANSWER_WITHIN: Final[Mapping[Priority, timedelta | int]] = {
    Priority.EARLY_WARNING: timedelta(hours=2),  # alert
    Priority.URGENT: timedelta(hours=24),  # high
    Priority.NORMAL: 5,  # working days
}

DONE: Final = frozenset({"applied", "already_applied", SIGNED_OUTSIDE})
"""Action outcomes that mean the action took effect (not `parked`, `skipped`)."""
SIGNED_STATES: Final = frozenset(set(Lifecycle) - {Lifecycle.OPENED, Lifecycle.DELIVERED})
REPLIED_STATES: Final = frozenset(
    {Lifecycle.REPLIED, Lifecycle.CALLBACK_RECORDED, Lifecycle.CLOSED, Lifecycle.RETURNED}
)
ANSWERED_STATES: Final = REPLIED_STATES | {Lifecycle.WITHDRAWN}


class _Ledger:
    """The actions of one referral: which took effect (and when), which are recorded."""

    def __init__(self, actions: Iterable[ActionRow]) -> None:
        self.done: dict[tuple[str, str], datetime | None] = {}
        self.recorded: set[tuple[str, str]] = set()
        for action in actions:
            self.recorded.add((action.system, action.key))
            if action.outcome in DONE:
                self.done[(action.system, action.key)] = action.at

    def has(self, system: str, key: str) -> bool:
        return (system, key) in self.done


def deadlines_of(
    ref: Referral,
    actions: Iterable[ActionRow],
    stored: Mapping[str, SlaRow],
    *,
    calendar: WorkCalendar,
    systems: Collection[str],
) -> list[Deadline]:
    """The deadlines of `ref` (its last snapshot in the ledger) that fall on the hotlines
    this node runs (`systems`); `stored` is what the watch stored before, by kind. A kind
    whose due time no fact gives yet is left out."""
    ledger = _Ledger(actions)
    if ref.origin != "12345" or ("12345", NOT_FORWARDED) in ledger.recorded:
        return []
    withdrawn = ("12345", WITHDRAWN) in ledger.recorded or ref.state is Lifecycle.WITHDRAWN
    found = []
    if "12345" in systems:
        found += [_sign(ref, ledger, stored, withdrawn), _reply(ref, ledger, withdrawn)]
    if "12351" in systems:
        found.append(_answer(ref, ledger, stored, calendar, withdrawn))
    return [deadline for deadline in found if deadline is not None]


def _sign(
    ref: Referral, ledger: _Ledger, stored: Mapping[str, SlaRow], withdrawn: bool
) -> Deadline | None:
    from_order = ref.source == "12345"
    within = SIGN_WITHIN[ref.priority]
    if from_order and ref.dispatched_at is not None:
        due = ref.dispatched_at + within
    elif SIGN in stored:
        due = stored[SIGN].due_at
    elif ref.deadline is not None:
        due = ref.deadline - ORDER_DEADLINE[ref.priority] + within
    else:
        return None
    signed = ledger.has("12345", "sign") or (from_order and ref.state in SIGNED_STATES)
    return Deadline(SIGN, "12345", due, met=signed or withdrawn)


def _reply(ref: Referral, ledger: _Ledger, withdrawn: bool) -> Deadline | None:
    if ref.deadline is None:
        return None
    from_order = ref.source == "12345"
    due = ref.deadline
    if not from_order and ref.extension is not None and _extension_granted(ref, ledger):
        due = max(due, ref.extension.new_deadline)
    replied = (
        ledger.has("12345", f"reply:{ref.reopen_count}")
        or ledger.has("12345", "return")
        or (from_order and ref.state in REPLIED_STATES)
    )
    return Deadline(REPLY, "12345", due, met=replied or withdrawn)


def _answer(
    ref: Referral,
    ledger: _Ledger,
    stored: Mapping[str, SlaRow],
    calendar: WorkCalendar,
    withdrawn: bool,
) -> Deadline | None:
    from_case = ref.source == "12351"
    created = ref.accepted_at if from_case else ledger.done.get(("12351", "create_case"))
    if created is None:
        return None
    within = ANSWER_WITHIN[ref.priority]
    if isinstance(within, int):
        due = calendar.add_workdays(created, within)
    else:
        due = created + within
    if _extension_granted(ref, ledger):
        moved = ref.extension.new_deadline if ref.extension is not None else None
        if moved is None and not from_case:
            moved = ref.deadline  # 12345 shows the extended deadline on the order
        if moved is not None:
            due = max(due, moved)
    answered = (
        (from_case and ref.state in ANSWERED_STATES)
        or ledger.has("12345", f"reply:{ref.reopen_count}")
        or ledger.has("12345", "return")
        or ledger.has("12351", "withdrawn")
        or (not from_case and ANSWER in stored and stored[ANSWER].state == MET)
    )
    return Deadline(ANSWER, "12351", due, met=answered or withdrawn)


def _extension_granted(ref: Referral, ledger: _Ledger) -> bool:
    """12345 granted the extension: the order shows it (status 25), the 12345 side's call
    took effect (12345 grants at once), or the 12351 side told the case so."""
    return (
        (ref.extension is not None and ref.extension.granted is True)
        or ledger.has("12345", "extension")
        or ledger.has("12351", "partner_update:extended")
    )
