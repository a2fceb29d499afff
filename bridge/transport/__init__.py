"""AMQP transport: topology, publish with confirm, consume with one settle point.

The engine imports from here only; it never sees aio-pika types.
"""

from bridge.transport.client import Transport
from bridge.transport.delivery import Delivery, Handler, Outcome, ParkingCallback, Verdict
from bridge.transport.errors import PublishError, PublishFailure, TopologyError, TransportError
from bridge.transport.topology import PRIORITIES, Priority, Topology

__all__ = [
    "PRIORITIES",
    "Delivery",
    "Handler",
    "Outcome",
    "ParkingCallback",
    "Priority",
    "PublishError",
    "PublishFailure",
    "Topology",
    "TopologyError",
    "Transport",
    "TransportError",
    "Verdict",
]
