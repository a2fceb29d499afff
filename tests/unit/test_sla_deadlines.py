"""Deadlines of a referral and the working-day calendar (pure functions)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from bridge.mapping.times import BEIJING
from bridge.partners.hotline12345.sla import (
    ANSWER,
    AT_RISK,
    BREACHED,
    MET,
    OK,
    REPLY,
    SIGN,
    Deadline,
    WorkCalendar,
    deadlines_of,
    state_at,
)
from bridge.store import ActionRow, SlaRow
from schemas.canonical import Extension, Lifecycle, Priority, Referral

RID = "12345:BJ12345-20261130-000001"
PLAIN = WorkCalendar()


def bj(text: str) -> datetime:
    """A Beijing wall-clock time as an aware UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING).astimezone(UTC)


# --- the calendar ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "holidays", "extra", "due"),
    [
        pytest.param("2026-11-30 10:00", (), (), "2026-12-07 10:00", id="monday-to-monday"),
        pytest.param("2026-12-03 10:00", (), (), "2026-12-10 10:00", id="weekend-skipped"),
        pytest.param("2026-12-04 15:00", (), (), "2026-12-11 15:00", id="friday-to-friday"),
        pytest.param("2026-12-05 10:00", (), (), "2026-12-11 10:00", id="saturday-start"),
        pytest.param("2026-12-06 23:59", (), (), "2026-12-11 23:59", id="sunday-late-start"),
        pytest.param("2026-11-30 10:00", ("2026-12-02",), (), "2026-12-08 10:00", id="a-holiday"),
        pytest.param(
            "2026-11-30 10:00", (), ("2026-12-05",), "2026-12-05 10:00", id="make-up-saturday"
        ),
        pytest.param(
            "2026-11-30 10:00", ("2026-12-05",), (), "2026-12-07 10:00", id="weekend-holiday"
        ),
        pytest.param(
            "2026-09-30 10:00",
            ("2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06", "2026-10-07"),
            ("2026-09-27", "2026-10-10"),
            "2026-10-13 10:00",
            id="across-a-holiday-week",
        ),
    ],
)
def test_five_working_days_keep_the_clock_time(
    start: str, holidays: tuple[str, ...], extra: tuple[str, ...], due: str
) -> None:
    calendar = WorkCalendar(
        frozenset(date.fromisoformat(d) for d in holidays),
        frozenset(date.fromisoformat(d) for d in extra),
    )
    assert calendar.add_workdays(bj(start), 5) == bj(due)


def test_working_days_are_counted_on_beijing_dates_not_utc() -> None:
    """01:00 Monday in Beijing is Sunday 17:00 UTC: the count starts from Monday."""
    start = datetime(2026, 11, 29, 17, 0, tzinfo=UTC)
    assert start.astimezone(BEIJING).date() == date(2026, 11, 30)
    assert PLAIN.add_workdays(start, 5) == datetime(2026, 12, 6, 17, 0, tzinfo=UTC)


def test_a_calendar_without_working_days_is_an_error() -> None:
    year = date(2026, 1, 1)
    every_day = frozenset(year + timedelta(days=n) for n in range(800))
    with pytest.raises(ValueError, match="working days"):
        WorkCalendar(holidays=every_day).add_workdays(bj("2026-11-30 10:00"), 5)


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        PLAIN.add_workdays(datetime(2026, 11, 30, 10, 0), 5)


# --- snapshots ---------------------------------------------------------------------------


def order(**changes: Any) -> Referral:
    """A 12345-origin order as read from 12345 (urgency 2: 24 h deadline)."""
    values: dict[str, Any] = {
        "referral_id": RID,
        "origin": "12345",
        "source": "12345",
        "source_version": 1,
        "source_no": "BJ12345-20261130-000001",
        "ids": {"12345": "BJ12345-20261130-000001"},
        "read_at": bj("2026-11-30 09:21"),
        "state": Lifecycle.DELIVERED,
        "native_status": "10",
        "priority": Priority.URGENT,
        "accepted_at": bj("2026-11-30 09:12"),
        "dispatched_at": bj("2026-11-30 09:20"),
        "deadline": bj("2026-12-01 09:20"),
    }
    values.update(changes)
    return Referral(**values)


