"""The 12345 municipal hotline: typed client, adapter, feed reader, simulator.

`Hotline12345` is what `bridge/app.py` wires; `Simulator12345` is imported from
`adapters.hotline12345.sim.server` by tests, the demo and `hotline-bridge simulate`.
"""

from adapters.hotline12345.adapter import Hotline12345
from adapters.hotline12345.client import Client12345
from adapters.hotline12345.config import Hotline12345Config
from adapters.hotline12345.feed import FeedPosition, FeedReader12345

__all__ = [
    "Client12345",
    "FeedPosition",
    "FeedReader12345",
    "Hotline12345",
    "Hotline12345Config",
]
