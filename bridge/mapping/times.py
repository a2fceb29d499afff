"""Times as the same instant on both sides.

12345 writes naive Beijing local time (`yyyy-MM-dd HH:mm:ss`, read as Asia/Shanghai);
12351 and the canonical snapshot use aware times, 12351 on the wire as RFC 3339 with
an offset. Beijing is UTC+08:00 with no daylight saving since 1991, so a fixed offset
is exact for every date either hotline holds and needs no tz database on the host.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Final, overload

BEIJING: Final = timezone(timedelta(hours=8), "Asia/Shanghai")


@overload
def from_beijing(local: datetime) -> datetime: ...
@overload
def from_beijing(local: None) -> None: ...
def from_beijing(local: datetime | None) -> datetime | None:
    """A 12345 naive Beijing wall-clock time → the aware instant (an aware input is kept)."""
    if local is None:
        return None
    return local.replace(tzinfo=BEIJING) if local.tzinfo is None else local


def to_beijing(moment: datetime) -> datetime:
    """An aware instant → 12345's naive Beijing wall-clock time. Raises ValueError if naive."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime where an aware instant is required")
    return moment.astimezone(BEIJING).replace(tzinfo=None)


def to_beijing_seconds_up(moment: datetime) -> datetime:
    """`to_beijing`, rounded up to the whole second 12345 keeps (a deadline never shrinks)."""
    local = to_beijing(moment)
    if local.microsecond:
        local = local.replace(microsecond=0) + timedelta(seconds=1)
    return local


def to_rfc3339(moment: datetime) -> str:
    """An aware instant → RFC 3339 in Beijing's offset with milliseconds, as 12351 writes."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime where an aware instant is required")
    return moment.astimezone(BEIJING).isoformat(timespec="milliseconds")
