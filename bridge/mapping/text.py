"""Text cut to the other side's limit, never silently.

Lengths are Unicode code points (Python `len`). Text within the limit arrives whole;
longer text is cut so that text plus marker fills the limit exactly, the marker at the
end naming the source's case number: `…（全文见12351 12351-2026-0001234）`. Lines the
bridge adds (the original phone, the original district) go first, so a cut, which
takes from the end, leaves them standing.
"""

from __future__ import annotations

from collections.abc import Iterable


def marker(system: str, number: str) -> str:
    """The cut marker naming where the full text is: `…（全文见<system> <number>）`."""
    return f"…（全文见{system} {number}）"


def fit(text: str, limit: int, marker: str) -> str:
    """`text` unchanged when it has at most `limit` code points; else its head and
    `marker`, exactly `limit` code points. Raises ValueError when the marker alone
    does not fit."""
    if len(text) <= limit:
        return text
    if len(marker) > limit:
        raise ValueError(f"marker of {len(marker)} code points exceeds limit {limit}")
    return text[: limit - len(marker)] + marker


def with_first_lines(first_lines: Iterable[str | None], text: str | None) -> str:
    """`text` below the added lines (None lines skipped), one line each."""
    lines = [line for line in first_lines if line]
    if text:
        lines.append(text)
    return "\n".join(lines)
