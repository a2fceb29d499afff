"""Errors of the bridge core (mapping, engine, configuration).

```
BridgeError
├─ MappingError(field, value, case, reason)   a record or snapshot that does not map: park it
├─ ConflictError                              the two sides disagree in a way no retry fixes
└─ ConfigError                                the configuration is invalid (refused at start)
```

Adapter errors have their own tree (`adapters/errors.py`) and transport errors theirs
(`bridge/transport/errors.py`). A `MappingError` is permanent: retrying the same data
gives the same answer, so the message is parked with `str(error)` as its reason.

`str(MappingError)` names the field, the reason and the case or order number, never
a personal data value: for personal fields the caller states a fact about the value
(`content length 4213 > 4000`) and passes that fact, not the text, as `value`.
"""

from __future__ import annotations

from typing import Self

from pydantic import ValidationError


class BridgeError(Exception):
    """Base of every error the bridge core raises."""


class MappingError(BridgeError):
    """A native record or canonical snapshot cannot be mapped; permanent (park, never retry).

    `field` is the native or canonical field at fault (`content`, `district_code`,
    `transfer.to`), `value` the offending value when it is not personal data (a code, a
    length) else None, `case` the source's case or order number, `reason` a short text.
    """

    def __init__(
        self, field: str, value: object = None, case: str | None = None, reason: str = ""
    ) -> None:
        super().__init__(field, value, case, reason)
        self.field = field
        self.value = value
        self.case = case
        self.reason = reason

    @classmethod
    def from_validation(cls, exc: ValidationError, case: str | None) -> Self:
        """The first error of a native request model's validation, naming its field.

        Only pydantic's message is kept, never the input value (it may be personal).
        """
        first = exc.errors(include_input=False, include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or exc.title
        return cls(field, None, case, f"{exc.title} refuses it: {first['msg']}")

    def __str__(self) -> str:
        text = f"{self.field}: {self.reason}" if self.reason else f"{self.field}: does not map"
        return f"{text} (case {self.case})" if self.case else text


class ConflictError(BridgeError):
    """The two sides disagree and no retry can reconcile them (an admin must decide)."""


class ConfigError(BridgeError):
    """The configuration is invalid; raised at start or on reload, never mid-flight."""
