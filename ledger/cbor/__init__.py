"""Strict deterministic CBOR (RFC 8949 §4.2.1 core deterministic encoding).

``encode`` writes the one deterministic encoding of a value: integers, lengths and tags in
their shortest form, definite lengths only, map keys sorted by the bytewise order of their
encodings, floats in the shortest of half/single/double precision that keeps the value
(NaN as ``f9 7e00``). ``decode`` accepts exactly those encodings and nothing else.

Supported values: ``int`` (-2**64 .. 2**64-1), ``bytes``, ``str``, ``list`` (``tuple`` on
encode), ``dict`` with integer, text or byte-string keys, ``bool``, ``None``, ``float``,
:class:`Tag` 18 (COSE_Sign1) and :class:`TypedArray` (RFC 8746 integer typed arrays, tags
64-67, 69-75 and 77-79 over a byte string of whole elements). Nesting is limited to
:data:`MAX_DEPTH` levels.

Both directions are pure Python tuned for small messages. Decoding validates while it
parses (:mod:`ledger.cbor.fast_reader`); it never re-encodes. Anything the fast reader does
not take on the spot, it hands to the strict scanner in
:mod:`ledger.cbor.explaining_reader`, which either returns the same value or names the first
problem and its byte offset, each kind with its own error type.

Modules: :mod:`~ledger.cbor.values` (the value types, limits and errors),
:mod:`~ledger.cbor.encoder`, :mod:`~ledger.cbor.fast_reader` (the fast strict reader) and
:mod:`~ledger.cbor.explaining_reader` (the strict reader that names each problem).
"""

from __future__ import annotations

from typing import Any

from .encoder import encode
from .explaining_reader import scan
from .fast_reader import FastPathMiss, read
from .values import (
    COSE_SIGN1_TAG,
    MAX_DEPTH,
    TYPED_ARRAY_TAGS,
    CBORError,
    DecodeError,
    DuplicateKeyError,
    ElementType,
    EncodeError,
    IndefiniteLengthError,
    InvalidItemError,
    NestingTooDeepError,
    NonDeterministicError,
    Tag,
    TrailingBytesError,
    TruncatedError,
    TypedArray,
    TypedArrayError,
    UnsupportedItemError,
    byte_string_head,
    encode_float,
)

__all__ = [
    "COSE_SIGN1_TAG",
    "MAX_DEPTH",
    "TYPED_ARRAY_TAGS",
    "CBORError",
    "DecodeError",
    "DuplicateKeyError",
    "ElementType",
    "EncodeError",
    "IndefiniteLengthError",
    "InvalidItemError",
    "NestingTooDeepError",
    "NonDeterministicError",
    "Tag",
    "TrailingBytesError",
    "TruncatedError",
    "TypedArray",
    "TypedArrayError",
    "UnsupportedItemError",
    "byte_string_head",
    "decode",
    "encode",
    "encode_float",
]


def decode(data: bytes | bytearray | memoryview) -> Any:
    """Decode one deterministic CBOR item, rejecting every other encoding of it."""
    if type(data) is not bytes:
        data = bytes(data)
    try:
        return read(data)
    except (FastPathMiss, IndexError, UnicodeDecodeError):
        return scan(data)
