"""The values and errors shared by the deterministic CBOR codec's modules.

:mod:`ledger.cbor` re-exports everything public here; import it from there. This module
exists so that the encoder, the fast decoder and the strict scanner can share these names
without importing each other.

Typed arrays are RFC 8746 §2: a tag ``0b010_f_s_e_ll`` over a byte string holding the
elements back to back. This codec supports the integer ones (``f`` = 0): ``s`` = signed,
``e`` = little endian, ``2**ll`` bytes per element, except tag 68 (uint8 "clamped", a
second name for uint8) and the reserved tag 76.
"""

from __future__ import annotations

import array
import math
import struct
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..errors import VoltproofError

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
    "encode_float",
]

MAX_DEPTH: Final = 16
"""Deepest nesting of arrays, maps and tags accepted (the top-level item is depth 0)."""

COSE_SIGN1_TAG: Final = 18


class CBORError(VoltproofError, ValueError):
    """Base of every error raised by this codec."""


class EncodeError(CBORError):
    """A value cannot be written in deterministic CBOR (unsupported type or range)."""


class DecodeError(CBORError):
    """Input bytes are not one deterministic CBOR item; ``offset`` is where it goes wrong."""

    def __init__(self, message: str, *, offset: int) -> None:
        super().__init__(f"{message} (at byte offset {offset})")
        self.offset = offset


class NonDeterministicError(DecodeError):
    """Well-formed CBOR, but not the deterministic encoding (non-minimal, unsorted keys)."""


class IndefiniteLengthError(DecodeError):
    """An indefinite-length string, array or map."""


class DuplicateKeyError(DecodeError):
    """A map holds the same key twice."""


class TrailingBytesError(DecodeError):
    """Bytes follow the single top-level item."""


class TruncatedError(DecodeError):
    """The input ends in the middle of an item."""


class UnsupportedItemError(DecodeError):
    """Well-formed CBOR this codec does not accept (an unsupported tag, a simple value...)."""


class InvalidItemError(DecodeError):
    """Not well-formed CBOR (reserved additional information, invalid UTF-8, stray break)."""


class NestingTooDeepError(DecodeError):
    """Arrays, maps and tags nest deeper than :data:`MAX_DEPTH`."""


class TypedArrayError(DecodeError):
    """A typed-array tag not over a byte string of a whole number of elements."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Tag:
    """A tagged item; only tag 18 (COSE_Sign1) is supported (typed arrays: :class:`TypedArray`)."""

    number: int
    value: Any

    def __post_init__(self) -> None:
        if self.number != COSE_SIGN1_TAG:
            raise EncodeError(
                f"tag {self.number} is not supported (only tag 18, COSE_Sign1; "
                "typed arrays are TypedArray values)"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class ElementType:
    """The element of one RFC 8746 integer typed-array tag."""

    tag: int
    name: str
    width: int
    signed: bool
    little_endian: bool
    typecode: str
    """The :mod:`array` type code of this width and signedness on this host."""

    @property
    def lo(self) -> int:
        """Smallest element value."""
        return -(1 << (8 * self.width - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        """Largest element value."""
        return (1 << (8 * self.width - (1 if self.signed else 0))) - 1


def _typecode(width: int, *, signed: bool) -> str:
    codes = "bhilq" if signed else "BHILQ"
    return next(code for code in codes if array.array(code).itemsize == width)


def _element_types() -> dict[int, ElementType]:
    types = {}
    for signed in (False, True):
        for little_endian in (False, True):
            for exponent in range(4):
                width = 1 << exponent
                if width == 1 and little_endian:
                    continue  # tag 68 is uint8 "clamped", tag 76 is reserved
                tag = 64 | signed << 3 | little_endian << 2 | exponent
                order = "" if width == 1 else (" LE" if little_endian else " BE")
                types[tag] = ElementType(
                    tag=tag,
                    name=f"{'s' if signed else 'u'}int{8 * width}{order}",
                    width=width,
                    signed=signed,
                    little_endian=little_endian,
                    typecode=_typecode(width, signed=signed),
                )
    return types


TYPED_ARRAY_TAGS: Final[Mapping[int, ElementType]] = _element_types()
"""The supported RFC 8746 typed-array tags (64-67, 69-75, 77-79) and their element types."""

_HOST_LITTLE: Final = sys.byteorder == "little"


def byte_string_head(size: int) -> bytes:
    """The deterministic head of a byte string of ``size`` bytes."""
    if size < 24:
        return bytes((0x40 | size,))
    if size < 0x100:
        return bytes((0x58, size))
    if size < 0x1_0000:
        return b"\x59" + size.to_bytes(2, "big")
    if size < 0x1_0000_0000:
        return b"\x5a" + size.to_bytes(4, "big")
    return b"\x5b" + size.to_bytes(8, "big")


def _typed_array_parts(encoded: bytes) -> tuple[ElementType, int]:
    """The element type and data offset of a typed array's encoding, or ``EncodeError``."""
    if len(encoded) < 3 or encoded[0] != 0xD8 or encoded[1] not in TYPED_ARRAY_TAGS:
        raise EncodeError(f"{encoded[:2].hex()} does not start a supported typed-array tag")
    element = TYPED_ARRAY_TAGS[encoded[1]]
    for start in (3, 4, 5, 7, 11):
        if start <= len(encoded) and byte_string_head(len(encoded) - start) == encoded[2:start]:
            break
    else:
        raise EncodeError("a typed array must enclose one deterministic definite byte string")
    if (len(encoded) - start) % element.width:
        raise EncodeError(
            f"{element.name} typed array of {len(encoded) - start} bytes is not a whole number "
            f"of {element.width}-byte elements"
        )
    return element, start


