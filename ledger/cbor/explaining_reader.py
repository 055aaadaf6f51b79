"""The strict pure-Python CBOR reader behind :func:`ledger.cbor.decode`'s failure path.

It reads the input item by item and raises the first deviation from RFC 8949 §4.2.1
deterministic encoding with its exact kind and byte offset. It is slow and simple on
purpose: it is also the reference the fast path is tested against.
"""

from __future__ import annotations

import struct
from typing import Any, Final

from .values import (
    COSE_SIGN1_TAG,
    MAX_DEPTH,
    TYPED_ARRAY_TAGS,
    DuplicateKeyError,
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
    encode_float,
)

__all__ = ["scan"]

_MAJOR_NAMES: Final = (
    "unsigned integer",
    "negative integer",
    "byte string",
    "text string",
    "array",
    "map",
    "tag",
    "simple value or float",
)
_MINIMUM_FOR_WIDTH: Final = {24: 24, 25: 0x100, 26: 0x1_0000, 27: 0x1_0000_0000}
_FLOAT_FORMATS: Final = {25: ">e", 26: ">f", 27: ">d"}
_SIMPLE_VALUES: Final = {20: False, 21: True, 22: None}


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, count: int, *, what: str, start: int) -> bytes:
        end = self.pos + count
        if end > len(self.data):
            raise TruncatedError(
                f"input ends inside {what}: needs {count} more bytes, "
                f"{len(self.data) - self.pos} left",
                offset=start,
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def head(self) -> tuple[int, int, int]:
        """Read an initial byte; return (major type, additional information, start offset)."""
        start = self.pos
        if start >= len(self.data):
            raise TruncatedError("input ends where an item should start", offset=start)
        initial = self.data[start]
        self.pos += 1
        return initial >> 5, initial & 0x1F, start

    def argument(self, major: int, info: int, start: int) -> int:
        """Read the argument of a major type 0-6 head, requiring its shortest form."""
        name = _MAJOR_NAMES[major]
        if info < 24:
            return info
        if info == 31:
            if major in (2, 3, 4, 5):
                raise IndefiniteLengthError(
                    f"indefinite-length {name} is not allowed", offset=start
                )
            raise InvalidItemError(
                f"{name} with indefinite length is not well-formed", offset=start
            )
        if info > 27:
            raise InvalidItemError(
                f"reserved additional information {info} in a {name} head", offset=start
            )
        width = 1 << (info - 24)
        value = int.from_bytes(self.take(width, what=f"a {name} head", start=start), "big")
        if value < _MINIMUM_FOR_WIDTH[info]:
            raise NonDeterministicError(
                f"{name} argument {value} is written in {width + 1} bytes, not its shortest form",
                offset=start,
            )
        return value

    def item(self, depth: int) -> Any:
        major, info, start = self.head()
        if major == 7:
            return self.simple(info, start)
        value = self.argument(major, info, start)
        if major < 2:
            return value if major == 0 else -1 - value
        if major < 4:
            return self.string(major, value, start)
        return self.container(major, value, depth, start)

    def string(self, major: int, length: int, start: int) -> bytes | str:
        if major == 2:
            return self.take(length, what="a byte string", start=start)
        raw = self.take(length, what="a text string", start=start)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidItemError(
                f"text string is not valid UTF-8 ({exc.reason})", offset=start
            ) from exc

    def container(self, major: int, argument: int, depth: int, start: int) -> Any:
        if depth >= MAX_DEPTH:
            raise NestingTooDeepError(f"items nest deeper than {MAX_DEPTH} levels", offset=start)
        if major == 4:
            return [self.item(depth + 1) for _ in range(argument)]
        if major == 5:
            return self.map(argument, depth + 1)
        if argument in TYPED_ARRAY_TAGS:
            return self.typed_array(argument, depth + 1, start)
        if argument != COSE_SIGN1_TAG:
            raise UnsupportedItemError(
                f"tag {argument} is not supported (only tag 18, COSE_Sign1, and the RFC 8746 "
                "integer typed arrays 64-67, 69-75, 77-79)",
                offset=start,
            )
        return Tag(number=argument, value=self.item(depth + 1))

    def typed_array(self, tag: int, depth: int, start: int) -> TypedArray:
        element = TYPED_ARRAY_TAGS[tag]
        content = self.pos
        if content < len(self.data) and self.data[content] >> 5 != 2:
            raise TypedArrayError(
                f"{element.name} typed array (tag {tag}) must enclose a byte string, "
                f"not a {_MAJOR_NAMES[self.data[content] >> 5]}",
                offset=content,
            )
        data = self.item(depth)
        if len(data) % element.width:
            raise TypedArrayError(
                f"{element.name} typed array (tag {tag}) holds {len(data)} bytes, "
                f"not a multiple of its {element.width}-byte elements",
                offset=content,
            )
        return TypedArray(encoded=self.data[start : self.pos])

    def map(self, count: int, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        previous = b""
        for index in range(count):
            key_start = self.pos
            key_major = self.data[key_start] >> 5 if key_start < len(self.data) else 0
            if key_major not in (0, 1, 2, 3):
                raise UnsupportedItemError(
                    f"map key of type {_MAJOR_NAMES[key_major]} is not supported "
                    "(integer, text or byte string only)",
                    offset=key_start,
                )
            key = self.item(depth)
            encoded = self.data[key_start : self.pos]
            if index and encoded == previous:
                raise DuplicateKeyError(f"map key {key!r} appears twice", offset=key_start)
            if index and encoded < previous:
                raise NonDeterministicError(
                    f"map key {key!r} is not in bytewise order of encoded keys "
                    f"(follows the key encoded as {previous.hex()})",
                    offset=key_start,
                )
            previous = encoded
            result[key] = self.item(depth)
        return result

    def simple(self, info: int, start: int) -> Any:
        if info in _SIMPLE_VALUES:
            return _SIMPLE_VALUES[info]
        if info in _FLOAT_FORMATS:
            width = 1 << (info - 24)
            raw = self.take(width, what="a float", start=start)
            value: float = struct.unpack(_FLOAT_FORMATS[info], raw)[0]
            shortest = encode_float(value)
            if shortest != self.data[start : self.pos]:
                raise NonDeterministicError(
                    f"float {value!r} is written in {width + 1} bytes, "
                    f"its deterministic form is {shortest.hex()}",
                    offset=start,
                )
            return value
        if info == 31:
            raise InvalidItemError("break code outside an indefinite-length item", offset=start)
        if info in (28, 29, 30):
            raise InvalidItemError(
                f"reserved additional information {info} in a simple value head", offset=start
            )
        if info == 24:
            self.take(1, what="a simple value", start=start)
        raise UnsupportedItemError(
            "simple values other than false, true and null are not supported", offset=start
        )


def scan(data: bytes | bytearray | memoryview) -> Any:
    """Decode ``data`` strictly, raising the first problem with its byte offset."""
    reader = _Reader(bytes(data))
    value = reader.item(0)
    if reader.pos != len(reader.data):
        raise TrailingBytesError(
            f"{len(reader.data) - reader.pos} bytes follow the item that ends here",
            offset=reader.pos,
        )
    return value
