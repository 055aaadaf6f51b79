"""Signature checks split over threads: same report, and the first failure in bundle order."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ledger.bundle import Bundle
from ledger.verify import (
    ChainOrderError,
    MessageSignatureError,
    PeriodBoundaryError,
    check_messages,
    verify_bundle,
)
from tests.support.bundle_world import flip, pack_world, with_message


def with_bad_signature(bundle: Bundle, position: int) -> Bundle:
    """``bundle`` with the last signature bit of message ``position`` flipped."""
    leaf = bundle.chains[0].messages[position]
    return with_message(bundle, position, replace(leaf, data=flip(leaf.data, len(leaf.data) - 1)))


@pytest.mark.parametrize("workers", [1, 2, 3, 8, 40])
def test_report_is_the_same_for_any_number_of_workers(workers: int) -> None:
    """A valid bundle gives the same report whatever the number of signature threads."""
    world, bundle = pack_world(messages=30)
    reference = verify_bundle(bundle, gateway_verifier_key=world.gateway_key, workers=1)
    report = verify_bundle(bundle, gateway_verifier_key=world.gateway_key, workers=workers)
    assert report == reference
    assert check_messages(bundle, workers=workers) == check_messages(bundle, workers=1)


@pytest.mark.parametrize("workers", [1, 2, 3, 8])
def test_first_bad_signature_in_bundle_order_is_reported(workers: int) -> None:
    """With bad signatures in several slices, the earliest message is the one named."""
    _, bundle = pack_world(messages=30)
    bad = with_bad_signature(with_bad_signature(bundle, 25), 3)
    with pytest.raises(MessageSignatureError, match=r"leaf 5 \(pack-1 seq 4\).*signature"):
        check_messages(bad, workers=workers)


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_bad_signature_before_a_later_chain_error_is_reported_first(workers: int) -> None:
    """A bad signature early in the chain wins over a reordering found after it."""
    _, bundle = pack_world(messages=30)
    bad = with_bad_signature(bundle, 2)
    (chain,) = bad.chains
    messages = list(chain.messages)
    messages[20], messages[21] = messages[21], messages[20]
    reordered = replace(bad, chains=(replace(chain, messages=tuple(messages)),))
    with pytest.raises(MessageSignatureError, match=r"leaf 4 \(pack-1 seq 3\).*signature"):
        check_messages(reordered, workers=workers)


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_chain_error_before_a_later_bad_signature_is_reported_first(workers: int) -> None:
    """A reordering early in the chain wins over a bad signature after it."""
    _, bundle = pack_world(messages=30)
    bad = with_bad_signature(bundle, 20)
    (chain,) = bad.chains
    messages = list(chain.messages)
    messages[2], messages[3] = messages[3], messages[2]
    reordered = replace(bad, chains=(replace(chain, messages=tuple(messages)),))
    with pytest.raises(ChainOrderError, match=r"seq 3 follows seq 4 \(messages reordered"):
        check_messages(reordered, workers=workers)


@pytest.mark.parametrize("workers", [1, 2])
def test_bad_signature_of_a_misplaced_message_is_not_reported(workers: int) -> None:
    """A message outside its place fails on its period before its signature is looked at."""
    _, bundle = pack_world(messages=30)
    (chain,) = bundle.chains
    assert chain.before is not None
    before = replace(chain.before, data=flip(chain.before.data, len(chain.before.data) - 1))
    misplaced = replace(bundle, from_ms=bundle.from_ms - 20_000)
    bad = replace(misplaced, chains=(replace(chain, before=before),))
    with pytest.raises(PeriodBoundaryError, match=r"leaf 1 \(pack-1 seq 0\).*\(before\)"):
        check_messages(bad, workers=workers)


@pytest.mark.parametrize("workers", [0, -1, True])
def test_workers_must_be_a_positive_integer(workers: int) -> None:
    """Zero, negative or boolean worker counts are refused."""
    _, bundle = pack_world()
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        check_messages(bundle, workers=workers)
