"""Signed messages: known answer, round trips, every rejection, registry separation."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given, settings

from ledger import cbor, message
from ledger.errors import VerificationError
from ledger.keys import public_key_from_seed
from tests.support.strategies import telemetry_payloads

SEED = bytes(range(32))
PUBLIC_KEY = public_key_from_seed(SEED)
OTHER_SEED = bytes(range(1, 33))
PAYLOAD: dict[str, Any] = {
    "v": 1,
    "dev": "bus-0001",
    "seq": 0,
    "prev": bytes(32),
    "t": 1718000000000,
}
# Ed25519 is deterministic: this seed and payload always give these bytes.
KNOWN_MESSAGE = bytes.fromhex(
    "d28443a10127a104486275732d303030315848a561741b0000019000c79c0061760163646576686275732d"
    "30303031637365710064707265765820000000000000000000000000000000000000000000000000000000"
    "000000000058401d513bfcae283a09262b9e12d3df7daf0bd1c4bf23d213e3e04eda16af7b401963487f3c"
    "dddb61aa91b97a2ad9e91a1baa2d48006fb7b3b12e8df9d89711070a"
)
KNOWN_HASH = "9cdffee44de25b2d299376d04ebb14e818a1d032539231ab022faecf82041053"


def cose(
    *,
    protected: bytes | None = None,
    unprotected: Any = None,
    payload: Any = None,
    sign_with: bytes | None = SEED,
    tag: int = 18,
) -> bytes:
    """A hand-built COSE_Sign1 (deterministic CBOR) with any field replaced."""
    protected = bytes.fromhex("a10127") if protected is None else protected
    unprotected = {4: b"bus-0001"} if unprotected is None else unprotected
    payload_bytes = cbor.encode(PAYLOAD) if payload is None else payload
    signature = bytes(64)
    if sign_with is not None and isinstance(payload_bytes, bytes):
        structure = cbor.encode(["Signature1", protected, b"", payload_bytes])
        signature = sign_raw(structure, sign_with)
    body = cbor.encode([protected, unprotected, payload_bytes, signature])
    head = cbor.encode(tag)  # the tag number, re-headed as major type 6 below
    return bytes((head[0] | 0xC0,)) + head[1:] + body


def sign_raw(data: bytes, seed: bytes) -> bytes:
    """Raw Ed25519 signature with PyNaCl, independent of ledger.message."""
    import nacl.signing

    return bytes(nacl.signing.SigningKey(seed).sign(data).signature)


# --- happy paths -----------------------------------------------------------------------------


def test_known_answer() -> None:
    """A fixed seed and payload give fixed message bytes and hash."""
    data = message.sign_message(PAYLOAD, seed=SEED)
    assert data == KNOWN_MESSAGE
    assert message.message_hash(data).hex() == KNOWN_HASH
    assert message.verify_message(KNOWN_MESSAGE, public_key=PUBLIC_KEY) == PAYLOAD


# A telemetry payload with RFC 8746 typed-array columns (sint16 LE current, uint16 LE
# voltage), fixed when the columns became typed arrays. Checked by hand: column "i" is
# d84d 44 18fa 2efa (-1512, -1490), column "u" is d845 44 3b18 3918 (6203, 6201).
TYPED_PAYLOAD: dict[str, Any] = {
    "v": 1,
    "dev": "bus-0001",
    "seq": 1,
    "prev": bytes(range(32)),
    "t": 1718000000000,
    "kind": "bus",
    "dt": 1000,
    "s": {
        "i": cbor.TypedArray.from_values(tag=77, values=[-1512, -1490]),
        "u": cbor.TypedArray.from_values(tag=69, values=[6203, 6201]),
    },
}
KNOWN_TYPED_MESSAGE = bytes.fromhex(
    "d28443a10127a104486275732d30303031586ca86173a26169d84d4418fa2efa6175d845443b18391861741b"
    "0000019000c79c006176016264741903e863646576686275732d303030316373657101646b696e6463627573"
    "64707265765820000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f5840fb289e"
    "4e4cf22da3d483455c3422c0e0aa150331591eb0f9924632c9d4ae128e00ebef6a94e5d423035eacf02c5413"
    "26dc3889e6c6749a723d8f09d22acdac06"
)
KNOWN_TYPED_HASH = "9a5a3872ae117d440b8f56d475685302927da71cde57bb4bb9d2fd219351d357"


def test_known_answer_with_typed_arrays() -> None:
    """A payload with typed-array columns gives fixed message bytes and verifies back."""
    data = message.sign_message(TYPED_PAYLOAD, seed=SEED)
    assert data == KNOWN_TYPED_MESSAGE
    assert message.message_hash(data).hex() == KNOWN_TYPED_HASH
    assert message.verify_message(KNOWN_TYPED_MESSAGE, public_key=PUBLIC_KEY) == TYPED_PAYLOAD
    assert cose(payload=cbor.encode(TYPED_PAYLOAD)) == KNOWN_TYPED_MESSAGE


def test_hand_built_message_is_identical() -> None:
    """The encoder agrees byte for byte with a message assembled from the RFC 9052 pieces."""
    assert cose() == KNOWN_MESSAGE


def test_decode_message_exposes_parts() -> None:
    """decode_message returns kid, payload, raw parts and no content type for telemetry."""
    decoded = message.decode_message(KNOWN_MESSAGE)
    assert decoded.kid == "bus-0001"
    assert decoded.payload == PAYLOAD
    assert decoded.protected == bytes.fromhex("a10127")
    assert decoded.payload_bytes == cbor.encode(PAYLOAD)
    assert decoded.content_type is None
    decoded.verify_signature(PUBLIC_KEY)


def test_message_hash_is_sha256_of_bytes() -> None:
    """message_hash is SHA-256 of the complete COSE bytes."""
    assert message.message_hash(b"abc") == hashlib.sha256(b"abc").digest()


@settings(max_examples=50)
@given(telemetry_payloads())
def test_round_trip(payload: dict[str, Any]) -> None:
    """Every valid payload signs and verifies back to itself."""
    data = message.sign_message(payload, seed=SEED)
    assert message.verify_message(data, public_key=PUBLIC_KEY) == payload


def test_extra_keys_in_any_order() -> None:
    """Samples and other keys are carried, whatever order the mapping had."""
    payload = {"s": {"u": [6000, 6001]}, **PAYLOAD, "kind": "bus"}
    data = message.sign_message(payload, seed=SEED)
    assert message.verify_message(data, public_key=PUBLIC_KEY) == payload


# --- signing refuses bad payloads ------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"v": None}, message.MissingMessageFieldError, "no 'v' field"),
        ({"seq": None}, message.MissingMessageFieldError, "no 'seq' field"),
        ({"v": 2}, message.InvalidFieldError, "'v' is 2, the only supported format version is 1"),
        ({"v": True}, message.InvalidFieldError, "'v' is True"),
        ({"dev": ""}, message.InvalidFieldError, "'dev' must be a non-empty text string"),
        ({"dev": b"bus"}, message.InvalidFieldError, "'dev' must be a non-empty text string"),
        ({"seq": -1}, message.InvalidFieldError, "'seq' must be an unsigned integer"),
        ({"t": 1.5}, message.InvalidFieldError, "'t' must be an unsigned integer"),
        ({"prev": bytes(31)}, message.InvalidFieldError, "'prev' must be 32 bytes"),
        ({"prev": b"\x01" * 32}, message.InvalidFieldError, "32 zero bytes when 'seq' is 0"),
        ({"seq": 5}, message.InvalidFieldError, "'prev' is 32 zero bytes but 'seq' is 5"),
    ],
)
def test_sign_rejects_invalid_payload(
    change: dict[str, Any], error: type[message.MessageError], match: str
) -> None:
    """Signing checks the required fields first."""
    payload = {**PAYLOAD, **change}
    payload = {key: value for key, value in payload.items() if value is not None}
    with pytest.raises(error, match=match):
        message.sign_message(payload, seed=SEED)


def test_sign_rejects_oversize_payload() -> None:
    """A payload over 64 KiB is refused at signing."""
    with pytest.raises(message.PayloadTooLargeError, match="the limit is 65536"):
        message.sign_message({**PAYLOAD, "blob": bytes(65536)}, seed=SEED)


def test_sign_rejects_bad_seed() -> None:
    """A seed that is not 32 bytes is a programming error."""
    with pytest.raises(ValueError, match="seed must be 32 bytes"):
        message.sign_message(PAYLOAD, seed=bytes(31))


# --- verification rejects malformed messages -------------------------------------------------


def _non_minimal_kid() -> bytes:
    """KNOWN_MESSAGE with the kid length written in two bytes."""
    return KNOWN_MESSAGE.replace(b"\xa1\x04\x48", b"\xa1\x04\x58\x08", 1)


def _payload_with(raw_payload: bytes) -> bytes:
    return cose(payload=raw_payload)


def _encoded_payload_hex() -> str:
    return cbor.encode(PAYLOAD).hex()


MALFORMED: list[tuple[str, bytes, type[message.MessageError], str]] = [
    ("empty", b"", message.MalformedMessageError, "message is empty"),
    ("untagged", KNOWN_MESSAGE[1:], message.WrongTagError, "not CBOR tag 18"),
    ("tag 98", cose(tag=98), message.WrongTagError, "tag other than 18"),
    ("alg ES256", cose(protected=bytes.fromhex("a10126")), message.WrongAlgorithmError, "-7"),
    ("no alg", cose(protected=b""), message.WrongAlgorithmError, "no algorithm"),
    (
        "alg as text",
        cose(protected=cbor.encode({1: "EdDSA"})),
        message.WrongAlgorithmError,
        "'EdDSA'",
    ),
    (
        "extra protected label",
        cose(protected=cbor.encode({1: -8, 7: b""})),
        message.MalformedMessageError,
        "unsupported labels 7",
    ),
    (
        "protected not a map",
        cose(protected=cbor.encode([1, -8])),
        message.MalformedMessageError,
        "protected header must be a map",
    ),
    (
        "protected unsorted",
        cose(protected=b"\xa2\x03" + cbor.encode("text/cbor") + b"\x01\x27"),
        message.NonDeterministicEncodingError,
        "protected header: map key 1",
    ),
    ("no kid", cose(unprotected={}), message.MissingKidError, "no kid"),
    ("kid text", cose(unprotected={4: "bus-0001"}), message.MissingKidError, "byte string"),
    ("kid empty", cose(unprotected={4: b""}), message.MissingKidError, "non-empty"),
    (
        "kid not utf-8",
        cose(unprotected={4: b"\xff"}),
        message.MalformedMessageError,
        "is not UTF-8",
    ),
    (
        "alg unprotected",
        cose(unprotected={1: -8, 4: b"bus-0001"}),
        message.WrongAlgorithmError,
        "must be in the protected header",
    ),
    (
        "extra unprotected label",
        cose(unprotected={4: b"bus-0001", 33: b""}),
        message.MalformedMessageError,
        "unprotected header has unsupported labels 33",
    ),
    (
        "unprotected not a map",
        cose(unprotected=[4]),
        message.MalformedMessageError,
        "unprotected header must be a map",
    ),
    (
        "kid mismatch",
        cose(unprotected={4: b"bus-0002"}),
        message.KidMismatchError,
        "kid 'bus-0002' is not the payload's device id 'bus-0001'",
    ),
    (
        "detached payload",
        b"\xd2" + cbor.encode([bytes.fromhex("a10127"), {4: b"bus-0001"}, None, bytes(64)]),
        message.MalformedMessageError,
        "payload must be an attached byte string",
    ),
    (
        "payload not a map",
        cose(payload=cbor.encode([1])),
        message.MalformedMessageError,
        "payload must be a map, got list",
    ),
    (
        "payload integer key",
        cose(payload=cbor.encode({**PAYLOAD, 1: 1})),
        message.InvalidFieldError,
        "payload keys must all be text strings",
    ),
    (
        "payload missing dev",
        cose(payload=cbor.encode({k: v for k, v in PAYLOAD.items() if k != "dev"})),
        message.MissingMessageFieldError,
        "no 'dev' field",
    ),
    (
        "non-minimal kid length",
        _non_minimal_kid(),
        message.NonDeterministicEncodingError,
        r"message: byte string argument 8 is written in 2 bytes.*offset 8",
    ),
    (
        "non-minimal int in payload",
        _payload_with(bytes.fromhex("a161761801")),
        message.NonDeterministicEncodingError,
        "payload: unsigned integer argument 1 is written in 2 bytes",
    ),
    (
        "unsorted payload keys",
        _payload_with(bytes.fromhex("a2617601617400")),
        message.NonDeterministicEncodingError,
        "payload: map key 't' is not in bytewise order",
    ),
    (
        "duplicate payload key",
        _payload_with(bytes.fromhex("a2617601617602")),
        message.MessageDuplicateKeyError,
        "payload: map key 'v' appears twice",
    ),
    (
        "indefinite payload map",
        _payload_with(bytes.fromhex("bf617601ff")),
        message.MessageIndefiniteLengthError,
        "payload: indefinite-length map",
    ),
    (
        "indefinite payload array",
        _payload_with(bytes.fromhex("a161739f01ff")),
        message.MessageIndefiniteLengthError,
        "indefinite-length array",
    ),
    (
        "indefinite payload bytes",
        _payload_with(bytes.fromhex("a161735f4101ff")),
        message.MessageIndefiniteLengthError,
        "indefinite-length byte string",
    ),
    (
        "trailing byte in payload",
        _payload_with(bytes.fromhex(_encoded_payload_hex() + "00")),
        message.MessageTrailingBytesError,
        "payload: 1 bytes follow",
    ),
    (
        "trailing byte after message",
        KNOWN_MESSAGE + b"\x00",
        message.MessageTrailingBytesError,
        "1 bytes",
    ),
    (
        "array of three",
        b"\xd2\x83" + KNOWN_MESSAGE[2:-66],
        message.MalformedMessageError,
        "array of 4 items",
    ),
    (
        "short signature",
        KNOWN_MESSAGE[:-66] + b"\x58\x3f" + KNOWN_MESSAGE[-63:],
        message.MalformedMessageError,
        "64-byte byte string",
    ),
    (
        "truncated",
        KNOWN_MESSAGE[:-1],
        message.MalformedMessageError,
        "input ends inside a byte string",
    ),
    (
        "unsupported tag in payload",
        _payload_with(bytes.fromhex("a16174c11a00000001")),
        message.MalformedMessageError,
        "tag 1 is not supported",
    ),
    (
        "oversize message",
        b"\xd2" + bytes(message.MAX_MESSAGE_SIZE),
        message.PayloadTooLargeError,
        "message is 66561 bytes, the limit is 66560",
    ),
    (
        "oversize payload",
        cose(payload=bytes(65537), sign_with=None),
        message.PayloadTooLargeError,
        "payload is 65537 bytes, the limit is 65536",
    ),
]


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_verify_rejects_malformed(
    data: bytes, error: type[message.MessageError], match: str
) -> None:
    """Each malformed message fails with its own error type and a precise message."""
    with pytest.raises(error, match=match):
        message.verify_message(data, public_key=PUBLIC_KEY)


def test_all_errors_are_verification_errors() -> None:
    """Every message error is a MessageError and a VerificationError."""
    for name in message.__all__:
        value = getattr(message, name)
        if isinstance(value, type) and name.endswith("Error"):
            assert issubclass(value, message.MessageError)
            assert issubclass(value, VerificationError)


# --- signatures --------------------------------------------------------------------------------


@pytest.mark.parametrize("bit", [0, 7, 100, 511])
def test_flipped_signature_bit_fails(bit: int) -> None:
    """Any flipped signature bit is a bad signature."""
    data = bytearray(KNOWN_MESSAGE)
    data[len(data) - 64 + bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(message.BadSignatureError, match="from 'bus-0001' does not verify"):
        message.verify_message(bytes(data), public_key=PUBLIC_KEY)


def test_flipped_payload_bit_fails() -> None:
    """Changing a signed payload value breaks the signature."""
    data = KNOWN_MESSAGE.replace(b"\x61\x74\x1b\x00\x00\x01\x90", b"\x61\x74\x1b\x00\x00\x01\x91")
    assert data != KNOWN_MESSAGE
    with pytest.raises(message.BadSignatureError, match="does not verify"):
        message.verify_message(data, public_key=PUBLIC_KEY)


def test_wrong_key_fails() -> None:
    """Another device's key does not verify the message."""
    with pytest.raises(message.BadSignatureError, match="does not verify"):
        message.verify_message(KNOWN_MESSAGE, public_key=public_key_from_seed(OTHER_SEED))


