"""Phones in each side's own format, never dropped.

12351 takes a phone as free text: it is passed as given. 12345 takes an empty phone,
a mobile (`1` + 10 digits) or a landline `0AA-NNNNNNNN` (`0`, 2–3 more digits, `-`,
7–8 digits). `normalise_phone` turns what an agent typed into that form:

- full-width digits and punctuation are folded (NFKC); separators (spaces, hyphens and
  dashes, `.`, parentheses) are removed; a leading `+86`, `0086` or `86` country code is
  removed (a bare `86` only as its own group or glued to a mobile);
- mobile: `1` and 10 more digits → `13812345678`;
- landline: `0` + area code + 7–8 digits → `0AA-NNNNNNNN`. Where the area code ends:
  the agent's own separator when the first group is a plausible area code
  (`0755 1234567`, `(010)62345678`); otherwise by the numbering plan: `010` and `02x`
  are 3 characters (Beijing, the big cities), every other area code 4 (`0755`, `0371`).
  After a country code the trunk `0` is often left out (`+86 10 6234 5678`): it is
  put back;
- anything else (letters, extensions, too few or too many digits) → None: the caller
  sends an empty `callerPhone` and keeps the phone as given on the first line of the
  content (`phone_for_12345`).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from schemas.hotline12345 import MOBILE_RE

PHONE_LINE_PREFIX: Final = "联系电话（原文）："

_ALLOWED: Final = re.compile(r"^[\d\s\-\u2010-\u2015.()+]+$")
_SEPARATORS: Final = re.compile(r"[\s\-\u2010-\u2015.()]+")
_AREA: Final = re.compile(r"^0\d{2,3}$")
_SUBSCRIBER: Final = re.compile(r"^\d{7,8}$")
_COUNTRY_PREFIXES: Final = ("+86", "0086", "86")


def normalise_phone(raw: str | None) -> str | None:
    """The phone in 12345's format, `""` for no phone, or None when it does not normalise."""
    if raw is None or not raw.strip():
        return ""
    text = unicodedata.normalize("NFKC", raw).strip()
    if not _ALLOWED.match(text):
        return None
    groups = [group for group in _SEPARATORS.split(text) if group]
    groups, international = _drop_country_code(groups)
    if not groups:
        return None
    digits = "".join(groups)
    if "+" in digits:
        return None
    if MOBILE_RE.match(digits):
        return digits
    if international and not digits.startswith("0"):
        groups = ["0" + groups[0], *groups[1:]]
        digits = "0" + digits
    return _landline(groups, digits)


def phone_for_12345(raw: str | None) -> tuple[str, str | None]:
    """`(callerPhone, first_line)`: the normalised phone and no line, or an empty phone
    and the line `联系电话（原文）：<as given>` that keeps it at the top of the content."""
    phone = normalise_phone(raw)
    if phone is None:
        return "", f"{PHONE_LINE_PREFIX}{(raw or '').strip()}"
    return phone, None


def _drop_country_code(groups: list[str]) -> tuple[list[str], bool]:
    first = groups[0] if groups else ""
    for prefix in _COUNTRY_PREFIXES:
        if first == prefix:
            return groups[1:], True
        if first.startswith(prefix) and prefix != "86":
            return [first[len(prefix) :], *groups[1:]], True
    joined = "".join(groups)
    # a bare `86` glued to a mobile: 8613812345678
    if joined.startswith("86") and MOBILE_RE.match(joined[2:]):
        return [joined[2:]], True
    return groups, False


def _landline(groups: list[str], digits: str) -> str | None:
    if not digits.startswith("0"):
        return None
    if len(groups) > 1 and _AREA.match(groups[0]):
        area, rest = groups[0], "".join(groups[1:])
    else:
        split = 3 if digits.startswith(("010", "02")) else 4
        area, rest = digits[:split], digits[split:]
    if _AREA.match(area) and _SUBSCRIBER.match(rest):
        return f"{area}-{rest}"
    return None
