"""Build and sign the payload of the next message of a device (contract 1 envelope)."""

from __future__ import annotations

from typing import Any

from ledger.message import FORMAT_VERSION, sign_message
from ledger.telemetry import TelemetryBatch, encode_batch

from .store import ChainHead, DropNotice


def build_payload(
    *, dev: str, head: ChainHead, batch: TelemetryBatch, notice: DropNotice | None
) -> dict[str, Any]:
    """The payload: envelope keys, the encoded batch and, if any, the ``drop`` event first."""
    payload: dict[str, Any] = {
        "v": FORMAT_VERSION,
        "dev": dev,
        "seq": head.next_seq,
        "prev": head.prev,
        "t": batch.t_ms,
        **encode_batch(batch),
    }
    if notice is not None:
        drop = {
            "k": "drop",
            "at": 0,
            "first": notice.first,
            "last": notice.last,
            "n": notice.count,
            "total": notice.total,
        }
        payload["ev"] = [drop, *payload.get("ev", [])]
    return payload


def sign_batch(
    *, dev: str, seed: bytes, head: ChainHead, batch: TelemetryBatch, notice: DropNotice | None
) -> bytes:
    """The COSE_Sign1 bytes of the next message of ``dev``."""
    return sign_message(build_payload(dev=dev, head=head, batch=batch, notice=notice), seed=seed)
