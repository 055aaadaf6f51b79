"""Verifying the 2025 edition's SM2 signature (GB/T 32918.2 with SM3, GM/T 0009 user id).

The signed bytes are the real-time data unit from the collection time up to (not including)
the 0xFF signature start byte; the digest is SM3(Z_A || M) with the default user id
``1234567812345678``. ``r`` and ``s`` arrive as big-endian integers of any length up to 32
significant bytes. The checks around the curve arithmetic are ours; the arithmetic is one of
two backends, which the tests hold to the same answers:

- ``gmssl-pyx`` (the default): a C extension over GmSSL 3, the reference SM2/SM3 library,
  about 20x faster. GmSSL writes a trace of its internals to the process's standard error
  when a verification fails; that output is discarded here (the answer and our error say
  what failed), so a forged frame never prints noise to an operator's or a lessor's console.
- ``gmssl`` (pure Python): the fallback when the extension cannot be imported.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import threading
from collections.abc import Iterator
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
SM2_BACKENDS: Final = ("gmssl-pyx", "gmssl")
_NATIVE: Final = importlib.util.find_spec("gmssl_pyx") is not None
"""Whether the C backend is installed (imported on first use: ~18 ms that a process which
never checks an SM2 signature does not pay)."""
DEFAULT_BACKEND: Final = "gmssl-pyx" if _NATIVE else "gmssl"
"""The SM2 arithmetic :func:`verify_sm2` uses unless told otherwise."""
_USER_ID: Final = b"1234567812345678"
_QUIET: Final = threading.Lock()


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


def verify_sm2(
    *, signature: Signature, signed: bytes, public_key: bytes, backend: str | None = None
) -> None:
    """Raise :class:`GbtSignatureError` unless ``signature`` is a valid SM2 signature
    (computed by ``backend``, one of :data:`SM2_BACKENDS`; default :data:`DEFAULT_BACKEND`)."""
    backend = backend or DEFAULT_BACKEND
    if backend not in SM2_BACKENDS or (backend == "gmssl-pyx" and not _NATIVE):
        raise ValueError(f"SM2 backend {backend!r} is not available here")
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
    valid = (
        _verify_native(key, signed, r, s)
        if backend == "gmssl-pyx"
        else _verify_python(key, signed, r, s)
    )
    if not valid:
        raise GbtSignatureError("SM2 signature does not verify against the registered key")


def _verify_python(key: bytes, signed: bytes, r: int, s: int) -> bool:
    crypt = sm2.CryptSM2(private_key=None, public_key="00")
    # Set after construction: gmssl's constructor strips a leading "04" character-wise and
    # would mangle an X coordinate that starts with the digits 0 or 4.
    crypt.public_key = key.hex()
    return bool(crypt.verify_with_sm3(f"{r:064x}{s:064x}", signed))


def _verify_native(key: bytes, signed: bytes, r: int, s: int) -> bool:
    import gmssl_pyx  # on first use only (see _NATIVE)

    try:
        with _stderr_discarded():
            return bool(gmssl_pyx.sm2_verify(key, signed, _der_signature(r, s), _USER_ID))
    except (gmssl_pyx.InvalidValueError, gmssl_pyx.GmsslInnerError) as exc:
        raise GbtSignatureError(f"SM2 signature could not be checked: {exc}") from exc


def _der_signature(r: int, s: int) -> bytes:
    """``SEQUENCE { INTEGER r, INTEGER s }`` in DER (both positive and below 2^256)."""

    def integer(value: int) -> bytes:
        # one byte more than the bits need when the top bit is set: DER integers are signed
        body = value.to_bytes(value.bit_length() // 8 + 1, "big")
        if len(body) > 1 and body[0] == 0 and body[1] < 0x80:
            body = body[1:]
        return bytes((0x02, len(body))) + body

    content = integer(r) + integer(s)
    return bytes((0x30, len(content))) + content


@contextlib.contextmanager
def _stderr_discarded() -> Iterator[None]:
    """File descriptor 2 points at the null device for the duration (one caller at a time):
    GmSSL writes its internal trace there on every failed verification."""
    with _QUIET:
        saved = os.dup(2)
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, 2)
            finally:
                os.close(null)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
