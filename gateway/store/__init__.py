"""The gateway's durable state: the log, its messages and samples, the registry, checkpoints.

:class:`Store` is the interface the gateway and the dashboard API use; :class:`SqliteStore`
implements it on one SQLite file. A PostgreSQL store for multi-gateway deployments would
implement the same protocol.
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
from .records import (
    AlarmRecord,
    AnchorStatus,
    Appended,
    Candidate,
    CheckpointRecord,
    DeviceRecord,
    DeviceStatus,
    KeyRange,
    LeafRecord,
    LogHead,
    QuarantineCount,
    QuarantineEntry,
    QuarantineRecord,
    RegistryAction,
    RegistryChange,
    StoredOutcome,
)
from .sqlite import SqliteStore
from .writes import FORK_REASON

__all__ = [
    "FORK_REASON",
    "AlarmRecord",
    "AnchorStatus",
    "Appended",
    "Candidate",
    "CheckpointRecord",
    "DeviceRecord",
    "DeviceStatus",
    "KeyRange",
    "LeafRecord",
    "LogCorruptError",
    "LogHead",
    "QuarantineCount",
    "QuarantineEntry",
    "QuarantineRecord",
    "RegistryAction",
    "RegistryChange",
    "RegistryConflictError",
    "SchemaVersionError",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoredOutcome",
    "UnknownCheckpointError",
    "UnstorableValueError",
]
