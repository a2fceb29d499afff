"""Names and arguments of every exchange, queue and binding, from one namespace.

The declarative specs here feed `declare()` (live broker), `definitions()`
(deploy/rabbitmq/definitions.json) and `delete_topology()` (tests), so the three
can never disagree.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Final, Literal

Priority = Literal["alert", "normal"]
PRIORITIES: Final[tuple[Priority, ...]] = ("alert", "normal")
ExchangeType = Literal["topic", "fanout"]


@dataclass(frozen=True, slots=True)
class ExchangeSpec:
    name: str
    type: ExchangeType


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: str
    arguments: dict[str, str | int | bool] = field(hash=False)


@dataclass(frozen=True, slots=True)
class BindingSpec:
    exchange: str
    queue: str
    routing_key: str


@dataclass(frozen=True, slots=True)
class Topology:
    """The broker layout of one bridge namespace.

    Queue arguments are fixed once declared, so a change of retry delays or
    queue arguments needs a new `version` (new retry queue names).
    """

    namespace: str = "hotline-bridge"
    targets: tuple[str, ...] = ()
    """The partners of the deployment (`[bridge] partners`): one set of work queues each."""
    shards: int = 4
    retry_delays_s: tuple[int, ...] = (2, 10, 60, 300, 900, 1800)
    delivery_limit: int = 20
    version: str = "v1"

    def __post_init__(self) -> None:
        if not self.namespace or not self.targets:
            raise ValueError("namespace and targets must not be empty")
        if self.shards < 1 or self.delivery_limit < 1:
            raise ValueError("shards and delivery_limit must be positive")
        if any(d <= 0 for d in self.retry_delays_s):
            raise ValueError("retry delays must be positive")
        if any("." in t or not t for t in self.targets):
            raise ValueError("a target name must be non-empty and contain no '.'")

    # -- names -------------------------------------------------------------

    @property
    def exchange(self) -> str:
        """The topic exchange every snapshot is published to."""
        return f"{self.namespace}.referrals"

    @property
    def parking(self) -> str:
        """Name of both the parking fanout exchange and the parking queue."""
        return f"{self.namespace}.parking"

    def retry_name(self, delay_s: int) -> str:
        """Name of both the retry fanout exchange and the retry queue for a delay."""
        return f"{self.namespace}.retry.{delay_s}s.{self.version}"

    def binding_key(self, target: str, priority: Priority, shard: int) -> str:
        return f"to.{target}.{priority}.{shard}"

    def work_queue(self, target: str, priority: Priority, shard: int) -> str:
        return f"{self.namespace}.to-{target}.{priority}.{shard}"

    def work_queues(self, target: str, shards: tuple[int, ...] | None = None) -> list[str]:
        """Work queues of a target, alert queues first."""
        self._check_target(target)
        return [self.work_queue(target, p, s) for p in PRIORITIES for s in self.pick_shards(shards)]

    def pick_shards(self, shards: tuple[int, ...] | None = None) -> tuple[int, ...]:
        """`shards`, checked, or all of them when None."""
        chosen = tuple(range(self.shards)) if shards is None else tuple(shards)
        if any(not 0 <= s < self.shards for s in chosen):
            raise ValueError(f"shards must be in 0..{self.shards - 1}, got {chosen}")
        return chosen

    # -- routing -----------------------------------------------------------

    def shard_of(self, referral_id: str) -> int:
        """Stable across processes and versions of Python (unlike `hash()`)."""
        return zlib.crc32(referral_id.encode()) % self.shards

    def routing_key(self, target: str, referral_id: str, early_warning: bool) -> str:
        """Routing key of a snapshot of `referral_id` for `target`: `to.{target}.{prio}.{shard}`."""
        self._check_target(target)
        priority: Priority = "alert" if early_warning else "normal"
        return self.binding_key(target, priority, self.shard_of(referral_id))

    def retry_delay(self, attempt: int) -> int | None:
        """Delay before attempt `attempt + 1`, or None when the ladder is exhausted."""
        return self.retry_delays_s[attempt] if attempt < len(self.retry_delays_s) else None

    def _check_target(self, target: str) -> None:
        if target not in self.targets:
            raise ValueError(f"unknown target {target!r}; known: {self.targets}")

    # -- arguments ---------------------------------------------------------

    def work_queue_arguments(self) -> dict[str, str | int | bool]:
        return {
            "x-queue-type": "quorum",
            "x-single-active-consumer": True,
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": self.parking,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }

    def retry_queue_arguments(self, delay_s: int) -> dict[str, str | int | bool]:
        # No x-dead-letter-routing-key: an expired message goes back to the
        # referrals exchange with its original routing key, i.e. its own shard.
        return {
            "x-queue-type": "quorum",
            "x-message-ttl": delay_s * 1000,
            "x-dead-letter-exchange": self.exchange,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }

    def parking_queue_arguments(self) -> dict[str, str | int | bool]:
        return {"x-queue-type": "quorum"}

    # -- the whole layout --------------------------------------------------

    def exchanges(self) -> list[ExchangeSpec]:
        return [
            ExchangeSpec(self.exchange, "topic"),
            ExchangeSpec(self.parking, "fanout"),
            *(ExchangeSpec(self.retry_name(d), "fanout") for d in self.retry_delays_s),
        ]

    def queues(self) -> list[QueueSpec]:
        work = [
            QueueSpec(name, self.work_queue_arguments())
            for target in self.targets
            for name in self.work_queues(target)
        ]
        retry = [
            QueueSpec(self.retry_name(d), self.retry_queue_arguments(d))
            for d in self.retry_delays_s
        ]
        return [*work, *retry, QueueSpec(self.parking, self.parking_queue_arguments())]

    def bindings(self) -> list[BindingSpec]:
        work = [
            BindingSpec(self.exchange, self.work_queue(t, p, s), self.binding_key(t, p, s))
            for t in self.targets
            for p in PRIORITIES
            for s in range(self.shards)
        ]
        retry = [
            BindingSpec(self.retry_name(d), self.retry_name(d), "") for d in self.retry_delays_s
        ]
        return [*work, *retry, BindingSpec(self.parking, self.parking, "")]
