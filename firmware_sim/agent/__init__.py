"""The edge agent: one device that samples, signs, buffers and publishes its telemetry."""

from ledger.protocol import HISTORICAL_PROPERTY

from .backoff import Backoff, BackoffConfigError
from .batcher import Batcher, BatcherConfigError, Reading, ReadingKindError
from .config import AgentConfigError, AgentSettings, load_settings, settings_from_mapping
from .device import Device
from .identity import IdentityError, load_seed
from .link import Link, LinkConfig, LinkStats, ReceiptConfig
from .source import SampleSource, SourceError, SteadySource
from .store import (
    ChainHead,
    ChainStore,
    ChainStoreError,
    DropNotice,
    OutboxBoundsError,
    OutboxEntry,
    OutboxStats,
)

__all__ = [
    "HISTORICAL_PROPERTY",
    "AgentConfigError",
    "AgentSettings",
    "Backoff",
    "BackoffConfigError",
    "Batcher",
    "BatcherConfigError",
    "ChainHead",
    "ChainStore",
    "ChainStoreError",
    "Device",
    "DropNotice",
    "IdentityError",
    "Link",
    "LinkConfig",
    "LinkStats",
    "OutboxBoundsError",
    "OutboxEntry",
    "OutboxStats",
    "Reading",
    "ReadingKindError",
    "ReceiptConfig",
    "SampleSource",
    "SourceError",
    "SteadySource",
    "load_seed",
    "load_settings",
    "settings_from_mapping",
]
