"""C2SP tlog-cosignature cosignature/v1: what is signed, witness keys, verification errors."""

from __future__ import annotations

import base64
import hashlib

import pytest

from ledger import cosignature
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.keys import public_key_from_seed
from ledger.note import InvalidKeyNameError, MalformedNoteError, verifier_key, verify_note

SEED = hashlib.sha256(b"cosignature tests: witness").digest()
OTHER = hashlib.sha256(b"cosignature tests: other").digest()
LOG_SEED = hashlib.sha256(b"cosignature tests: log").digest()
NAME = "witness.example/w1"
PUBLIC = public_key_from_seed(SEED)
VKEY = cosignature.witness_verifier_key(NAME, PUBLIC)
BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
NOTE = sign_checkpoint(
    Checkpoint(
        origin="example.com/behind-the-sofa",
        size=20852163,
        root=base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="),
    ),
    name="example.com/behind-the-sofa",
    seed=LOG_SEED,
)


def test_signed_message_is_the_spec_example() -> None:
    """The signed bytes are the header line, the time line and the body (spec example)."""
    assert cosignature.cosigned_message(BODY, timestamp=1679315147) == (
        b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
        b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )


def test_key_id_uses_type_0x04() -> None:
    """The key id hashes name, newline, 0x04 and the key; the vkey carries 0x04 ‖ key."""
    expected = hashlib.sha256(NAME.encode() + b"\n\x04" + PUBLIC).digest()[:4]
    assert cosignature.witness_key_id(NAME, PUBLIC) == expected
    name, hex_id, encoded = VKEY.split("+", 2)
    assert (name, hex_id) == (NAME, expected.hex())
    assert base64.b64decode(encoded) == b"\x04" + PUBLIC
    assert str(cosignature.parse_witness_key(VKEY)) == VKEY


def test_line_layout_is_key_id_timestamp_signature() -> None:
    """A line is '— name base64(key id ‖ big-endian u64 time ‖ 64-byte signature)'."""
    line = cosignature.cosignature_line(BODY, name=NAME, seed=SEED, timestamp=1679315147)
    assert line.startswith(f"\u2014 {NAME} ")
    assert line.endswith("\n")
    raw = base64.b64decode(line.split(" ")[2])
    assert len(raw) == 76
    assert raw[:4] == cosignature.witness_key_id(NAME, PUBLIC)
    assert int.from_bytes(raw[4:12], "big") == 1679315147


def test_round_trip_returns_the_timestamp() -> None:
    """A cosigned checkpoint verifies for the witness and still for the log."""
    cosigned = cosignature.add_cosignature(NOTE, name=NAME, seed=SEED, timestamp=1700000000)
    assert cosignature.verify_cosignature(cosigned, witness_key=VKEY) == 1700000000
    log_key = verifier_key("example.com/behind-the-sofa", public_key_from_seed(LOG_SEED))
    assert verify_note(cosigned, verifier_key=log_key) == BODY


def test_earliest_of_two_timestamps() -> None:
    """Two cosignatures by one witness give the earliest time; both must verify."""
    cosigned = cosignature.add_cosignature(NOTE, name=NAME, seed=SEED, timestamp=200)
    cosigned = cosignature.add_cosignature(cosigned, name=NAME, seed=SEED, timestamp=100)
    assert cosignature.verify_cosignature(cosigned, witness_key=VKEY) == 100


def test_tampered_body_refused() -> None:
    """A cosignature moved onto another checkpoint does not verify."""
    line = cosignature.cosignature_line(BODY, name=NAME, seed=SEED, timestamp=5)
    other = NOTE.replace("20852163", "20852164", 1) + line
    with pytest.raises(
        cosignature.CosignatureSignatureError,
        match=r"cosignature by witness\.example/w1\+[0-9a-f]{8} at time 5 does not verify",
    ):
        cosignature.verify_cosignature(other, witness_key=VKEY)


def test_changed_timestamp_refused() -> None:
    """The timestamp is signed: changing it breaks the signature."""
    line = cosignature.cosignature_line(BODY, name=NAME, seed=SEED, timestamp=5)
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    raw[11] ^= 1
    forged = f"\u2014 {NAME} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(cosignature.CosignatureSignatureError, match="at time 4 does not verify"):
        cosignature.verify_cosignature(NOTE + forged, witness_key=VKEY)


def test_missing_and_other_witness() -> None:
    """A note without the witness's line, or with another key's line, is missing it."""
    with pytest.raises(cosignature.MissingCosignatureError, match=r"no cosignature by witness"):
        cosignature.verify_cosignature(NOTE, witness_key=VKEY)
    other = cosignature.add_cosignature(NOTE, name=NAME, seed=OTHER, timestamp=1)
    with pytest.raises(cosignature.MissingCosignatureError):
        cosignature.verify_cosignature(other, witness_key=VKEY)


