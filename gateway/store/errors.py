"""Errors of the gateway store; sqlite3 errors never leave the store untranslated."""

from __future__ import annotations

from ledger.errors import VoltproofError


class StoreError(VoltproofError):
    """The store failed (I/O, lock timeout, corruption): a broken dependency, not bad input."""


class UnstorableValueError(VoltproofError):
    """A value of the written batch does not fit the store (an integer beyond 64 bits, a
    constraint the data breaks); nothing was written. Bad input, not a broken store: the
    caller isolates the offending message instead of stopping intake."""


class SchemaVersionError(StoreError):
    """The database was written by a newer schema than this code knows."""


class LogCorruptError(StoreError):
    """The stored log contradicts itself (missing nodes, a size without its nodes)."""


class RegistryConflictError(StoreError):
    """A registry change does not fit the registry (device already enrolled, unknown, revoked)."""


class UnknownCheckpointError(StoreError):
    """No checkpoint of that size is stored."""
