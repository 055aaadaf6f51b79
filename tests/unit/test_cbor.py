"""The strict deterministic CBOR codec: encodings, rejections and the fast/strict agreement."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ledger import cbor
from ledger.cbor.explaining_reader import scan
from tests.support.strategies import cbor_typed_arrays, cbor_values

# (value, deterministic encoding): RFC 8949 Appendix A examples plus ordering cases
VECTORS: list[tuple[Any, str]] = [
    (0, "00"),
    (23, "17"),
    (24, "1818"),
    (1000, "1903e8"),
    (1000000, "1a000f4240"),
    (18446744073709551615, "1bffffffffffffffff"),
    (-1, "20"),
    (-1000, "3903e7"),
    (-18446744073709551616, "3bffffffffffffffff"),
    (0.0, "f90000"),
    (-0.0, "f98000"),
    (1.5, "f93e00"),
    (65504.0, "f97bff"),
    (100000.0, "fa47c35000"),
    (1.1, "fb3ff199999999999a"),
    (5.960464477539063e-8, "f90001"),
    (math.inf, "f97c00"),
    (-math.inf, "f9fc00"),
    (False, "f4"),
    (True, "f5"),
    (None, "f6"),
    (b"", "40"),
    (b"\x01\x02\x03\x04", "4401020304"),
    ("", "60"),
    ("\u00fc", "62c3bc"),
    ([1, [2, 3], [4, 5]], "8301820203820405"),
    ({"a": 1, "b": [2, 3]}, "a26161016162820203"),
    # RFC 8949 §4.2.1 bytewise order: 10, 100, -1, "z", "aa", [bytes]... (ints before text)
    ({-1: 0, 100: 0, 10: 0, "z": 0, "aa": 0, b"x": 0}, "a60a001864002000417800617a0062616100"),
    (cbor.Tag(number=18, value=[b"", {}, b"", b""]), "d28440a04040"),
    # RFC 8746 typed arrays: tag over a byte string of whole elements
    (cbor.TypedArray.from_values(tag=64, values=[1, 255]), "d8404201ff"),
    (cbor.TypedArray.from_values(tag=65, values=[258]), "d841420102"),
    (cbor.TypedArray.from_values(tag=69, values=[258]), "d845420201"),
    (cbor.TypedArray.from_values(tag=77, values=[-2]), "d84d42feff"),
    (cbor.TypedArray.from_values(tag=78, values=[1, -1]), "d84e4801000000ffffffff"),
    (cbor.TypedArray.from_values(tag=71, values=[2**64 - 1]), "d84748ffffffffffffffff"),
    (cbor.TypedArray.from_values(tag=79, values=[]), "d84f40"),
    ({"s": cbor.TypedArray.from_values(tag=72, values=[-128])}, "a16173d8484180"),
]


@pytest.mark.parametrize(("value", "encoded"), VECTORS, ids=[v[1] for v in VECTORS])
def test_encode_vectors(value: Any, encoded: str) -> None:
    """Encoding produces exactly the deterministic bytes."""
    assert cbor.encode(value).hex() == encoded


@pytest.mark.parametrize(("value", "encoded"), VECTORS, ids=[v[1] for v in VECTORS])
def test_decode_vectors(value: Any, encoded: str) -> None:
    """Decoding the deterministic bytes gives the value back, by both decoders."""
    assert cbor.decode(bytes.fromhex(encoded)) == value
    assert scan(bytes.fromhex(encoded)) == value


def test_long_text_keys_sort_bytewise() -> None:
    """A 24-byte text key sorts after every shorter one, as its encoding says."""
    long_key = "a" * 24
    encoded = cbor.encode({long_key: 1, "zz": 2})
    assert encoded == bytes.fromhex("a2627a7a02") + b"\x78\x18" + b"a" * 24 + b"\x01"


def test_nan_has_one_encoding() -> None:
    """NaN is written as the half-precision quiet NaN."""
    assert cbor.encode(math.nan).hex() == "f97e00"
    assert math.isnan(cbor.decode(bytes.fromhex("f97e00")))


def test_tuple_encodes_as_array() -> None:
    """Tuples are written as arrays."""
    assert cbor.encode((1, 2)) == cbor.encode([1, 2])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (2**64, "outside the CBOR integer range"),
        (-(2**64) - 1, "outside the CBOR integer range"),
        ({2**64: 1}, "integer map key .* outside"),
        ({1.5: 1}, "map key of type float is not supported"),
        ({(1,): 1}, "map key of type tuple is not supported"),
        ({True: 1}, "map key of type bool is not supported"),
        (object(), "values of type object are not supported"),
        ({1, 2}, "values of type set are not supported"),
        ([[[[[[[[[[[[[[[[[0]]]]]]]]]]]]]]]]], "nests deeper than 16"),
    ],
)
def test_encode_rejects(value: Any, message: str) -> None:
    """Values outside the supported model are refused with the reason."""
    with pytest.raises(cbor.EncodeError, match=message):
        cbor.encode(value)


def test_tag_other_than_18_refused() -> None:
    """Only tag 18 can be built."""
    with pytest.raises(cbor.EncodeError, match="tag 24 is not supported"):
        cbor.Tag(number=24, value=b"")


REJECTIONS: list[tuple[str, type[cbor.DecodeError], str]] = [
    ("1817", cbor.NonDeterministicError, r"argument 23 .* 2 bytes.*offset 0"),
    ("190017", cbor.NonDeterministicError, "argument 23 is written in 3 bytes"),
    ("1a0000ffff", cbor.NonDeterministicError, "argument 65535 is written in 5 bytes"),
    ("1b00000000ffffffff", cbor.NonDeterministicError, "written in 9 bytes"),
    ("3817", cbor.NonDeterministicError, "negative integer argument 23"),
    ("580161", cbor.NonDeterministicError, "byte string argument 1"),
    ("8201980100", cbor.NonDeterministicError, r"array argument 1 .*offset 2"),
    ("fa3f800000", cbor.NonDeterministicError, r"float 1\.0 is written in 5 bytes"),
    ("fa3fc00000", cbor.NonDeterministicError, r"float 1\.5 .* f93e00"),
    ("fb3ff8000000000000", cbor.NonDeterministicError, r"float 1\.5 .* 9 bytes"),
    ("f97e01", cbor.NonDeterministicError, "float nan"),
    ("a2616201616101", cbor.NonDeterministicError, r"'a' is not in bytewise order.*offset 4"),
    ("a2200a0a00", cbor.NonDeterministicError, "key 10 is not in bytewise order"),
    ("a2616101616102", cbor.DuplicateKeyError, r"map key 'a' appears twice.*offset 4"),
    ("a201010102", cbor.DuplicateKeyError, "map key 1 appears twice"),
    ("5f4101ff", cbor.IndefiniteLengthError, "indefinite-length byte string"),
    ("7f6161ff", cbor.IndefiniteLengthError, "indefinite-length text string"),
    ("9f01ff", cbor.IndefiniteLengthError, "indefinite-length array"),
    ("bf616101ff", cbor.IndefiniteLengthError, "indefinite-length map"),
    ("820102ff", cbor.TrailingBytesError, r"1 bytes follow.*offset 3"),
    ("0000", cbor.TrailingBytesError, "offset 1"),
    ("", cbor.TruncatedError, "where an item should start"),
    ("8201", cbor.TruncatedError, r"where an item should start.*offset 2"),
    ("4301", cbor.TruncatedError, "needs 3 more bytes, 1 left"),
    ("19", cbor.TruncatedError, "inside a unsigned integer head"),
    ("c074323031332d30332d32315432303a30343a30305a", cbor.UnsupportedItemError, "tag 0"),
    ("c249010000000000000000", cbor.UnsupportedItemError, "tag 2 is not supported"),
    ("d9d9f700", cbor.UnsupportedItemError, "tag 55799"),
    ("d81c01", cbor.UnsupportedItemError, "tag 28"),
    ("f7", cbor.UnsupportedItemError, "simple values other than"),
    ("f0", cbor.UnsupportedItemError, "simple values other than"),
    ("f820", cbor.UnsupportedItemError, "simple values other than"),
    ("a1f400", cbor.UnsupportedItemError, "map key of type simple value or float"),
    ("a1810000", cbor.UnsupportedItemError, "map key of type array"),
    ("1c", cbor.InvalidItemError, "reserved additional information 28"),
    ("fc", cbor.InvalidItemError, "reserved additional information 28 in a simple"),
    ("ff", cbor.InvalidItemError, "break code outside"),
    ("1f", cbor.InvalidItemError, "unsigned integer with indefinite length"),
    ("62c328", cbor.InvalidItemError, "not valid UTF-8"),
    ("81" * 17 + "00", cbor.NestingTooDeepError, r"deeper than 16 levels.*offset 16"),
    ("d8448100", cbor.UnsupportedItemError, "tag 68 is not supported"),
    ("d84c4100", cbor.UnsupportedItemError, "tag 76 is not supported"),
    ("d8504100", cbor.UnsupportedItemError, "tag 80 is not supported"),
    ("d84d820102", cbor.TypedArrayError, r"sint16 LE typed array \(tag 77\) must enclose a byte"),
    ("d84d01", cbor.TypedArrayError, "not a unsigned integer"),
    ("d84d6161", cbor.TypedArrayError, "not a text string"),
    (
        "d84d43010203",
        cbor.TypedArrayError,
        r"3 bytes, not a multiple of its 2-byte.*offset 2",
    ),
    ("d84e46010203040506", cbor.TypedArrayError, "holds 6 bytes, not a multiple of its 4-byte"),
    ("d84d5f420102ff", cbor.IndefiniteLengthError, "indefinite-length byte string"),
    ("d84d58020102", cbor.NonDeterministicError, "byte string argument 2"),
    ("d84d440102", cbor.TruncatedError, "needs 4 more bytes, 2 left"),
    ("d84d", cbor.TruncatedError, "where an item should start"),
    ("d9004d420102", cbor.NonDeterministicError, "tag argument 77 is written in 3 bytes"),
    ("a16173d84d4201", cbor.TruncatedError, "needs 2 more bytes, 1 left"),
    ("81" * 16 + "d8404100", cbor.NestingTooDeepError, r"deeper than 16 levels.*offset 16"),
]


@pytest.mark.parametrize(
    ("encoded", "error", "message"), REJECTIONS, ids=[r[0][:24] or "empty" for r in REJECTIONS]
)
def test_decode_rejects(encoded: str, error: type[cbor.DecodeError], message: str) -> None:
    """Every non-deterministic or unsupported encoding is refused with its kind and offset."""
    with pytest.raises(error, match=message):
        cbor.decode(bytes.fromhex(encoded))


def test_decode_accepts_bytearray_like_input() -> None:
    """A memoryview of valid bytes decodes like the bytes themselves."""
    assert cbor.decode(memoryview(bytes.fromhex("820102"))) == [1, 2]


def test_errors_carry_offsets() -> None:
    """The offset is available as an attribute, not only in the message."""
    with pytest.raises(cbor.DuplicateKeyError) as caught:
        cbor.decode(bytes.fromhex("a2616101616102"))
    assert caught.value.offset == 4


@given(cbor_values())
@example({-1: 0, 24: 0, "a" * 30: 0, "b": 0})
def test_round_trip(value: Any) -> None:
    """Whatever encodes decodes to an equal value, identically by both decoders."""
    encoded = cbor.encode(value)
    assert cbor.decode(encoded) == value
    assert scan(encoded) == value
    assert cbor.encode(cbor.decode(encoded)) == encoded


def _outcome(decoder: Any, data: bytes) -> tuple[str, Any]:
    try:
        return "ok", decoder(data)
    except cbor.DecodeError as exc:
        return type(exc).__name__, None


@given(st.binary(max_size=40))
def test_fast_path_agrees_with_scanner(data: bytes) -> None:
    """On arbitrary bytes the public decoder and the strict scanner agree."""
    fast, strict = _outcome(cbor.decode, data), _outcome(scan, data)
    assert fast[0] == strict[0]
    if fast[0] == "ok" and not (isinstance(fast[1], float) and math.isnan(fast[1])):
        assert fast == strict


@given(cbor_values(max_leaves=10), st.data())
def test_mutations_never_accepted_twice(value: Any, data: st.DataObject) -> None:
    """A single changed byte either fails or decodes to a value whose encoding is the input."""
    encoded = bytearray(cbor.encode(value))
    index = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    encoded[index] ^= data.draw(st.integers(min_value=1, max_value=255))
    try:
        decoded = cbor.decode(bytes(encoded))
    except cbor.DecodeError:
        return
    assert cbor.encode(decoded) == bytes(encoded)


# --- typed arrays (RFC 8746) ---------------------------------------------------------------


@given(cbor_typed_arrays(max_size=200))
def test_typed_array_values_round_trip(array: cbor.TypedArray) -> None:
    """Values, tag and length survive from_values, encoding and both decoders."""
    again = cbor.TypedArray.from_values(tag=array.tag, values=array.values())
    assert again == array
    assert len(array) == len(array.values())
    assert cbor.decode(cbor.encode(array)) == array
    assert scan(cbor.encode(array)) == array
    assert cbor.encode(array) == array.encoded


def test_typed_array_byte_order_follows_the_tag() -> None:
    """Big- and little-endian tags hold the same numbers in opposite byte orders."""
    big = cbor.TypedArray.from_values(tag=66, values=[0x01020304])
    little = cbor.TypedArray.from_values(tag=70, values=[0x01020304])
    assert big.data == bytes.fromhex("01020304")
    assert little.data == bytes.fromhex("04030201")
    assert list(big.values()) == list(little.values()) == [0x01020304]
    assert big != little


def test_typed_array_of_raw_bytes() -> None:
    """TypedArray.of wraps element bytes as they are, in the tag's byte order."""
    array = cbor.TypedArray.of(tag=73, data=bytes.fromhex("fffe"))
    assert list(array.values()) == [-2]
    assert array.element.name == "sint16 BE"
    assert array.encoded == bytes.fromhex("d849" + "42fffe")


