"""The adapter error tree: every failure of a hotline call, in the bridge's own terms.

```
AdapterError(system)                 base; `retriable` says what to do
├─ TransientError                    retriable: 5xx, timeouts, 50001, connection lost
│  ├─ RateLimited(retry_after)       429; wait `retry_after` seconds
│  └─ Unavailable                    maintenance (502/503/504 on 12345, 503 on 12351)
├─ AuthError                         bad credentials / token refused twice
├─ NotFound                          40401 / 404
├─ Conflict(detail)                  12351 409 (key reused with another body, refused transition)
├─ StaleVersion                      12351 412: re-read and decide again
├─ StatusNotAllowed(detail)          12345 40002: the order's status refuses the action
└─ Rejected(detail, fields)          invalid request (40001, 400, 422): permanent, park
```

Foreign exceptions (aiohttp, asyncio timeouts) are translated in `adapters.http` only.
Retry decisions read one attribute: `retriable`. `ambiguous` marks a failure after the
request may have reached the other side (timeout or 502/504 after sending): the caller
must read the record to learn whether its action took effect.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldError:
    """One field the other side refused: a JSON pointer or a field name, and why."""

    pointer: str
    detail: str


class AdapterError(Exception):
    retriable: bool = False

    def __init__(self, system: str, detail: str = "", *, ambiguous: bool = False) -> None:
        super().__init__(f"[{system}] {detail}" if detail else f"[{system}] {type(self).__name__}")
        self.system = system
        self.detail = detail
        self.ambiguous = ambiguous


class TransientError(AdapterError):
    retriable = True


class RateLimited(TransientError):
    def __init__(self, system: str, retry_after: float, detail: str = "") -> None:
        super().__init__(system, detail or f"rate limited, retry after {retry_after:g}s")
        self.retry_after = retry_after


class Unavailable(TransientError):
    """The system is down or in a maintenance window."""


class AuthError(AdapterError):
    pass


class NotFound(AdapterError):
    pass


class Conflict(AdapterError):
    pass


class StaleVersion(AdapterError):
    pass


class StatusNotAllowed(AdapterError):
    pass


class Rejected(AdapterError):
    """The request is invalid for good; `fields` names what the other side refused."""

    def __init__(self, system: str, detail: str, fields: tuple[FieldError, ...] = ()) -> None:
        super().__init__(system, detail)
        self.fields = fields


@dataclass(frozen=True)
class ErrorInfo:
    """A serialisable summary of an adapter error, for dead letters and logs."""

    kind: str
    system: str
    detail: str
    fields: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, exc: AdapterError) -> ErrorInfo:
        fields = [{"pointer": f.pointer, "detail": f.detail} for f in getattr(exc, "fields", ())]
        return cls(type(exc).__name__, exc.system, exc.detail, fields)


def describe_validation(exc: Exception) -> str:
    """A pydantic ValidationError as field names and messages only: never the input
    values, which may be personal data (the text ends up in dead-letter reasons)."""
    errors = getattr(exc, "errors", None)
    if errors is None:
        return type(exc).__name__
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
        for e in errors(include_input=False, include_url=False)
    ]
    return "; ".join(parts)
