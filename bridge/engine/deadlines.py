"""Deadlines (办理时限) and where each stands: the kind-neutral part, pure functions.

A partner's kind says which deadlines a referral that began there has
(`PartnerKind.deadlines`, e.g. `bridge.partners.hotline12345.sla`); the SLA watch
(`bridge.engine.sla`) judges them here with `state_at`, on the node's working calendar.

Working days (`normal` answers): Monday to Friday, minus the official holidays, plus the
make-up working days (`WorkCalendar`), in Beijing time. "5 working days" is read as the
same Beijing clock time on the 5th working day after the start's date, whether or not
the start's own day is a working day: a case created Monday 10:00 is due the next
Monday 10:00, one created Saturday 10:00 the next Friday 10:00. Of the readings (count
working hours, or start counting at the next working day's beginning) it is never the
later one, so the watch never flags too late. 2 h and 24 h are elapsed time, nights
and weekends included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

from bridge.mapping.times import BEIJING

OK: Final = "ok"
AT_RISK: Final = "at_risk"
BREACHED: Final = "breached"
MET: Final = "met"
STATES: Final = (OK, AT_RISK, BREACHED, MET)
MAX_SPAN_DAYS: Final = 366


@dataclass(frozen=True)
class WorkCalendar:
    """Beijing working days: Monday to Friday, minus `holidays`, plus `extra_workdays`."""

    holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()

    def is_workday(self, day: date) -> bool:
        if day in self.extra_workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add_workdays(self, start: datetime, days: int) -> datetime:
        """The same Beijing clock time on the `days`-th working day after `start`'s date
        (module docstring), as an aware UTC time. Raises ValueError for a naive `start`
        or a calendar with no working day in a year."""
        if start.tzinfo is None:
            raise ValueError("naive datetime where an aware instant is required")
        local = start.astimezone(BEIJING)
        day, counted = local.date(), 0
        for _ in range(MAX_SPAN_DAYS):
            if counted >= days:
                return datetime.combine(day, local.time(), tzinfo=BEIJING).astimezone(UTC)
            day += timedelta(days=1)
            counted += self.is_workday(day)
        raise ValueError(f"fewer than {days} working days in {MAX_SPAN_DAYS} days")


@dataclass(frozen=True)
class Deadline:
    """One deadline of a referral: due at `due_at` (aware UTC), `met` or still open."""

    kind: str
    system: str
    due_at: datetime
    met: bool


def state_at(deadline: Deadline, now: datetime, warn_before: timedelta) -> str:
    """`met`, `breached` (at or past the due time), `at_risk` (within `warn_before`), `ok`."""
    if deadline.met:
        return MET
    if now >= deadline.due_at:
        return BREACHED
    if deadline.due_at - now <= warn_before:
        return AT_RISK
    return OK
