"""C2SP tlog-witness add-checkpoint syntax: request bodies and 409 size answers."""

from __future__ import annotations

import base64

import pytest

from ledger.witness_protocol import (
    MalformedWitnessRequestError,
    format_add_checkpoint,
    format_size,
    parse_add_checkpoint,
    parse_size,
)

NOTE = "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u2014 k AAAAAAA=\n"
HASH = base64.b64encode(bytes(range(32))).decode()


def test_round_trip() -> None:
    """format then parse gives the same old size, proof and checkpoint."""
    body = format_add_checkpoint(old_size=20852014, proof=[bytes(range(32))], checkpoint=NOTE)
    assert body.decode().startswith(f"old 20852014\n{HASH}\n\no\n1\n")
    request = parse_add_checkpoint(body)
    assert (request.old_size, request.proof, request.checkpoint) == (
        20852014,
        (bytes(range(32)),),
        NOTE,
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff", "not UTF-8"),
        (b"old 1\n", "no empty line"),
        (b"old 1\n\n", "no checkpoint"),
        (b"new 1\n\n" + NOTE.encode(), "does not start with 'old <size>'"),
        (b"old 01\n\n" + NOTE.encode(), "without leading zeros"),
        (b"old -1\n\n" + NOTE.encode(), "without leading zeros"),
        (b"old 18446744073709551616\n\n" + NOTE.encode(), "uint64"),
        (b"old 1 \n\n" + NOTE.encode(), "uint64"),
        (b"old 1\nAAAA\n\n" + NOTE.encode(), "proof line 1 is 3 bytes, want 32"),
        (b"old 1\n" + HASH[:-1].encode() + b"!\n\n" + NOTE.encode(), "not valid base64"),
        ((b"old 1\n" + (HASH.encode() + b"\n") * 64 + b"\n" + NOTE.encode()), "at most 63"),
    ],
)
def test_malformed_requests(body: bytes, message: str) -> None:
    """Each syntax error is refused with a message naming it."""
    with pytest.raises(MalformedWitnessRequestError, match=message):
        parse_add_checkpoint(body)


def test_sixty_three_proof_lines_accepted() -> None:
    """63 proof lines is the most a request may carry."""
    body = b"old 1\n" + (HASH.encode() + b"\n") * 63 + b"\n" + NOTE.encode()
    assert len(parse_add_checkpoint(body).proof) == 63


def test_size_answer() -> None:
    """A 409 body is the decimal size and a newline."""
    assert format_size(42) == b"42\n"
    assert parse_size(b"42\n") == 42
    with pytest.raises(MalformedWitnessRequestError, match="newline"):
        parse_size(b"42")