@dataclass(frozen=True, slots=True, kw_only=True)
class TypedArray:
    """An RFC 8746 typed array of integers, held as its complete deterministic encoding.

    ``encoded`` is the tag head, the byte-string head and the elements, so writing and
    comparing one costs nothing per element. Build one with :meth:`of` or
    :meth:`from_values`; read it with :attr:`tag`, :attr:`data` and :meth:`values`.
    """

    encoded: bytes

    def __post_init__(self) -> None:
        _typed_array_parts(self.encoded)

    @classmethod
    def of(cls, *, tag: int, data: bytes) -> TypedArray:
        """The typed array ``tag`` over the element bytes ``data``."""
        if tag not in TYPED_ARRAY_TAGS:
            raise EncodeError(
                f"tag {tag} is not a supported typed array ({sorted(TYPED_ARRAY_TAGS)})"
            )
        return cls(encoded=b"\xd8" + bytes((tag,)) + byte_string_head(len(data)) + bytes(data))

    @classmethod
    def from_values(cls, *, tag: int, values: Iterable[int]) -> TypedArray:
        """The typed array ``tag`` holding ``values`` (``EncodeError`` if one does not fit)."""
        element = TYPED_ARRAY_TAGS.get(tag)
        if element is None:
            raise EncodeError(
                f"tag {tag} is not a supported typed array ({sorted(TYPED_ARRAY_TAGS)})"
            )
        items = list(values)
        try:
            elements = array.array(element.typecode, items)
        except OverflowError as exc:
            bad = next(v for v in items if not element.lo <= v <= element.hi)
            raise EncodeError(
                f"{bad!r} does not fit a {element.name} typed array ({element.lo}..{element.hi})"
            ) from exc
        except TypeError as exc:
            raise EncodeError(f"a {element.name} typed array holds integers only: {exc}") from exc
        if element.width > 1 and element.little_endian != _HOST_LITTLE:
            elements.byteswap()
        return cls.of(tag=tag, data=elements.tobytes())

    @property
    def element(self) -> ElementType:
        """The element type named by the tag."""
        return TYPED_ARRAY_TAGS[self.encoded[1]]

    @property
    def tag(self) -> int:
        """The RFC 8746 tag number."""
        return self.encoded[1]

    @property
    def data(self) -> bytes:
        """The element bytes, in the tag's byte order."""
        return self.encoded[_typed_array_parts(self.encoded)[1] :]

    def __len__(self) -> int:
        """The number of elements."""
        return len(self.data) // self.element.width

    def values(self) -> array.array[int]:
        """The elements as a new host-order :class:`array.array` of integers."""
        element, start = _typed_array_parts(self.encoded)
        elements = array.array(element.typecode, self.encoded[start:])
        if element.width > 1 and element.little_endian != _HOST_LITTLE:
            elements.byteswap()
        return elements


def encode_float(value: float) -> bytes:
    """Return the shortest CBOR encoding of ``value`` that preserves it exactly."""
    if math.isnan(value):  # RFC 8949 §4.2.2 fixes the one encoding of NaN
        return b"\xf9\x7e\x00"
    for head, fmt in ((b"\xf9", ">e"), (b"\xfa", ">f")):
        try:
            packed = struct.pack(fmt, value)
        except OverflowError:
            continue
        if struct.unpack(fmt, packed)[0] == value:
            return head + packed
    return b"\xfb" + struct.pack(">d", value)
