"""Attack builders produce exactly the defect they are named after."""

from __future__ import annotations

import random

import pytest

from firmware_sim.sim import attacks
from ledger.keys import generate_seed, public_key_from_seed
from ledger.message import (
    BadSignatureError,
    MessageError,
    PayloadTooLargeError,
    decode_message,
    message_hash,
    sign_message,
    verify_message,
)

SEED = generate_seed()
PUBLIC = public_key_from_seed(SEED)


def _message(seq: int = 3) -> bytes:
    payload = {"v": 1, "dev": "pack-1", "seq": seq, "prev": b"\x01" * 32, "t": 1000}
    return sign_message(payload, seed=SEED)


def test_forged_signature_fails_verification() -> None:
    """A flipped signature byte no longer verifies."""
    injection = attacks.forged_signature("pack-1", _message())
    with pytest.raises(BadSignatureError, match="signature"):
        verify_message(injection.data, public_key=PUBLIC)


def test_replay_is_byte_identical() -> None:
    """A replay is the earlier message unchanged."""
    assert attacks.replay("pack-1", _message()).data == _message()


def test_reorder_is_valid_but_far_ahead() -> None:
    """The reordered message verifies, chains to its source and jumps the seq."""
    original = _message()
    payload = verify_message(attacks.reorder("pack-1", original, SEED).data, public_key=PUBLIC)
    assert payload["seq"] == 3 + attacks.REORDER_AHEAD
    assert payload["prev"] == message_hash(original)


def test_fork_reuses_seq_with_other_bytes() -> None:
    """A fork has the same seq and prev, valid signature, different bytes."""
    original = _message()
    forked = attacks.fork("pack-1", original, SEED).data
    assert forked != original
    payload = verify_message(forked, public_key=PUBLIC)
    assert (payload["seq"], payload["prev"]) == (3, b"\x01" * 32)


def test_wrong_topic_targets_victim() -> None:
    """A wrong-topic injection goes to the victim's topic with the sender's message."""
    injection = attacks.wrong_topic("pack-1", _message(), "pack-2")
    assert (injection.sender, injection.topic_dev) == ("pack-1", "pack-2")
    assert decode_message(injection.data).kid == "pack-1"


def test_wrong_kid_names_victim_but_is_signed_by_sender() -> None:
    """The kid and dev name the victim; only the sender's key verifies it."""
    injection = attacks.wrong_kid("pack-1", _message(), SEED, "pack-2")
    assert decode_message(injection.data).kid == "pack-2"
    assert verify_message(injection.data, public_key=PUBLIC)["dev"] == "pack-2"
    assert injection.topic_dev == "pack-1"


def test_garbage_is_not_a_message() -> None:
    """Garbage never decodes as a COSE_Sign1."""
    for seed in range(20):
        injection = attacks.garbage("pack-1", random.Random(seed))
        with pytest.raises(MessageError):
            decode_message(injection.data)


def test_oversized_is_refused_for_size() -> None:
    """The oversized message is refused as too large."""
    injection = attacks.oversized("pack-1", random.Random(1))
    with pytest.raises(PayloadTooLargeError, match="limit"):
        decode_message(injection.data)


def test_every_kind_has_an_expected_rejection() -> None:
    """The summary can name the expected rejection of every attack kind."""
    assert set(attacks.ATTACK_KINDS) == set(attacks.EXPECTED_REJECTION)
    assert len(attacks.ATTACK_KINDS) == 8
