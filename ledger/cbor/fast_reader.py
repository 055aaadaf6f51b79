"""The fast reader behind :func:`ledger.cbor.decode`: validates deterministic CBOR as it parses.

It takes the input in one pass and checks each rule of RFC 8949 §4.2.1 on the spot
(shortest heads, definite lengths, map keys strictly ascending by their encoded bytes, the
shortest float), so accepting an item never needs a second encoding of it. It does not
explain: on the first thing it does not accept at once (a rule broken, an unsupported
item, truncation, or a rare but valid form such as a text key of 24 bytes or more) it
raises :class:`FastPathMiss` and the strict scanner,
:mod:`ledger.cbor.explaining_reader`, decides and names the problem. The fast reader must
never accept what the scanner refuses; the property tests in ``tests/unit/test_cbor.py``
hold the two to the same answers.

Typed arrays are returned as :class:`~ledger.cbor.values.TypedArray` values built directly
from the input slice (the slice is the value's deterministic encoding, already checked).
"""

from __future__ import annotations

import struct
from typing import Any, Final

from ..errors import VoltproofError
from .values import COSE_SIGN1_TAG, MAX_DEPTH, TYPED_ARRAY_TAGS, Tag, TypedArray, encode_float

__all__ = ["FastPathMiss", "read"]


class FastPathMiss(VoltproofError):  # noqa: N818  (a signal to take the strict path, not an error)
    """The fast reader does not accept the input as it stands; the scanner decides."""


_TEXT_KEY_CACHE_SIZE: Final = 4096
_WIDTHS: Final = {tag: element.width for tag, element in TYPED_ARRAY_TAGS.items()}
_FLOATS: Final = {0xF9: (3, ">e"), 0xFA: (5, ">f"), 0xFB: (9, ">d")}
_SIMPLE: Final = {0xF4: False, 0xF5: True, 0xF6: None}

# encoded short text key (head byte + UTF-8) -> the key; map keys repeat from message to message
_text_keys: dict[bytes, str] = {}
# TypedArray values are made from an already validated slice, bypassing __post_init__
_new_object = object.__new__
_set_encoded = TypedArray.__dict__["encoded"].__set__


def _typed_array(data: bytes, pos: int, tag: int) -> tuple[TypedArray, int]:
    """The typed array whose tag head ends at ``pos``, and the offset after it."""
    head = data[pos]
    if 0x40 <= head < 0x58:
        size = head - 0x40
        start = pos + 1
    elif head == 0x58:
        size = data[pos + 1]
        start = pos + 2
        if size < 24:
            raise FastPathMiss
    elif head == 0x59:
        size = data[pos + 1] << 8 | data[pos + 2]
        start = pos + 3
        if size < 0x100:
            raise FastPathMiss
    else:
        raise FastPathMiss
    end = start + size
    if end > len(data) or size % _WIDTHS[tag]:
        raise FastPathMiss
    value = _new_object(TypedArray)
    _set_encoded(value, data[pos - 2 : end])
    return value, end


def _argument(data: bytes, pos: int, info: int) -> tuple[int, int]:
    """The argument of a head whose additional information is ``info`` >= 24."""
    if info == 24:
        argument = data[pos]
        if argument < 24:
            raise FastPathMiss
        return argument, pos + 1
    if info == 25:
        argument = data[pos] << 8 | data[pos + 1]
        if argument < 0x100:
            raise FastPathMiss
        return argument, pos + 2
    if info in {26, 27}:
        end = pos + (4 if info == 26 else 8)
        if end > len(data):
            raise FastPathMiss
        argument = int.from_bytes(data[pos:end], "big")
        if argument < (0x1_0000 if info == 26 else 0x1_0000_0000):
            raise FastPathMiss
        return argument, end
    raise FastPathMiss


def _simple_or_float(data: bytes, pos: int) -> tuple[Any, int]:
    """The false, true, null or shortest-form float at ``pos``, and the offset after it."""
    initial = data[pos]
    if initial in _SIMPLE:
        return _SIMPLE[initial], pos + 1
    if initial not in _FLOATS:
        raise FastPathMiss
    size, fmt = _FLOATS[initial]
    chunk = data[pos : pos + size]
    if len(chunk) != size:
        raise FastPathMiss
    value: float = struct.unpack(fmt, chunk[1:])[0]
    if encode_float(value) != chunk:
        raise FastPathMiss
    return value, pos + size


def _item(data: bytes, pos: int, depth: int) -> tuple[Any, int]:  # noqa: PLR0911  (one return per kind of item)
    """The item at ``pos`` (at nesting ``depth``) and the offset after it."""
    initial = data[pos]
    major = initial >> 5
    pos += 1
    if major == 7:
        return _simple_or_float(data, pos - 1)
    argument = initial & 0x1F
    if argument >= 24:
        argument, pos = _argument(data, pos, argument)
    if major == 0:
        return argument, pos
    if major == 1:
        return -1 - argument, pos
    if major < 4:
        end = pos + argument
        if end > len(data):
            raise FastPathMiss
        return (data[pos:end] if major == 2 else data[pos:end].decode("utf-8")), end
    if depth >= MAX_DEPTH:
        raise FastPathMiss
    if major == 4:
        items = []
        for _ in range(argument):
            item, pos = _item(data, pos, depth + 1)
            items.append(item)
        return items, pos
    if major == 5:
        return _map(data, pos, argument, depth + 1)
    if argument in _WIDTHS:
        return _typed_array(data, pos, argument)
    if argument != COSE_SIGN1_TAG:
        raise FastPathMiss
    content, pos = _item(data, pos, depth + 1)
    return Tag(number=COSE_SIGN1_TAG, value=content), pos


def _map(data: bytes, pos: int, count: int, depth: int) -> tuple[dict[Any, Any], int]:
    """A map of ``count`` entries at ``depth`` starting at ``pos``, and the offset after it."""
    result: dict[Any, Any] = {}
    previous = b""
    key: Any
    for _ in range(count):
        initial = data[pos]
        if 0x60 <= initial < 0x78:  # text key shorter than 24 bytes: the usual case
            end = pos + initial - 0x5F
            encoded_key = data[pos:end]
            key = _text_keys.get(encoded_key)
            if key is None:
                if end > len(data):
                    raise FastPathMiss
                key = encoded_key[1:].decode("utf-8")
                if len(_text_keys) >= _TEXT_KEY_CACHE_SIZE:
                    _text_keys.clear()
                _text_keys[encoded_key] = key
        elif initial < 0x60:  # integer or byte-string key
            key, end = _item(data, pos, depth)
            encoded_key = data[pos:end]
        else:
            raise FastPathMiss
        if encoded_key <= previous:  # out of order or repeated: the scanner says which
            raise FastPathMiss
        previous = encoded_key
        initial = data[end]
        if initial < 24:
            result[key] = initial
            pos = end + 1
        elif initial == 0xD8 and data[end + 1] in _WIDTHS and depth < MAX_DEPTH:
            result[key], pos = _typed_array(data, end + 2, data[end + 1])
        else:
            result[key], pos = _item(data, end, depth)
    return result, pos


def read(data: bytes) -> Any:
    """The one deterministic item ``data`` holds; :class:`FastPathMiss` if not taken here.

    Truncated input may also surface as ``IndexError`` and bad UTF-8 as
    ``UnicodeDecodeError``: callers treat both like :class:`FastPathMiss`.
    """
    value, end = _item(data, 0, 0)
    if end != len(data):
        raise FastPathMiss
    return value