def case(**changes: Any) -> Referral:
    """The union's case created from that order, as read from 12351."""
    values: dict[str, Any] = {
        "source": "12351",
        "source_no": "12351-2026-0000001",
        "ids": {"12345": "BJ12345-20261130-000001", "12351": "c-1"},
        "state": Lifecycle.SIGNED,
        "native_status": "received",
        "accepted_at": bj("2026-11-30 09:21"),
        "dispatched_at": None,
    }
    values.update(changes)
    return order(**values)


def done(system: str, key: str, at: str = "2026-11-30 09:21", outcome: str = "applied") -> Any:
    return ActionRow(RID, system, key, key.split(":")[0], outcome, {}, bj(at))


CREATED = done("12351", "create_case")
SIGNED = done("12345", "sign")


def judged(
    ref: Referral,
    actions: tuple[ActionRow, ...] = (),
    stored: dict[str, SlaRow] | None = None,
    *,
    systems: tuple[str, ...] = ("12345", "12351"),
    calendar: WorkCalendar = PLAIN,
) -> dict[str, Deadline]:
    found = deadlines_of(ref, actions, stored or {}, calendar=calendar, systems=systems)
    return {d.kind: d for d in found}


def stored_row(kind: str, due: str, state: str) -> SlaRow:
    return SlaRow(RID, kind, "12345", bj(due), state, bj("2026-11-30 09:30"))


# --- sign --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "actions", "due", "met"),
    [
        pytest.param(order(), (), "2026-11-30 11:20", False, id="2h-after-dispatch"),
        pytest.param(
            order(priority=Priority.EARLY_WARNING, deadline=bj("2026-11-30 11:20")),
            (),
            "2026-11-30 09:50",
            False,
            id="30min-for-urgency-3",
        ),
        pytest.param(order(), (SIGNED,), "2026-11-30 11:20", True, id="signed-by-the-bridge"),
        pytest.param(
            order(),
            (done("12345", "sign", outcome="already_signed"),),
            "2026-11-30 11:20",
            True,
            id="first-seen-signed",
        ),
        pytest.param(
            order(state=Lifecycle.SIGNED, native_status="20"),
            (),
            "2026-11-30 11:20",
            True,
            id="signed-outside",
        ),
        pytest.param(
            order(),
            (done("12345", "sign", outcome="parked"),),
            "2026-11-30 11:20",
            False,
            id="a-parked-sign-is-not-met",
        ),
        pytest.param(case(), (), "2026-11-30 11:20", False, id="derived-from-the-case-deadline"),
    ],
)
def test_sign(ref: Referral, actions: tuple[ActionRow, ...], due: str, met: bool) -> None:
    deadline = judged(ref, actions)[SIGN]
    assert (deadline.system, deadline.due_at, deadline.met) == ("12345", bj(due), met)


def test_sign_read_from_the_case_keeps_the_stored_due_time() -> None:
    stored = {SIGN: stored_row(SIGN, "2026-11-30 11:19", OK)}
    assert judged(case(), (), stored)[SIGN].due_at == bj("2026-11-30 11:19")


# --- reply -------------------------------------------------------------------------------

EXTENSION = Extension(new_deadline=bj("2026-12-03 18:00"), reason="需要调查")