def test_public_key_size_checked() -> None:
    """A public key that is not 32 bytes is a programming error."""
    with pytest.raises(ValueError, match="must be 32 bytes, got 31"):
        message.verify_message(KNOWN_MESSAGE, public_key=bytes(31))


# --- registry entries ------------------------------------------------------------------------

ENTRY = {"op": "enroll", "device": "bus-0001", "key": PUBLIC_KEY, "at": 1718000000000}


def test_registry_round_trip() -> None:
    """A registry entry signs and verifies, with its content type."""
    data = message.sign_registry_entry(ENTRY, seed=OTHER_SEED, kid="operator")
    assert message.verify_registry_entry(data, public_key=public_key_from_seed(OTHER_SEED)) == ENTRY
    decoded = message.decode_message(data)
    assert decoded.content_type == message.REGISTRY_CONTENT_TYPE
    assert decoded.kid == "operator"


def test_registry_entry_is_not_telemetry() -> None:
    """verify_message refuses a registry entry, even one shaped like telemetry."""
    data = message.sign_registry_entry(PAYLOAD, seed=SEED, kid="bus-0001")
    with pytest.raises(message.WrongContentTypeError, match="is a registry entry, not telemetry"):
        message.verify_message(data, public_key=PUBLIC_KEY)


def test_telemetry_is_not_a_registry_entry() -> None:
    """verify_registry_entry refuses telemetry."""
    with pytest.raises(message.WrongContentTypeError, match="is telemetry, not a registry entry"):
        message.verify_registry_entry(KNOWN_MESSAGE, public_key=PUBLIC_KEY)


def test_unknown_content_type_refused() -> None:
    """A content type other than the registry one is refused."""
    data = cose(protected=cbor.encode({1: -8, 3: "application/cbor"}))
    with pytest.raises(message.WrongContentTypeError, match="'application/cbor' is not"):
        message.decode_message(data)


def test_registry_needs_kid() -> None:
    """A registry entry cannot be signed without a kid."""
    with pytest.raises(message.MissingKidError, match="non-empty kid"):
        message.sign_registry_entry(ENTRY, seed=SEED, kid="")
