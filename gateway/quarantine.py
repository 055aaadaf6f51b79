"""Quarantine policy: every rejected message is kept with its reason, bounded and counted.

A rejection is data, not an error: it becomes a :class:`~gateway.store.QuarantineEntry`
written in the same transaction as the batch it arrived in. Two bounds keep the table from
growing without limit:

- per row, unsigned input (``oversize``, ``malformed``) keeps only its first
  ``max_raw_bytes``; anything that decoded is at most one message long and is kept whole, so
  a signed message that was refused (a fork, a bad signature) stays available as evidence;
- per table, the store keeps the newest ``quarantine_max_rows`` rows and evicts the oldest;
  ``quarantine_counts`` keeps counting every reason's total and its evicted rows, so a
  rejection is never lost from the counts.
"""

from __future__ import annotations

from typing import Final

from .store import QuarantineEntry
from .verification import Incoming, Reason, Rejected

DEFAULT_MAX_RAW_BYTES: Final = 4096
_UNSIGNED: Final = frozenset({Reason.OVERSIZE, Reason.MALFORMED})


def quarantine_entry(
    incoming: Incoming, rejected: Rejected, *, max_raw_bytes: int = DEFAULT_MAX_RAW_BYTES
) -> QuarantineEntry:
    """The quarantine row of a rejected message (unsigned input truncated)."""
    if max_raw_bytes < 0:
        raise ValueError(f"max_raw_bytes must be >= 0, got {max_raw_bytes}")
    raw = incoming.payload
    detail = rejected.detail
    if rejected.reason in _UNSIGNED and len(raw) > max_raw_bytes:
        detail = f"{detail} (first {max_raw_bytes} of {len(raw)} bytes kept)"
        raw = raw[:max_raw_bytes]
    return QuarantineEntry(
        reason=rejected.reason.value,
        detail=detail,
        topic=incoming.topic,
        device_id=rejected.device_id,
        raw=raw,
        raw_size=len(incoming.payload),
        received_at_ms=incoming.received_at_ms,
    )
