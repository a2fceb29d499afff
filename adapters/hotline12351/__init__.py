"""The 12351 worker service hotline: typed client, cursor feed reader, the `Hotline`
adapter the engine uses, and a strict simulator (`adapters.hotline12351.sim.server`)."""

from adapters.hotline12351.adapter import Hotline12351
from adapters.hotline12351.client import Client12351, CursorExpired
from adapters.hotline12351.config import Hotline12351Config
from adapters.hotline12351.feed import CasesFeedReader, CasesPosition

__all__ = [
    "CasesFeedReader",
    "CasesPosition",
    "Client12351",
    "CursorExpired",
    "Hotline12351",
    "Hotline12351Config",
]
