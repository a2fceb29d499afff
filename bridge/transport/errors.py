"""Errors of the AMQP transport.

```
TransportError
├─ PublishError(reason, routing_key)   not confirmed: nack, returned, timeout, connection
└─ TopologyError                        the broker refused a declaration
```

aio-pika / aiormq exceptions are translated here and in `publisher.py` only
(`raise … from exc`); the engine never sees them.
"""

from __future__ import annotations

from enum import StrEnum


class TransportError(Exception):
    """Base of every error the transport raises."""


class PublishFailure(StrEnum):
    """Why a publish was not confirmed."""

    NACKED = "nacked"  # the broker refused it (e.g. a queue at reject-publish)
    RETURNED = "returned"  # mandatory and unroutable
    TIMEOUT = "timeout"  # no confirm within the publish timeout
    CONNECTION = "connection"  # channel or connection lost and not back in time


class PublishError(TransportError):
    """The broker did not confirm a publish; the message may or may not be queued."""

    def __init__(self, reason: PublishFailure, routing_key: str, detail: str = "") -> None:
        self.reason = reason
        self.routing_key = routing_key
        self.detail = detail
        super().__init__(f"publish to {routing_key!r} {reason.value}: {detail}".rstrip(": "))


class TopologyError(TransportError):
    """A declaration was refused, e.g. arguments differ from an existing queue."""
