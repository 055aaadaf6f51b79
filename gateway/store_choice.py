"""Which store a deployment uses: PostgreSQL when ``store.url`` is set, else the SQLite file.

The gateway (:func:`open_store`) and the commands that read a deployment's state
(:func:`open_store_reader`: audit, gateway check) choose here, once.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from .config import GatewaySettings
from .store import SqliteStore, Store, StoreReader, open_reader


def store_location(settings: GatewaySettings) -> str:
    """The store as the user should read it in messages (never with a password)."""
    if settings.store.url is None:
        return str(settings.db_path)
    from .store.postgresql import describe

    return describe(settings.store.url.get_secret_value())


async def open_store(settings: GatewaySettings, stack: AsyncExitStack) -> Store:
    """The configured store, writable (created or migrated), closed by ``stack``."""
    store: Store
    if settings.store.url is not None:
        from .store.postgresql import PostgresStore

        store = await PostgresStore.open(
            settings.store.url.get_secret_value(),
            pool_size=settings.store.pool_size,
            quarantine_max_rows=settings.pipeline.quarantine_max_rows,
            max_seq_jump=settings.pipeline.max_seq_jump,
        )
    else:
        store = await SqliteStore.open(
            settings.db_path,
            quarantine_max_rows=settings.pipeline.quarantine_max_rows,
            max_seq_jump=settings.pipeline.max_seq_jump,
        )
    stack.push_async_callback(store.close)
    return store


async def open_store_reader(settings: GatewaySettings) -> StoreReader:
    """The configured store for reading; ``StoreError`` if there is none.

    The SQLite file is opened read-only; a PostgreSQL store is read through its pool (its
    schema is migrated by whichever gateway or command opens it first).
    """
    if settings.store.url is not None:
        from .store.postgresql import PostgresStore

        return await PostgresStore.open(settings.store.url.get_secret_value(), pool_size=2)
    return await open_reader(settings.db_path)
