"""What the engine sees of a message, and what it answers.

`Delivery` is a plain typed view: the engine never handles aio-pika objects.
A handler returns an `Outcome` (or a `Verdict` when it has a reason to give).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from aio_pika.abc import AbstractIncomingMessage

ATTEMPT_HEADER: Final = "x-bridge-attempt"
PARK_REASON_HEADER: Final = "x-bridge-park-reason"
RETRY_REASON_HEADER: Final = "x-bridge-retry-reason"
REFERRAL_HEADER: Final = "x-bridge-referral-id"
# Headers the broker adds when dead-lettering; dropped when we republish a retry.
BROKER_DEATH_HEADERS: Final = frozenset(
    {
        "x-death",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
        "x-delivery-count",
    }
)


class Outcome(enum.Enum):
    ACK = "ack"  # the effect is recorded: remove the message
    RETRY = "retry"  # transient: try again later through the retry ladder
    PARK = "park"  # permanent: dead letter for an admin


@dataclass(frozen=True, slots=True)
class Verdict:
    """An outcome with the reason an admin will read (retry or park)."""

    outcome: Outcome
    reason: str = ""

    @classmethod
    def retry(cls, reason: str) -> Verdict:
        return cls(Outcome.RETRY, reason)

    @classmethod
    def park(cls, reason: str) -> Verdict:
        return cls(Outcome.PARK, reason)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as delivered; `attempt` is 0 on first delivery, +1 per retry."""

    body: bytes
    routing_key: str
    message_id: str
    headers: Mapping[str, object]
    attempt: int
    redelivered: bool

    @property
    def target(self) -> str | None:
        """The target hotline of a work-queue message (`to.{target}.{prio}.{shard}`)."""
        parts = self.routing_key.split(".")
        return parts[1] if len(parts) == 4 and parts[0] == "to" else None

    @property
    def early_warning(self) -> bool:
        parts = self.routing_key.split(".")
        return len(parts) == 4 and parts[2] == "alert"

    @property
    def referral_id(self) -> str | None:
        value = self.headers.get(REFERRAL_HEADER)
        return value if isinstance(value, str) else None

    @property
    def park_reason(self) -> str | None:
        """Why a parked message was parked: the bridge's reason, else the broker's."""
        reason = self.headers.get(PARK_REASON_HEADER)
        if isinstance(reason, str):
            return reason
        broker = self.headers.get("x-first-death-reason")
        return f"dead-lettered by the broker: {broker}" if isinstance(broker, str) else None

    @classmethod
    def from_message(cls, message: AbstractIncomingMessage) -> Delivery:
        headers = dict(message.headers or {})
        try:
            attempt = max(0, int(headers.get(ATTEMPT_HEADER, 0)))  # type: ignore[call-overload]
        except (TypeError, ValueError):
            attempt = 0
        return cls(
            body=message.body,
            routing_key=message.routing_key or "",
            message_id=message.message_id or "",
            headers=MappingProxyType(headers),
            attempt=attempt,
            redelivered=bool(message.redelivered),
        )


Handler = Callable[[Delivery], Awaitable[Outcome | Verdict]]
ParkingCallback = Callable[[Delivery], Awaitable[None]]
