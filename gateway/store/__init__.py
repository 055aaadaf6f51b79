"""The gateway's durable state: the log, its messages and samples, the registry, checkpoints.

:class:`StoreReader` is the read interface (the API, evidence, audit and bundle command use
only it); :class:`Store` adds the writes the gateway makes. :class:`SqliteStore` implements
both on one SQLite file (``SqliteStore.open`` creates and migrates it; the gateway alone
writes); :class:`SqliteReader` reads such a file read-only (``open_reader``). A PostgreSQL
store for multi-gateway deployments would implement the same protocols.
"""

from .base import Store
from .errors import (
    LogCorruptError,
    RegistryConflictError,
    SchemaVersionError,
    StoreError,
    UnknownCheckpointError,
    UnstorableValueError,
)
from .reader import StoreReader
from .records import (
    AlarmRecord,
    AnchoredCheckpoint,
    AnchorStatus,
    Appended,
    Candidate,
    ChainHeadRecord,
    CheckpointRecord,
    CosignatureRecord,
    CosignedCheckpointRecord,
    DeviceRecord,
    DeviceStatus,
    KeyRange,
    LeafRecord,
    LogHead,
    MessageLeaf,
    QuarantineCount,
    QuarantineEntry,
    QuarantineRecord,
    ReceiptHead,
    RegistryAction,
    RegistryChange,
    RegistryEventRecord,
    SampleBlockRecord,
    StoredOutcome,
)
from .sqlite import SqliteStore
from .sqlite_reader import SqliteReader, open_reader
from .writes import FORK_REASON

__all__ = [
    "FORK_REASON",
    "AlarmRecord",
    "AnchorStatus",
    "AnchoredCheckpoint",
    "Appended",
    "Candidate",
    "ChainHeadRecord",
    "CheckpointRecord",
    "CosignatureRecord",
    "CosignedCheckpointRecord",
    "DeviceRecord",
    "DeviceStatus",
    "KeyRange",
    "LeafRecord",
    "LogCorruptError",
    "LogHead",
    "MessageLeaf",
    "QuarantineCount",
    "QuarantineEntry",
    "QuarantineRecord",
    "ReceiptHead",
    "RegistryAction",
    "RegistryChange",
    "RegistryConflictError",
    "RegistryEventRecord",
    "SampleBlockRecord",
    "SchemaVersionError",
    "SqliteReader",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreReader",
    "StoredOutcome",
    "UnknownCheckpointError",
    "UnstorableValueError",
    "open_reader",
]
