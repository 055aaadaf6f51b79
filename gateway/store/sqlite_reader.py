"""The :class:`~gateway.store.reader.StoreReader` on a gateway SQLite file opened read-only.

Opening never creates, migrates or writes the file (the gateway owns it and its schema), so
a reader is safe next to a running gateway; a file whose schema version is not this code's
is refused.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Self

from .audit_reads import AuditReads
from .connect import connect
from .cosignatures import CosignatureReads
from .errors import SchemaVersionError, StoreError
from .migrate import LATEST_VERSION

DEFAULT_READ_BUSY_TIMEOUT_MS = 5_000


class SqliteReader(CosignatureReads, AuditReads):
    """Every read of the gateway store, on a read-only connection; open with :meth:`open`."""

    @classmethod
    async def open(
        cls, path: str | Path, *, busy_timeout_ms: int = DEFAULT_READ_BUSY_TIMEOUT_MS
    ) -> Self:
        """Open the store at ``path`` read-only; :class:`StoreError` if it cannot be read."""
        db = await connect(path, read_only=True, busy_timeout_ms=busy_timeout_ms)
        try:
            async with db.execute("SELECT max(version) FROM schema_version") as cursor:
                row = await cursor.fetchone()
        except sqlite3.Error as exc:
            await db.close()
            raise StoreError(f"{path} is not a gateway store: {exc}") from exc
        version = 0 if row is None or row[0] is None else int(row[0])
        if version != LATEST_VERSION:
            await db.close()
            raise SchemaVersionError(
                f"the gateway store {path} has schema version {version}, this code reads "
                f"{LATEST_VERSION} (start the gateway of this version to migrate it)"
            )
        return cls(db=db, lock=asyncio.Lock())


async def open_reader(path: str | Path) -> SqliteReader:
    """The one way to open a gateway store for reading: read-only, no migration."""
    return await SqliteReader.open(path)
