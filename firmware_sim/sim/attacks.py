"""Attack messages the simulator injects; a sound gateway rejects every one.

Each builder is pure: it takes what a compromised or misbehaving device would have (its own
key and messages, another device's id) and returns the bytes to publish and the device id
whose topic they go to. :data:`EXPECTED_REJECTION` names the reason a gateway must give.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

import cbor2

from ledger.message import decode_message, message_hash, sign_message

EXPECTED_REJECTION: Final = {
    "forged_signature": "bad signature: a signature byte of a real message is flipped",
    "replay": "duplicate: an already delivered message is published again, byte for byte",
    "reorder": "out of order: a validly signed message whose seq is far ahead of the chain",
    "fork": "seq reuse: a validly signed second message with an already used seq",
    "wrong_topic": "topic mismatch: a device publishes its own message on another's topic",
    "wrong_kid": "kid mismatch: a device signs a message naming another device (dev/kid)",
    "garbage": "malformed: random bytes that are not CBOR COSE_Sign1",
    "oversized": "too large: a COSE_Sign1 whose payload exceeds the 64 KiB limit",
}
ATTACK_KINDS: Final = tuple(EXPECTED_REJECTION)
REORDER_AHEAD: Final = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class Injection:
    """Bytes to publish on the telemetry topic of ``topic_dev``, as device ``sender``."""

    kind: str
    sender: str
    topic_dev: str
    data: bytes


def forged_signature(sender: str, message: bytes) -> Injection:
    """``message`` with the last byte of its signature flipped."""
    return Injection(
        kind="forged_signature",
        sender=sender,
        topic_dev=sender,
        data=message[:-1] + bytes((message[-1] ^ 0x01,)),
    )


def replay(sender: str, message: bytes) -> Injection:
    """An earlier message of ``sender``, unchanged."""
    return Injection(kind="replay", sender=sender, topic_dev=sender, data=message)


def _resigned(message: bytes, seed: bytes, **changes: object) -> bytes:
    payload = dict(decode_message(message).payload)
    payload.update(changes)
    return sign_message(payload, seed=seed)


def reorder(sender: str, message: bytes, seed: bytes) -> Injection:
    """A successor of ``message`` (its prev is ``message``'s hash) with a seq far ahead."""
    seq = decode_message(message).payload["seq"]
    data = _resigned(message, seed, seq=seq + REORDER_AHEAD, prev=message_hash(message))
    return Injection(kind="reorder", sender=sender, topic_dev=sender, data=data)


def fork(sender: str, message: bytes, seed: bytes) -> Injection:
    """A second, different, validly signed message with the same seq and prev."""
    t = decode_message(message).payload["t"]
    data = _resigned(message, seed, t=t + 1)
    return Injection(kind="fork", sender=sender, topic_dev=sender, data=data)


def wrong_topic(sender: str, message: bytes, victim: str) -> Injection:
    """``sender``'s own valid message published on ``victim``'s topic."""
    return Injection(kind="wrong_topic", sender=sender, topic_dev=victim, data=message)


def wrong_kid(sender: str, message: bytes, seed: bytes, victim: str) -> Injection:
    """A message naming ``victim`` as dev and kid, signed with ``sender``'s key."""
    data = _resigned(message, seed, dev=victim)
    return Injection(kind="wrong_kid", sender=sender, topic_dev=sender, data=data)


def garbage(sender: str, rng: random.Random) -> Injection:
    """Random bytes (never valid CBOR tag 18: the first byte is forced to 0xff)."""
    data = b"\xff" + rng.randbytes(rng.randint(1, 300))
    return Injection(kind="garbage", sender=sender, topic_dev=sender, data=data)


def oversized(sender: str, rng: random.Random, size: int = 66_600) -> Injection:
    """A COSE_Sign1 of ``sender`` with a ``size``-byte payload and a junk signature.

    The default is just above the protocol's payload bound and below the broker's
    ``max_packet_size`` (configs/mosquitto/limits.conf): the broker passes it on and the
    gateway refuses it. A larger one the broker itself refuses (and disconnects the sender).
    """
    cose = cbor2.CBORTag(
        18, [b"\xa1\x01\x27", {4: sender.encode()}, rng.randbytes(size), rng.randbytes(64)]
    )
    return Injection(kind="oversized", sender=sender, topic_dev=sender, data=cbor2.dumps(cose))
