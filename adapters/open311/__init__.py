"""An Open311 GeoReport v2 partner (12385, the disabled persons' federation): typed
client, rolling-window updates feed, the `Hotline` adapter the engine uses, and a strict
simulator (`adapters.open311.sim.server`)."""

from adapters.open311.adapter import Hotline385
from adapters.open311.client import Open311Client
from adapters.open311.config import Open311Config
from adapters.open311.feed import UpdatesFeedReader, UpdatesPosition

__all__ = [
    "Hotline385",
    "Open311Client",
    "Open311Config",
    "UpdatesFeedReader",
    "UpdatesPosition",
]