def test_type_0x01_signature_by_same_key_is_not_a_cosignature() -> None:
    """An Ed25519 note signature (key id with 0x01) by the witness key is ignored."""
    plain = sign_checkpoint(Checkpoint(origin="o", size=1, root=bytes(32)), name=NAME, seed=SEED)
    with pytest.raises(cosignature.MissingCosignatureError):
        cosignature.verify_cosignature(plain, witness_key=VKEY)


def test_future_timestamp_refused() -> None:
    """A timestamp after not_after is refused with both values."""
    cosigned = cosignature.add_cosignature(NOTE, name=NAME, seed=SEED, timestamp=1000)
    assert cosignature.verify_cosignature(cosigned, witness_key=VKEY, not_after=1000) == 1000
    with pytest.raises(cosignature.FutureCosignatureError, match="timestamp 1000, later than 999"):
        cosignature.verify_cosignature(cosigned, witness_key=VKEY, not_after=999)


def test_wrong_length_line_is_malformed() -> None:
    """A line with the witness's name and key id but not 76 bytes is malformed."""
    raw = cosignature.witness_key_id(NAME, PUBLIC) + bytes(64)
    note = NOTE + f"\u2014 {NAME} {base64.b64encode(raw).decode()}\n"
    with pytest.raises(cosignature.MalformedCosignatureError, match="is 68 bytes, want 76"):
        cosignature.verify_cosignature(note, witness_key=VKEY)


def test_timestamp_above_2_63_is_malformed() -> None:
    """Timestamps above 2^63 - 1 are refused when signing and when verifying."""
    with pytest.raises(ValueError, match="not between 0 and 2"):
        cosignature.cosignature_line(BODY, name=NAME, seed=SEED, timestamp=2**63)
    raw = cosignature.witness_key_id(NAME, PUBLIC) + (2**63).to_bytes(8, "big") + bytes(64)
    note = NOTE + f"\u2014 {NAME} {base64.b64encode(raw).decode()}\n"
    with pytest.raises(cosignature.MalformedCosignatureError, match="above 2\\^63 - 1"):
        cosignature.verify_cosignature(note, witness_key=VKEY)


def test_malformed_note_is_a_note_error() -> None:
    """A note without signature block is refused by the signed-note parser."""
    with pytest.raises(MalformedNoteError):
        cosignature.verify_cosignature(BODY, witness_key=VKEY)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a+b", "3 '\\+'-separated fields, got 2"),
        (VKEY.replace(VKEY.split("+")[1], "00000000"), "does not match name"),
        (
            cosignature.witness_verifier_key(NAME, PUBLIC).rsplit("+", 1)[0]
            + "+"
            + base64.b64encode(b"\x01" + PUBLIC).decode(),
            "signature type byte 0x04",
        ),
        (f"{NAME}+ABCDEF01+{base64.b64encode(b'x').decode()}", "8 lowercase hex"),
        (f"{NAME}+abcdef01+not base64", "not valid base64"),
    ],
)
def test_malformed_witness_keys(text: str, message: str) -> None:
    """Witness keys with a bad shape, key id or type byte are refused by name."""
    with pytest.raises(cosignature.MalformedWitnessKeyError, match=message):
        cosignature.parse_witness_key(text)


def test_verify_cosignatures_reports_who_cosigned() -> None:
    """Per witness: the timestamp of those that cosigned; absent ones are left out."""
    other_key = cosignature.witness_verifier_key("witness.example/w2", public_key_from_seed(OTHER))
    cosigned = cosignature.add_cosignature(NOTE, name=NAME, seed=SEED, timestamp=7)
    assert cosignature.verify_cosignatures(cosigned, witness_keys=[VKEY, other_key]) == {VKEY: 7}


def test_cosigner_reused_signs_like_the_one_shot_function() -> None:
    """A Cosigner expanded once gives, call after call, the lines cosignature_line gives."""
    cosigner = cosignature.Cosigner.from_seed(name=NAME, seed=SEED)
    for timestamp in (0, 5, 1679315147, cosignature.MAX_TIMESTAMP):
        line = cosigner.line(BODY, timestamp=timestamp)
        assert line == cosignature.cosignature_line(BODY, name=NAME, seed=SEED, timestamp=timestamp)
        assert cosignature.verify_cosignature(NOTE + line, witness_key=VKEY) == timestamp
    assert repr(cosigner) == f"Cosigner(name='{NAME}')"  # no key material in logs


@pytest.mark.parametrize(
    ("name", "seed", "error"),
    [
        ("bad name", SEED, InvalidKeyNameError),
        ("a+b", SEED, InvalidKeyNameError),
        (NAME, SEED[:31], ValueError),
        (NAME, b"x" * 33, ValueError),
    ],
    ids=["space", "plus", "short seed", "long seed"],
)
def test_cosigner_refuses_bad_names_and_seeds(
    name: str, seed: bytes, error: type[Exception]
) -> None:
    """Key names follow signed-note rules; a seed is 32 bytes."""
    with pytest.raises(error):
        cosignature.Cosigner.from_seed(name=name, seed=seed)
