"""Mapping versions at run time: the tables of a version, read back from the store.

A node records its effective tables at start (`record_tables`); events and dead letters
name them by `MappingTables.version`. A replay "with the original tables" re-maps a
parked record with the tables of its letter's version, or marks a parked snapshot with
`MAPPING_HEADER` so that the applier plans it with them (`StoredTables`).
"""

from __future__ import annotations

from typing import Final

from bridge.errors import ConfigError, MappingError
from bridge.mapping import MappingTables
from bridge.store import Store

MAPPING_HEADER: Final = "x-bridge-mapping"
"""On a replayed snapshot: the mapping version to plan it with instead of the current."""


async def record_tables(store: Store, tables: MappingTables) -> str:
    """Keep `tables` in the store under their version (once); returns the version."""
    await store.put_mapping_version(tables.version, tables.as_json())
    return tables.version


class StoredTables:
    """Mapping tables by version, each read from the store once and kept (a version
    never changes: its name is the hash of its content)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._tables: dict[str, MappingTables] = {}

    async def get(self, version: str) -> MappingTables:
        """The tables of `version`. Raises MappingError (field `mapping`) when the store
        does not hold that version or its tables no longer validate."""
        tables = self._tables.get(version)
        if tables is None:
            stored = await self.store.get_mapping_version(version)
            if stored is None:
                raise MappingError("mapping", version, None, f"version {version} is not recorded")
            try:
                tables = MappingTables.from_stored(stored)
            except ConfigError as exc:
                raise MappingError("mapping", version, None, str(exc)) from None
            self._tables[version] = tables
        return tables
