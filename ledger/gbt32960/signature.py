"""Verifying the 2025 edition's SM2 signature (GB/T 32918.2 with SM3, GM/T 0009 user id).

The signed bytes are the real-time data unit from the collection time up to (not including)
the 0xFF signature start byte; the digest is SM3(Z_A || M) with the default user id
``1234567812345678``. ``r`` and ``s`` arrive as big-endian integers of any length up to 32
significant bytes. The curve arithmetic is gmssl's (pure Python, the one maintained SM2 on
PyPI that needs no native library); the checks around it are ours.
"""

from __future__ import annotations

from typing import Final

from gmssl import sm2

from ..errors import VoltproofError
from .errors import GbtSignatureError
from .units import Signature

ALGORITHM_SM2: Final = 1
_P: Final = int(sm2.default_ecc_table["p"], 16)
_A: Final = int(sm2.default_ecc_table["a"], 16)
_B: Final = int(sm2.default_ecc_table["b"], 16)
_N: Final = int(sm2.default_ecc_table["n"], 16)
PUBLIC_KEY_LEN: Final = 64


class PublicKeyError(VoltproofError, ValueError):
    """An SM2 public key that is not 64 (or 65 with 0x04) bytes of a point on the curve."""


def sm2_public_key(raw: bytes) -> bytes:
    """The 64-byte X || Y of an uncompressed SM2 public key, checked to lie on the curve."""
    if len(raw) == PUBLIC_KEY_LEN + 1 and raw[0] == 0x04:
        raw = raw[1:]
    if len(raw) != PUBLIC_KEY_LEN:
        raise PublicKeyError(
            f"an SM2 public key is 64 bytes X || Y (or 65 with 04); got {len(raw)} bytes"
        )
    x = int.from_bytes(raw[:32], "big")
    y = int.from_bytes(raw[32:], "big")
    if not (x < _P and y < _P and (y * y - (x * x * x + _A * x + _B)) % _P == 0):
        raise PublicKeyError("the SM2 public key is not a point on the SM2 curve")
    return raw


def verify_sm2(*, signature: Signature, signed: bytes, public_key: bytes) -> None:
    """Raise :class:`GbtSignatureError` unless ``signature`` is a valid SM2 signature."""
    if signature.algorithm != ALGORITHM_SM2:
        raise GbtSignatureError(
            f"signature algorithm {signature.algorithm} is not SM2 (1); only SM2 is verified"
        )
    r = int.from_bytes(signature.r, "big")
    s = int.from_bytes(signature.s, "big")
    if not (0 < r < _N and 0 < s < _N):
        raise GbtSignatureError("SM2 signature r or s is outside 1..n-1")
    try:
        key = sm2_public_key(public_key)
    except PublicKeyError as exc:
        raise GbtSignatureError(f"the registered key is unusable: {exc}") from exc
    crypt = sm2.CryptSM2(private_key=None, public_key="00")
    # Set after construction: gmssl's constructor strips a leading "04" character-wise and
    # would mangle an X coordinate that starts with the digits 0 or 4.
    crypt.public_key = key.hex()
    if not crypt.verify_with_sm3(f"{r:064x}{s:064x}", signed):
        raise GbtSignatureError("SM2 signature does not verify against the registered key")
