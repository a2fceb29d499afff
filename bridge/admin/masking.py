"""Personal data in admin responses.

A `read` caller sees personal data masked: the values of personal keys (names,
phones, addresses, case text, replies, ...) are `***`, and phone-like digits or Chinese
text in any other string too (`bridge.logging`'s rules, so a response leaks nothing a
log line would not). An `operate` caller who asks (`unmask=true`, audited) sees the
data, except the identity of a confidential (保密) caller: a mapping that says
`"confidential": true` has its name and phone masked for everyone, whoever asks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from bridge.logging import MASK, PERSONAL_KEYS, mask_text

_CONTAINERS: Final = frozenset({"body", "payload", "record", "snapshot"})
"""Keys the log masks whole that a response opens, masking what is inside."""
_KEYS: Final = PERSONAL_KEYS - _CONTAINERS
_IDENTITY: Final = frozenset(
    {"name", "phone", "callername", "callerphone", "caller_name", "caller_phone", "member_card_no"}
)


def masked(value: Any, *, unmask: bool = False) -> Any:
    """`value` as a response may show it (a copy; `value` is not changed)."""
    if isinstance(value, Mapping):
        confidential = value.get("confidential") is True
        out: dict[str, Any] = {}
        for key, item in value.items():
            lowered = str(key).lower()
            if confidential and lowered in _IDENTITY and item not in (None, ""):
                out[key] = MASK
            elif not unmask and lowered in _KEYS and isinstance(item, str | int | float):
                out[key] = MASK if item != "" else item
            else:
                out[key] = masked(item, unmask=unmask)
        return out
    if isinstance(value, list | tuple):
        return [masked(item, unmask=unmask) for item in value]
    if isinstance(value, str) and not unmask:
        return mask_text(value)
    return value
