"""C2SP tlog-checkpoints: body format, parsing, signing and verification."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import checkpoint, note
from ledger.keys import public_key_from_seed

SEED = bytes(range(32))
ORIGIN = "voltproof.example/gw-1"
KEY = note.verifier_key(ORIGIN, public_key_from_seed(SEED))
ROOT = hashlib.sha256(b"").digest()
CP = checkpoint.Checkpoint(origin=ORIGIN, size=0, root=ROOT)


def test_body_format() -> None:
    """The body is origin, size and base64 root, each on its own line."""
    assert CP.body() == f"{ORIGIN}\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"


def test_sign_and_verify() -> None:
    """A signed checkpoint verifies back to the same value."""
    signed = checkpoint.sign_checkpoint(CP, name=ORIGIN, seed=SEED)
    assert signed.startswith(CP.body() + "\n\u2014 " + ORIGIN + " ")
    assert checkpoint.verify_checkpoint(signed, verifier_key=KEY, origin=ORIGIN) == CP


def test_extension_lines_round_trip() -> None:
    """Extension lines are kept when parsing and written back."""
    cp = checkpoint.Checkpoint(origin=ORIGIN, size=7, root=ROOT, extensions=("ext one",))
    assert checkpoint.parse_checkpoint(cp.body()) == cp


def test_wrong_origin() -> None:
    """A checkpoint of another log is refused when the origin is given."""
    signed = checkpoint.sign_checkpoint(CP, name=ORIGIN, seed=SEED)
    with pytest.raises(checkpoint.WrongOriginError, match=r"expected 'other\.example/log'"):
        checkpoint.verify_checkpoint(signed, verifier_key=KEY, origin="other.example/log")


def test_wrong_key() -> None:
    """A checkpoint signed by another key is unverified."""
    signed = checkpoint.sign_checkpoint(CP, name=ORIGIN, seed=bytes(32))
    with pytest.raises(note.UnverifiedNoteError, match="no signature by"):
        checkpoint.verify_checkpoint(signed, verifier_key=KEY)


def test_log_id() -> None:
    """The log id is SHA-256 of the origin."""
    assert checkpoint.log_id(ORIGIN) == hashlib.sha256(ORIGIN.encode()).digest()


ROOT_B64 = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (f"{ORIGIN}\n0\n{ROOT_B64}", "does not end with a newline"),
        (f"{ORIGIN}\n0\n", "has 2 lines"),
        (f"{ORIGIN}\n01\n{ROOT_B64}\n", "'01' is not a decimal number without leading zeros"),
        (f"{ORIGIN}\n-1\n{ROOT_B64}\n", "'-1' is not a decimal"),
        (f"{ORIGIN}\n 1\n{ROOT_B64}\n", "' 1' is not a decimal"),
        (f"{ORIGIN}\n{2**64}\n{ROOT_B64}\n", "is not a uint64"),
        (f"{ORIGIN}\n1\n{ROOT_B64[:-1]}\n", "is not valid base64"),
        (f"{ORIGIN}\n1\nAAAA\n", "root hash must be 32 bytes"),
        (f"\n1\n{ROOT_B64}\n", "origin is empty"),
        (f"{ORIGIN}\n1\n{ROOT_B64}\n\n", "extension line 1 is empty"),
    ],
)
def test_malformed_bodies(body: str, match: str) -> None:
    """Each malformed body is refused with the reason."""
    with pytest.raises(checkpoint.MalformedCheckpointError, match=match):
        checkpoint.parse_checkpoint(body)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": -1}, "not a uint64"),
        ({"size": True}, "not a uint64"),
        ({"root": bytes(31)}, "must be 32 bytes"),
        ({"origin": "a\tb"}, "control character"),
    ],
)
def test_constructor_validates(kwargs: dict[str, object], match: str) -> None:
    """Checkpoint values validate themselves."""
    values: dict[str, object] = {"origin": ORIGIN, "size": 1, "root": ROOT, **kwargs}
    with pytest.raises(checkpoint.MalformedCheckpointError, match=match):
        checkpoint.Checkpoint(**values)  # type: ignore[arg-type]  # deliberately wrong types


@given(
    st.text(st.characters(min_codepoint=0x20, exclude_characters="\x7f"), min_size=1),
    st.integers(min_value=0, max_value=2**64 - 1),
    st.binary(min_size=32, max_size=32),
)
def test_body_round_trip(origin: str, size: int, root: bytes) -> None:
    """Every valid checkpoint parses back from its body."""
    cp = checkpoint.Checkpoint(origin=origin, size=size, root=root)
    assert checkpoint.parse_checkpoint(cp.body()) == cp