@pytest.mark.parametrize(
    ("ref", "actions", "due", "met"),
    [
        pytest.param(order(), (SIGNED,), "2026-12-01 09:20", False, id="the-order-deadline"),
        pytest.param(
            order(
                state=Lifecycle.EXTENDED,
                native_status="25",
                deadline=EXTENSION.new_deadline,
                extension=Extension(new_deadline=EXTENSION.new_deadline, granted=True),
            ),
            (SIGNED,),
            "2026-12-03 18:00",
            False,
            id="extended-order",
        ),
        pytest.param(
            case(extension=EXTENSION), (SIGNED,), "2026-12-01 09:20", False, id="asked-not-granted"
        ),
        pytest.param(
            case(extension=EXTENSION),
            (SIGNED, done("12345", "extension", outcome="parked")),
            "2026-12-01 09:20",
            False,
            id="refused-extension",
        ),
        pytest.param(
            case(extension=EXTENSION),
            (SIGNED, done("12345", "extension")),
            "2026-12-03 18:00",
            False,
            id="granted-extension",
        ),
        pytest.param(
            case(state=Lifecycle.REPLIED, native_status="responded"),
            (SIGNED, done("12345", "reply:0")),
            "2026-12-01 09:20",
            True,
            id="replied",
        ),
        pytest.param(
            case(state=Lifecycle.REPLIED, native_status="responded"),
            (SIGNED,),
            "2026-12-01 09:20",
            False,
            id="responded-not-yet-replied",
        ),
        pytest.param(
            order(state=Lifecycle.REOPENED, native_status="20", reopen_count=1),
            (SIGNED, done("12345", "reply:0")),
            "2026-12-01 09:20",
            False,
            id="reopened-due-again-as-it-was",
        ),
        pytest.param(
            case(state=Lifecycle.RETURNED, native_status="rejected"),
            (SIGNED, done("12345", "return")),
            "2026-12-01 09:20",
            True,
            id="returned",
        ),
        pytest.param(
            order(state=Lifecycle.REPLIED, native_status="30"),
            (SIGNED,),
            "2026-12-01 09:20",
            True,
            id="replied-outside",
        ),
        pytest.param(
            case(state=Lifecycle.CLOSED, native_status="closed"),
            (SIGNED, done("12345", "reply:0", outcome="parked")),
            "2026-12-01 09:20",
            False,
            id="closed-without-response-still-owes-the-reply",
        ),
    ],
)
def test_reply(ref: Referral, actions: tuple[ActionRow, ...], due: str, met: bool) -> None:
    deadline = judged(ref, actions)[REPLY]
    assert (deadline.system, deadline.due_at, deadline.met) == ("12345", bj(due), met)


# --- answer ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "created", "due"),
    [
        pytest.param(Priority.NORMAL, "2026-11-30 10:00", "2026-12-07 10:00", id="normal-5wd"),
        pytest.param(Priority.URGENT, "2026-12-04 20:00", "2026-12-05 20:00", id="high-24h"),
        pytest.param(
            Priority.EARLY_WARNING, "2026-11-30 23:00", "2026-12-01 01:00", id="alert-2h-midnight"
        ),
    ],
)
def test_answer_time_by_priority(priority: Priority, created: str, due: str) -> None:
    deadline = judged(case(priority=priority, accepted_at=bj(created)), (CREATED,))[ANSWER]
    assert (deadline.system, deadline.due_at, deadline.met) == ("12351", bj(due), False)


def test_answer_read_from_the_order_counts_from_the_recorded_create() -> None:
    created = done("12351", "create_case", at="2026-11-30 10:00")
    deadline = judged(order(priority=Priority.NORMAL), (created,))[ANSWER]
    assert deadline.due_at == bj("2026-12-07 10:00")


def test_no_answer_deadline_before_the_case_exists() -> None:
    assert ANSWER not in judged(order())


def test_a_holiday_pushes_a_normal_answer_out_by_a_day() -> None:
    ref = case(priority=Priority.NORMAL, accepted_at=bj("2026-11-30 10:00"))
    holiday = WorkCalendar(holidays=frozenset({date(2026, 12, 2)}))
    assert judged(ref, calendar=holiday)[ANSWER].due_at == bj("2026-12-08 10:00")


@pytest.mark.parametrize(
    ("ref", "actions", "stored", "met"),
    [
        pytest.param(case(), (CREATED,), None, False, id="received"),
        pytest.param(
            case(state=Lifecycle.IN_PROGRESS, native_status="handling"),
            (CREATED,),
            None,
            False,
            id="handling",
        ),
        pytest.param(
            case(state=Lifecycle.REPLIED, native_status="responded"),
            (CREATED,),
            None,
            True,
            id="responded",
        ),
        pytest.param(
            case(state=Lifecycle.RETURNED, native_status="rejected"),
            (CREATED,),
            None,
            True,
            id="rejected",
        ),
        pytest.param(
            case(state=Lifecycle.CLOSED, native_status="closed"),
            (CREATED,),
            None,
            True,
            id="closed",
        ),
        pytest.param(
            case(state=Lifecycle.REOPENED, native_status="handling", reopen_count=1),
            (CREATED, done("12345", "reply:0")),
            {ANSWER: stored_row(ANSWER, "2026-12-01 09:21", MET)},
            False,
            id="reopened-case",
        ),
        pytest.param(
            order(state=Lifecycle.REPLIED, native_status="30"),
            (CREATED, done("12345", "reply:0")),
            None,
            True,
            id="reply-reached-12345",
        ),
        pytest.param(
            order(state=Lifecycle.REOPENED, native_status="20", reopen_count=1),
            (CREATED, done("12345", "reply:0")),
            {ANSWER: stored_row(ANSWER, "2026-12-01 09:21", MET)},
            True,
            id="order-reopened-case-not-yet",
        ),
        pytest.param(
            order(state=Lifecycle.SIGNED, native_status="20"),
            (CREATED,),
            {ANSWER: stored_row(ANSWER, "2026-12-01 09:21", BREACHED)},
            False,
            id="order-snapshot-keeps-an-open-answer-open",
        ),
    ],
)
def test_answer_met(
    ref: Referral,
    actions: tuple[ActionRow, ...],
    stored: dict[str, SlaRow] | None,
    met: bool,
) -> None:
    assert judged(ref, actions, stored)[ANSWER].met is met