def test_long_typed_array_heads() -> None:
    """Byte strings of 24+ and 256+ bytes get their one- and two-byte length heads."""
    for count, head in ((12, "5818"), (128, "590100")):
        array = cbor.TypedArray.from_values(tag=77, values=range(count))
        assert array.encoded[2:].hex().startswith(head)
        assert cbor.decode(array.encoded) == array
        assert scan(array.encoded) == array


def test_supported_typed_array_tags() -> None:
    """The integer tags of RFC 8746 are supported, except 68 (clamped) and 76 (reserved)."""
    assert sorted(cbor.TYPED_ARRAY_TAGS) == [64, 65, 66, 67, 69, 70, 71, 72, 73, 74, 75, 77, 78, 79]
    assert cbor.TYPED_ARRAY_TAGS[78].name == "sint32 LE"
    assert (cbor.TYPED_ARRAY_TAGS[67].lo, cbor.TYPED_ARRAY_TAGS[67].hi) == (0, 2**64 - 1)
    assert (cbor.TYPED_ARRAY_TAGS[72].lo, cbor.TYPED_ARRAY_TAGS[72].hi) == (-128, 127)


@pytest.mark.parametrize(
    ("tag", "values", "message"),
    [
        (69, [65_536], "65536 does not fit a uint16 LE typed array"),
        (69, [-1], r"-1 does not fit a uint16 LE typed array \(0\.\.65535\)"),
        (72, [0, 128], "128 does not fit a sint8 typed array"),
        (71, [2**64], "does not fit a uint64 LE"),
        (77, [1.5], "holds integers only"),
        (68, [1], "tag 68 is not a supported typed array"),
        (18, [1], "tag 18 is not a supported typed array"),
    ],
)
def test_typed_array_from_values_rejects(tag: int, values: list[Any], message: str) -> None:
    """Values that do not fit the element type, and unsupported tags, are refused."""
    with pytest.raises(cbor.EncodeError, match=message):
        cbor.TypedArray.from_values(tag=tag, values=values)


