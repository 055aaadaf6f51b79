"""End-to-end receipts: after each commit, one signed receipt per device the batch touched.

The broker's PUBACK only says the broker holds a message. After a batch is committed (and
acknowledged), :class:`ReceiptPublisher` reads, for every device with a message in the batch
that is now a leaf (accepted, or a duplicate: the device re-sent it because it saw no
receipt), the highest seq logged with no gap below it, signs a receipt over it with the
gateway key (``ledger.receipt``) and publishes it retained at QoS 1 on the device's receipt
topic. One receipt per device per batch, never before the commit that makes it true. When
the store cannot be read after the commit (a PostgreSQL restart), the batch's receipts are
deferred, never an error that stops the gateway: the devices re-send and get them then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ledger.keys import SigningKey
from ledger.protocol import parse_telemetry_topic, receipt_topic
from ledger.receipt import Receipt, sign_receipt

from .pipeline import Outcome, OutcomeKind
from .store import StoreError, StoreReader

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], None]
"""Publish ``(topic, payload)`` retained at QoS 1 (the intake's client)."""


@dataclass(slots=True)
class ReceiptStats:
    """Counters the metrics and tests read."""

    published: int = 0
    batches: int = 0
    deferred: int = 0
    """Batches whose receipts were not published because the store could not be read."""


@dataclass(slots=True, kw_only=True)
class ReceiptPublisher:
    """Signs and publishes the receipts of committed batches."""

    key: SigningKey
    publish: Publish
    stats: ReceiptStats = field(default_factory=ReceiptStats)

    async def after_commit(
        self, store: StoreReader, topics: Sequence[str], outcomes: Sequence[Outcome]
    ) -> int:
        """Publish the receipts of one committed batch (``topics[i]`` gave ``outcomes[i]``)."""
        fleets: dict[str, str] = {}
        for topic, outcome in zip(topics, outcomes, strict=True):
            if outcome.kind is OutcomeKind.QUARANTINED:
                continue
            parsed = parse_telemetry_topic(topic)
            if parsed is not None:
                fleets[parsed[1]] = parsed[0]
        if not fleets:
            return 0
        try:
            heads = await store.receipt_heads(list(fleets))
            latest = await store.latest_checkpoint()
        except StoreError as exc:
            # The batch is committed and acknowledged; only its receipts wait. A device that
            # sees none re-sends, and the duplicate's batch publishes the receipt.
            log.warning("receipts_deferred", extra={"error": str(exc), "devices": len(fleets)})
            self.stats.deferred += 1
            return 0
        size = latest.size if latest is not None else 0
        for device_id, head in heads.items():
            receipt = Receipt(
                dev=device_id, seq=head.seq, hash=head.message_hash, leaf=head.leaf_index,
                size=size,
            )  # fmt: skip
            data = sign_receipt(receipt, seed=self.key.seed, key_name=self.key.name)
            self.publish(receipt_topic(fleets[device_id], device_id), data)
        self.stats.published += len(heads)
        self.stats.batches += 1
        return len(heads)
