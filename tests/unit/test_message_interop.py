"""Interop with pycose, an independent COSE implementation, in both directions."""

from __future__ import annotations

from typing import Any

import pytest
from pycose.algorithms import EdDSA
from pycose.headers import KID, Algorithm
from pycose.keys.curves import Ed25519
from pycose.keys.okp import OKPKey
from pycose.messages.sign1message import Sign1Message

from ledger import cbor, message
from ledger.keys import public_key_from_seed

SEED = bytes(range(7, 39))
PUBLIC_KEY = public_key_from_seed(SEED)
PAYLOAD: dict[str, Any] = {
    "v": 1,
    "dev": "pack-17",
    "seq": 41,
    "prev": b"\x5a" * 32,
    "t": 1718000123456,
    "s": {"u": [6512, 6513], "i": [-1203, -1190]},
}


def pycose_sign(payload: dict[str, Any]) -> bytes:
    """Sign with pycose: EdDSA in the protected header, kid unprotected."""
    msg = Sign1Message(
        phdr={Algorithm: EdDSA},
        uhdr={KID: payload["dev"].encode("utf-8")},
        payload=cbor.encode(payload),
    )
    msg.key = OKPKey(crv=Ed25519, d=SEED, x=PUBLIC_KEY)
    encoded: bytes = msg.encode()
    return encoded


def test_pycose_message_verifies_here() -> None:
    """A message made by pycose passes verify_message."""
    assert message.verify_message(pycose_sign(PAYLOAD), public_key=PUBLIC_KEY) == PAYLOAD


def test_our_message_verifies_in_pycose() -> None:
    """A message made here passes pycose's verification, with the same kid and payload."""
    decoded = Sign1Message.decode(message.sign_message(PAYLOAD, seed=SEED))
    decoded.key = OKPKey(crv=Ed25519, x=PUBLIC_KEY)
    assert decoded.verify_signature()
    assert decoded.uhdr[KID] == b"pack-17"
    assert decoded.payload is not None
    assert cbor.decode(decoded.payload) == PAYLOAD


def test_same_bytes_both_ways() -> None:
    """Deterministic Ed25519 and encoding: pycose and this module produce identical bytes."""
    assert pycose_sign(PAYLOAD) == message.sign_message(PAYLOAD, seed=SEED)


def test_pycose_rejects_tampered_message() -> None:
    """pycose agrees that a flipped signature bit does not verify."""
    data = bytearray(message.sign_message(PAYLOAD, seed=SEED))
    data[-1] ^= 1
    decoded = Sign1Message.decode(bytes(data))
    decoded.key = OKPKey(crv=Ed25519, x=PUBLIC_KEY)
    assert not decoded.verify_signature()
    with pytest.raises(message.BadSignatureError, match="does not verify"):
        message.verify_message(bytes(data), public_key=PUBLIC_KEY)


TYPED_PAYLOAD: dict[str, Any] = {
    **PAYLOAD,
    "s": {
        "u": cbor.TypedArray.from_values(tag=69, values=[6512, 6513]),
        "i": cbor.TypedArray.from_values(tag=77, values=[-1203, -1190]),
    },
}


def test_typed_array_payload_both_ways() -> None:
    """pycose signs and verifies payloads with RFC 8746 typed arrays (tags 64-79) like ours."""
    ours = message.sign_message(TYPED_PAYLOAD, seed=SEED)
    assert pycose_sign(TYPED_PAYLOAD) == ours
    decoded = Sign1Message.decode(ours)
    decoded.key = OKPKey(crv=Ed25519, x=PUBLIC_KEY)
    assert decoded.verify_signature()
    assert message.verify_message(pycose_sign(TYPED_PAYLOAD), public_key=PUBLIC_KEY) == (
        TYPED_PAYLOAD
    )