def test_typed_array_of_rejects_partial_elements() -> None:
    """Element bytes must be a whole number of elements."""
    with pytest.raises(cbor.EncodeError, match="3 bytes is not a whole number of 2-byte"):
        cbor.TypedArray.of(tag=69, data=b"\x01\x02\x03")
    with pytest.raises(cbor.EncodeError, match="tag 80 is not a supported typed array"):
        cbor.TypedArray.of(tag=80, data=b"")


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        ("d8454201", "must enclose one deterministic definite byte string"),
        ("d845580201", "must enclose one deterministic definite byte string"),
        ("d8444100", "d844 does not start a supported typed-array tag"),
        ("c0", "does not start a supported typed-array tag"),
        ("d8454100", "1 bytes is not a whole number"),
    ],
)
def test_typed_array_checks_its_encoding(encoded: str, message: str) -> None:
    """A TypedArray built from raw encoded bytes checks them."""
    with pytest.raises(cbor.EncodeError, match=message):
        cbor.TypedArray(encoded=bytes.fromhex(encoded))


@given(cbor_typed_arrays(max_size=4), st.data())
def test_typed_array_mutations_agree(array: cbor.TypedArray, data: st.DataObject) -> None:
    """Inside a map, a changed byte of a typed array gives the same answer from both decoders."""
    encoded = bytearray(cbor.encode({"c": array, "d": 1}))
    index = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    encoded[index] ^= data.draw(st.integers(min_value=1, max_value=255))
    fast, strict = _outcome(cbor.decode, bytes(encoded)), _outcome(scan, bytes(encoded))
    assert fast[0] == strict[0]
    if fast[0] == "ok":
        assert cbor.encode(fast[1]) == bytes(encoded)
