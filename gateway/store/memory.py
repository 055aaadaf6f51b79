"""The in-memory store: the fake for tests, on a private SQLite in-memory database.

Backed by SQLite rather than by Python dictionaries so that it cannot drift from the real
store: it runs the same schema, migrations, chain decisions and queries, and the shared
contract suite (``tests/support/store_contract.py``) runs over it and over the file store
alike. Nothing touches the disk; everything is gone when it is closed.
"""

from __future__ import annotations

from .sqlite import SqliteStore

MEMORY: str = ":memory:"


async def open_memory_store() -> SqliteStore:
    """A fresh, empty, migrated store that lives in memory (reader and writer in one)."""
    return await SqliteStore.open(MEMORY)
