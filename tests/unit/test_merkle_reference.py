"""The fast Merkle code against a tiny recursive implementation of RFC 9162 §2.1.

The reference below is the RFC's own definition (MTH, PATH, PROOF/SUBPROOF) written as
directly as possible, over leaf data, with ``hashlib`` only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import VerificationError
from ledger.merkle import (
    LogState,
    MemoryLog,
    NodeId,
    append,
    consistency_proof_plan,
    hash_leaf,
    inclusion_proof_plan,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from tests.support.strategies import (
    MAX_TREE_SIZE,
    consistency_cases,
    inclusion_cases,
    leaf_datas,
)


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]): the Merkle tree hash of a list of leaf data."""
    if not leaves:
        return _sha(b"")
    if len(leaves) == 1:
        return _sha(b"\x00" + leaves[0])
    k = split(len(leaves))
    return _sha(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]): the audit path of leaf ``m``."""
    if len(leaves) == 1:
        return []
    k = split(len(leaves))
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if complete else [mth(leaves)]
    k = split(n)
    if m <= k:
        return [*subproof(m, leaves[:k], complete), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]): the consistency proof from the first ``m`` leaves, 0 < m <= n."""
    return subproof(m, leaves, True)


# One log of distinct leaves serves the fixed-tree properties; its prefixes are the trees.
LEAVES = tuple(f"leaf {i}".encode() for i in range(2 * MAX_TREE_SIZE))


@cache
def shared_log() -> MemoryLog:
    """A log holding LEAVES."""
    log = MemoryLog()
    log.append(LEAVES)
    return log


@cache
def reference_root(size: int) -> bytes:
    """The reference root of the first ``size`` LEAVES."""
    return mth(LEAVES[:size])


