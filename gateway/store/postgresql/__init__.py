"""The PostgreSQL backend of the store: several gateway processes, one log.

:class:`PostgresStore` implements :class:`~gateway.store.base.Store` (and so
:class:`~gateway.store.reader.StoreReader`) on a psycopg 3 connection pool; the statements
and write decisions are the SQLite store's own (:mod:`gateway.store.log_writes`).
"""

from .store import PostgresStore, describe, is_postgres_url

__all__ = ["PostgresStore", "describe", "is_postgres_url"]
