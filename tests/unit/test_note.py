"""C2SP signed notes: the public Go vector, cosigning and every rejection."""

from __future__ import annotations

import base64

import pytest

from ledger import note
from ledger.errors import VerificationError
from ledger.keys import parse_key_text, public_key_from_seed

# The example of golang.org/x/mod/sumdb/note (note.go and note_test.go, BSD-3-Clause).
PETER_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_NOTE = (
    PETER_TEXT + "\n\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
PETER_SEED = parse_key_text(PETER_SIGNER).seed
SEED_B = bytes(range(32))
KEY_B = note.verifier_key("witness.example/b", public_key_from_seed(SEED_B))


def test_go_vector_signs_identically() -> None:
    """Signing the Go example with its key reproduces the published note exactly."""
    assert note.sign_note(PETER_TEXT, name="PeterNeumann", seed=PETER_SEED) == PETER_NOTE


def test_go_vector_verifies() -> None:
    """The published note verifies under the published verifier key."""
    assert note.verify_note(PETER_NOTE, verifier_key=PETER_VERIFIER) == PETER_TEXT


def test_go_verifier_key_round_trips() -> None:
    """verifier_key reproduces the published verifier key and its key id."""
    parsed = note.parse_verifier_key(PETER_VERIFIER)
    assert parsed.key_id.hex() == "c74f20a3"
    assert note.key_id("PeterNeumann", parsed.public_key) == parsed.key_id
    assert note.verifier_key("PeterNeumann", parsed.public_key) == PETER_VERIFIER
    assert str(parsed) == PETER_VERIFIER


def test_plus_in_base64_of_verifier_key() -> None:
    """A verifier key whose base64 contains '+' parses (transparency-dev/formats test key)."""
    assert note.parse_verifier_key("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6")


def test_cosign_and_verify_each() -> None:
    """A cosigned note verifies by either key; adding the same key twice changes nothing."""
    cosigned = note.add_signature(PETER_NOTE, name="witness.example/b", seed=SEED_B)
    assert cosigned.startswith(PETER_NOTE)
    assert cosigned.count("\u2014 ") == 2
    assert note.verify_note(cosigned, verifier_key=PETER_VERIFIER) == PETER_TEXT
    assert note.verify_note(cosigned, verifier_key=KEY_B) == PETER_TEXT
    assert note.add_signature(cosigned, name="witness.example/b", seed=SEED_B) == cosigned


def test_text_may_hold_blank_lines() -> None:
    """The last blank line separates text from signatures."""
    text = "a\n\nb\n"
    signed = note.sign_note(text, name="k", seed=SEED_B)
    key = note.verifier_key("k", public_key_from_seed(SEED_B))
    assert note.verify_note(signed, verifier_key=key) == text


def test_unknown_key_signatures_ignored() -> None:
    """A signature by another key is ignored; without ours the note is unverified."""
    with pytest.raises(note.UnverifiedNoteError, match=r"no signature by witness\.example/b"):
        note.verify_note(PETER_NOTE, verifier_key=KEY_B)


def test_same_name_other_key_ignored() -> None:
    """A key sharing the name but not the id is another key."""
    other = note.verifier_key("PeterNeumann", public_key_from_seed(SEED_B))
    with pytest.raises(note.UnverifiedNoteError, match="no signature by PeterNeumann"):
        note.verify_note(PETER_NOTE, verifier_key=other)


def test_changed_text_fails() -> None:
    """One changed letter of the text breaks the trusted signature."""
    tampered = PETER_NOTE.replace("cryptography", "cryptographY")
    with pytest.raises(note.NoteSignatureError, match="by PeterNeumann\\+c74f20a3 does not verify"):
        note.verify_note(tampered, verifier_key=PETER_VERIFIER)


def test_forged_signature_with_right_id_fails() -> None:
    """A line with the trusted name and id but a signature by another key fails."""
    forged_sig = base64.b64decode(
        note.sign_note(PETER_TEXT, name="PeterNeumann", seed=SEED_B).split(" ")[-1]
    )[4:]
    encoded = base64.b64encode(bytes.fromhex("c74f20a3") + forged_sig).decode()
    forged = f"{PETER_TEXT}\n\u2014 PeterNeumann {encoded}\n"
    with pytest.raises(note.NoteSignatureError, match="does not verify"):
        note.verify_note(forged, verifier_key=PETER_VERIFIER)


MALFORMED = [
    ("", "note text is empty"),
    (PETER_NOTE[:-1], "does not end with a newline"),
    (PETER_TEXT, "no blank line separates"),
    (PETER_TEXT + "\n", "no blank line separates|no signature lines"),
    (PETER_NOTE.replace("\u2014 ", "- "), "signature line 1 does not start with"),
    (PETER_NOTE.replace("PeterNeumann x08", "PeterNeumann  x08"), "is not '\u2014 <name>"),
    (PETER_NOTE.replace("PeterNeumann x08", "Peter+Neumann x08"), "contains '\\+'"),
    (PETER_NOTE.replace("x08go", "x08g!"), "signature line 1 is not valid base64"),
    (PETER_NOTE.replace("JnAM=", "JnAN="), "not canonical base64"),
    (PETER_TEXT + "\n\u2014 k AAAA\n", "signature line 1 is too short"),
    (PETER_NOTE.replace("problem,", "problem,\r"), "control character '\\\\r'"),
    (PETER_NOTE + "\u2014 k AAAAAAA=\n" * 100, "101 signatures, at most 100"),
]


@pytest.mark.parametrize(("text", "match"), MALFORMED)
def test_malformed_notes(text: str, match: str) -> None:
    """Syntax errors are reported precisely."""
    with pytest.raises(note.MalformedNoteError, match=match):
        note.verify_note(text, verifier_key=PETER_VERIFIER)


@pytest.mark.parametrize(
    ("key", "match"),
    [
        ("PeterNeumann+c74f20a3", "3 '\\+'-separated fields, got 2"),
        ("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 lowercase hex"),
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("PeterNeumann+c74f20a3+AhpjZA==", "not an Ed25519 key"),
        ("PeterNeumann+c74f20a3+ARpc2Q==", "must be 32 bytes, got 3"),
        ("PeterNeumann+c74f20a3+A!pc", "not valid base64"),
        ("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "key name is empty"),
    ],
)
def test_malformed_verifier_keys(key: str, match: str) -> None:
    """Verifier keys are checked field by field."""
    with pytest.raises(note.MalformedVerifierKeyError, match=match):
        note.parse_verifier_key(key)


@pytest.mark.parametrize(
    ("name", "match"),
    [("", "empty"), ("a b", "contains a space"), ("a\u2003b", "space"), ("a+b", "'\\+'")],
)
def test_invalid_key_names(name: str, match: str) -> None:
    """Key names must be non-empty, without spaces or '+'."""
    with pytest.raises(note.InvalidKeyNameError, match=match):
        note.sign_note("x\n", name=name, seed=SEED_B)


def test_sign_requires_text_ending_in_newline() -> None:
    """Signing text without a final newline is refused."""
    with pytest.raises(note.MalformedNoteError, match="does not end with a newline"):
        note.sign_note("x", name="k", seed=SEED_B)


def test_cosign_limit() -> None:
    """A note with 100 signatures cannot take another."""
    full = PETER_NOTE + "\u2014 k AAAAAAA=\n" * 99
    with pytest.raises(note.MalformedNoteError, match="already has 100 signatures"):
        note.add_signature(full, name="witness.example/b", seed=SEED_B)


def test_note_errors_are_verification_errors() -> None:
    """Note errors belong to the VerificationError family."""
    assert issubclass(note.NoteError, VerificationError)