def rejected_inclusion(*, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether verify_inclusion rejects leaf LEAVES[index] (or garbage) with this proof."""
    leaf = hash_leaf(LEAVES[index]) if 0 <= index < len(LEAVES) else b"\x00" * 32
    try:
        verify_inclusion(leaf_hash=leaf, index=index, size=size, proof=proof, root=root)
    except VerificationError:
        return True
    return False


def rejected_consistency(
    *, size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> bool:
    """Whether verify_consistency rejects this proof."""
    try:
        verify_consistency(size1=size1, size2=size2, proof=proof, root1=root1, root2=root2)
    except VerificationError:
        return True
    return False


def bit_flips(hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Every proof obtained by flipping one bit of one hash."""
    variants = []
    for position, value in enumerate(hashes):
        for bit in range(len(value) * 8):
            flipped = bytearray(value)
            flipped[bit // 8] ^= 1 << (bit % 8)
            variants.append([*hashes[:position], bytes(flipped), *hashes[position + 1 :]])
    return variants


def edits(hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Every proof with one hash removed or one inserted, and with garbage before or after."""
    extra = _sha(b"inserted")
    variants = [[*hashes[:i], *hashes[i + 1 :]] for i in range(len(hashes))]
    variants += [[*hashes[:i], extra, *hashes[i:]] for i in range(len(hashes) + 1)]
    variants += [[b"garbage", *hashes], [*hashes, b"garbage"], [*hashes, b""]]
    return variants


class TestAgainstReference:
    """Roots and proofs equal the recursive definition for every tree up to 70 leaves."""

    @settings(max_examples=15, deadline=None)
    @given(leaves=leaf_datas)
    def test_roots_and_inclusion_proofs(self, leaves: list[bytes]) -> None:
        """For every prefix size: the root, and every leaf's inclusion proof, which verifies."""
        log = MemoryLog()
        log.append(leaves)
        for size in range(len(leaves) + 1):
            root = log.root_at(size)
            assert root == mth(leaves[:size])
            for index in range(size):
                got = log.inclusion_proof(index=index, size=size)
                assert got == path(index, leaves[:size])
                verify_inclusion(
                    leaf_hash=hash_leaf(leaves[index]), index=index, size=size, proof=got, root=root
                )
        assert log.root() == mth(leaves)

    @settings(max_examples=15, deadline=None)
    @given(leaves=leaf_datas)
    def test_consistency_to_full_tree(self, leaves: list[bytes]) -> None:
        """Every consistency proof from a prefix to the whole tree equals PROOF and verifies."""
        log = MemoryLog()
        log.append(leaves)
        n = len(leaves)
        for m in range(1, n + 1):
            got = log.consistency_proof(size1=m, size2=n)
            assert got == proof(m, leaves)
            verify_consistency(
                size1=m, size2=n, proof=got, root1=mth(leaves[:m]), root2=mth(leaves)
            )

    def test_consistency_every_pair(self) -> None:
        """For every 0 < m <= n <= 70 the proof equals PROOF(m, D[n]) and verifies."""
        log = shared_log()
        for n in range(1, MAX_TREE_SIZE + 1):
            for m in range(1, n + 1):
                got = log.consistency_proof(size1=m, size2=n)
                assert got == proof(m, LEAVES[:n]), (m, n)
                verify_consistency(
                    size1=m, size2=n, proof=got, root1=reference_root(m), root2=reference_root(n)
                )

    @settings(max_examples=40, deadline=None)
    @given(leaves=leaf_datas, cut=st.integers(min_value=0, max_value=MAX_TREE_SIZE))
    def test_batches_do_not_matter(self, leaves: list[bytes], cut: int) -> None:
        """Appending in two batches gives the same state and nodes as one batch."""
        hashes = [hash_leaf(leaf) for leaf in leaves]
        whole, whole_nodes = append(LogState.empty(), hashes)
        half, first_nodes = append(LogState.empty(), hashes[:cut])
        rest, rest_nodes = append(half, hashes[cut:])
        assert rest == whole
        assert sorted(first_nodes + rest_nodes) == sorted(whole_nodes)
        assert whole.root() == mth(leaves)


class TestPlansAgainstReference:
    """Proof plans, assembled from the stored nodes, give the RFC proofs for every tree."""

    def test_every_inclusion_and_consistency_proof(self) -> None:
        """For every 0 < m <= n <= 70 and every leaf: PATH and PROOF, as a store builds them."""
        _, nodes = append(LogState.empty(), [hash_leaf(leaf) for leaf in LEAVES])
        stored = {NodeId(node.level, node.index): node.hash for node in nodes}
        for n in range(1, MAX_TREE_SIZE + 1):
            for m in range(n):
                plan = inclusion_proof_plan(index=m, size=n)
                assert plan.assemble(stored) == path(m, LEAVES[:n]), (m, n)
            for m in range(1, n + 1):
                plan = consistency_proof_plan(size1=m, size2=n)
                assert plan.assemble(stored) == proof(m, LEAVES[:n]), (m, n)


class TestInclusionCorruptions:
    """Every systematic corruption of a valid inclusion proof is rejected."""

    @settings(max_examples=60, deadline=None)
    @given(case=inclusion_cases())
    def test_corruptions_rejected(self, case: tuple[int, int]) -> None:
        """Bit flips, index +-1 or ^2, size *2 or /2, hashes removed or inserted, garbage.

        Like the upstream probes, a size changed by one is not among them: the proof of leaf 0
        in a tree of 3 has the shape of one in a tree of 4, and only the root tells them apart.
        """
        size, index = case
        good = shared_log().inclusion_proof(index=index, size=size)
        root = reference_root(size)
        assert not rejected_inclusion(index=index, size=size, proof=good, root=root)
        for bad in bit_flips(good) + edits(good):
            assert rejected_inclusion(index=index, size=size, proof=bad, root=root), bad
        for other in (index - 1, index + 1, index ^ 2):
            assert rejected_inclusion(index=other, size=size, proof=good, root=root), other
        for other_size in (size * 2, size // 2):
            assert rejected_inclusion(index=index, size=other_size, proof=good, root=root)
        assert rejected_inclusion(index=index, size=size, proof=good, root=reference_root(size + 1))

    def test_root_from_inclusion_proof(self) -> None:
        """The computing half of the pair returns the root the verifier compares with."""
        log = shared_log()
        got = root_from_inclusion_proof(
            leaf_hash=log.leaf_hash(5),
            index=5,
            size=13,
            proof=log.inclusion_proof(index=5, size=13),
        )
        assert got == reference_root(13)


class TestConsistencyCorruptions:
    """Every systematic corruption of a valid consistency proof is rejected."""

    @settings(max_examples=60, deadline=None)
    @given(case=consistency_cases())
    def test_corruptions_rejected(self, case: tuple[int, int]) -> None:
        """Bit flips, size1 +-1 or ^2, size2 *2 or /2, hashes removed or inserted, garbage."""
        size1, size2 = case
        good = shared_log().consistency_proof(size1=size1, size2=size2)
        roots = {"root1": reference_root(size1), "root2": reference_root(size2)}
        assert not rejected_consistency(size1=size1, size2=size2, proof=good, **roots)
        for bad in bit_flips(good) + edits(good):
            assert rejected_consistency(size1=size1, size2=size2, proof=bad, **roots), bad
        for other in (size1 - 1, size1 + 1, size1 ^ 2):
            assert rejected_consistency(size1=other, size2=size2, proof=good, **roots), other
        for other in (size2 * 2, size2 // 2):
            assert rejected_consistency(size1=size1, size2=other, proof=good, **roots), other
        swapped = {"root1": roots["root2"], "root2": roots["root1"]}
        assert rejected_consistency(size1=size1, size2=size2, proof=good, **swapped)


@pytest.mark.parametrize("size", [1, 2, 3, 64, 70])
def test_reference_is_not_trivial(size: int) -> None:
    """The reference distinguishes trees (so comparisons against it can fail)."""
    assert mth(LEAVES[:size]) != mth(LEAVES[1 : size + 1])
