"""The deterministic CBOR encoder: ``encode`` writes the one RFC 8949 §4.2.1 encoding of a value.

Re-exported by :mod:`ledger.cbor`; import it from there.
"""

from __future__ import annotations

from typing import Any, Final

from .values import MAX_DEPTH, EncodeError, Tag, TypedArray, encode_float

__all__ = ["encode"]

_INT_MIN: Final = -(2**64)
_INT_MAX: Final = 2**64 - 1
_KEY_PLAN_CACHE_SIZE: Final = 1024
_BYTE: Final = tuple(bytes((value,)) for value in range(256))
_SIMPLE: Final = {False: b"\xf4", True: b"\xf5"}


def _head(major: int, argument: int) -> bytes:
    """The shortest head of major type ``major`` (already shifted: 0x00, 0x20 ... 0xc0)."""
    if argument < 24:
        return _BYTE[major | argument]
    if argument < 0x100:
        return _BYTE[major | 24] + _BYTE[argument]
    if argument < 0x1_0000:
        return _BYTE[major | 25] + argument.to_bytes(2, "big")
    if argument < 0x1_0000_0000:
        return _BYTE[major | 26] + argument.to_bytes(4, "big")
    return _BYTE[major | 27] + argument.to_bytes(8, "big")


def _int(value: int) -> bytes:
    if value >= 0:
        if value > _INT_MAX:
            raise EncodeError(f"integer {value} is outside the CBOR integer range")
        return _head(0x00, value)
    if value < _INT_MIN:
        raise EncodeError(f"integer {value} is outside the CBOR integer range")
    return _head(0x20, -1 - value)


def _text(value: str) -> bytes:
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"text {value!r} is not encodable as UTF-8 ({exc.reason})") from exc
    return _head(0x60, len(data)) + data


def _key_bytes(key: Any) -> bytes:
    kind = type(key)
    if kind is int:
        if not _INT_MIN <= key <= _INT_MAX:
            raise EncodeError(f"integer map key {key} is outside the CBOR integer range")
        return _int(key)
    if kind is str:
        return _text(key)
    if kind is bytes:
        data: bytes = key
        return _head(0x40, len(data)) + data
    raise EncodeError(
        f"map key of type {kind.__name__} is not supported (integer, text or byte string only)"
    )


# keys tuple -> (keys in deterministic order, their encodings). Only all-text tuples are
# cached: a text key equals nothing but text, whereas 1 == True hashes alike.
_key_plans: dict[tuple[Any, ...], tuple[tuple[Any, ...], tuple[bytes, ...]]] = {}


def _key_plan(keys: tuple[Any, ...]) -> tuple[tuple[Any, ...], tuple[bytes, ...]]:
    """The keys sorted by their encodings, and those encodings."""
    try:
        return _key_plans[keys]
    except KeyError:
        pass
    encoded = sorted((_key_bytes(key), key) for key in keys)
    plan = (tuple(key for _, key in encoded), tuple(data for data, _ in encoded))
    if all(type(key) is str for key in keys):
        if len(_key_plans) >= _KEY_PLAN_CACHE_SIZE:
            _key_plans.clear()
        _key_plans[keys] = plan
    return plan


def _write_map(mapping: dict[Any, Any], out: list[bytes], depth: int) -> None:
    """Append a map whose entries sit at ``depth``."""
    ordered, encoded_keys = _key_plan(tuple(mapping))
    append = out.append
    append(_head(0xA0, len(ordered)))
    for key, encoded_key in zip(ordered, encoded_keys, strict=True):
        append(encoded_key)
        value = mapping[key]
        kind = type(value)
        if kind is TypedArray and depth < MAX_DEPTH:
            append(value.encoded)
        elif kind is int and 0 <= value < 24:
            append(_BYTE[value])
        else:
            _write(value, out, depth)


def _write(obj: Any, out: list[bytes], depth: int) -> None:  # noqa: PLR0912  (one flat dispatch on the value's type reads best)
    """Append the encoding of ``obj``, an item at nesting ``depth``."""
    kind = type(obj)
    if kind is int:
        out.append(_int(obj))
    elif kind is str:
        out.append(_text(obj))
    elif kind is bytes:
        out.append(_head(0x40, len(obj)))
        out.append(obj)
    elif kind is bool:
        out.append(_SIMPLE[obj])
    elif obj is None:
        out.append(b"\xf6")
    elif kind is float:
        out.append(encode_float(obj))
    elif kind not in {dict, list, tuple, TypedArray, Tag}:
        raise EncodeError(f"values of type {kind.__name__} are not supported")
    elif depth >= MAX_DEPTH:
        raise EncodeError(f"value nests deeper than {MAX_DEPTH} levels")
    elif kind is dict:
        _write_map(obj, out, depth + 1)
    elif kind is TypedArray:
        out.append(obj.encoded)
    elif kind is Tag:
        out.append(_head(0xC0, obj.number))
        _write(obj.value, out, depth + 1)
    else:
        out.append(_head(0x80, len(obj)))
        for item in obj:
            _write(item, out, depth + 1)


def encode(obj: Any) -> bytes:
    """Return the deterministic CBOR encoding of ``obj`` (raises :class:`EncodeError`)."""
    out: list[bytes] = []
    _write(obj, out, 0)
    return b"".join(out)