@pytest.mark.parametrize(
    ("new_deadline", "due"),
    [
        pytest.param("2026-12-09 18:00", "2026-12-09 18:00", id="later-moves-it"),
        pytest.param("2026-12-01 18:00", "2026-12-07 09:21", id="earlier-never-shortens"),
    ],
)
def test_a_granted_extension_moves_the_answer(new_deadline: str, due: str) -> None:
    ref = case(priority=Priority.NORMAL, extension=Extension(new_deadline=bj(new_deadline)))
    asked = judged(ref, (CREATED,))[ANSWER]
    granted = judged(ref, (CREATED, done("12351", "partner_update:extended")))[ANSWER]
    assert asked.due_at == bj("2026-12-07 09:21")
    assert granted.due_at == bj(due)


# --- what has no deadline ----------------------------------------------------------------


def test_a_withdrawn_order_owes_nothing() -> None:
    withdrawn = order(state=Lifecycle.WITHDRAWN, native_status="70")
    assert {k: d.met for k, d in judged(withdrawn, (CREATED,)).items()} == {
        SIGN: True,
        REPLY: True,
        ANSWER: True,
    }
    marker = done("12345", "withdrawn_at_12345", outcome="recorded")
    still_open_case = case(state=Lifecycle.IN_PROGRESS, native_status="handling")
    assert all(d.met for d in judged(still_open_case, (CREATED, marker)).values())


def test_orders_handled_outside_the_bridge_and_transferred_cases_have_none() -> None:
    not_forwarded = done("12345", "not_forwarded", outcome="recorded")
    assert judged(order(state=Lifecycle.REPLIED, native_status="30"), (not_forwarded,)) == {}
    transferred = case(referral_id="12351:12351-2026-0000009", origin="12351", deadline=None)
    assert judged(transferred, (CREATED,)) == {}


@pytest.mark.parametrize(
    ("systems", "kinds"),
    [
        pytest.param(("12345",), {SIGN, REPLY}, id="city-node"),
        pytest.param(("12351",), {ANSWER}, id="union-node"),
        pytest.param(("12345", "12351"), {SIGN, REPLY, ANSWER}, id="both"),
    ],
)
def test_a_node_judges_the_deadlines_of_its_own_sides(
    systems: tuple[str, ...], kinds: set[str]
) -> None:
    assert set(judged(case(), (CREATED,), systems=systems)) == kinds


# --- states ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "met", "state"),
    [
        pytest.param("2026-12-01 08:00", False, OK, id="ok"),
        pytest.param("2026-12-01 08:50", False, AT_RISK, id="within-warn"),
        pytest.param("2026-12-01 08:49:59", False, OK, id="just-before-warn"),
        pytest.param("2026-12-01 09:20", False, BREACHED, id="at-the-due-time"),
        pytest.param("2026-12-02 09:20", False, BREACHED, id="past"),
        pytest.param("2026-12-02 09:20", True, MET, id="met-late-is-met"),
    ],
)
def test_state_at(now: str, met: bool, state: str) -> None:
    deadline = Deadline(REPLY, "12345", bj("2026-12-01 09:20"), met)
    assert state_at(deadline, bj(now), timedelta(minutes=30)) == state
