"""Proof verification (RFC 9162 §2.1.3.2 and §2.1.4.2), separate from proof construction.

Verbs come in pairs: ``root_from_inclusion_proof`` computes a root, ``verify_inclusion``
computes and compares. Verifiers return nothing and raise a
:class:`~ledger.merkle.errors.MerkleProofError`; preconditions are checked first.

The proof of leaf ``index`` in a tree of ``size`` splits in two: ``inner`` hashes, one per
level below the level where the paths to ``index`` and to the last leaf ``size - 1`` meet
(left or right sibling by the bits of ``index``), then ``border`` hashes, the left siblings of
the right border above it, one per set bit of ``index`` above ``inner``.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import ProofShapeError, RootMismatchError
from .hasher import EMPTY_ROOT, HASH_SIZE, hash_children


def _split(index: int, size: int) -> tuple[int, int]:
    """The numbers of inner and border hashes in the inclusion proof of ``index`` in ``size``."""
    inner = (index ^ (size - 1)).bit_length()
    return inner, (index >> inner).bit_count()


def _check_hashes(proof: Sequence[bytes]) -> None:
    for position, value in enumerate(proof):
        if len(value) != HASH_SIZE:
            raise ProofShapeError(f"proof hash {position} is {len(value)} bytes, want {HASH_SIZE}")


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Climb the inner levels: a 0 bit of ``index`` means the sibling is on the right."""
    for level, node in enumerate(proof):
        seed = hash_children(node, seed) if (index >> level) & 1 else hash_children(seed, node)
    return seed


def _chain_inner_left_only(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Climb the inner levels keeping only left siblings: the root of the old, smaller tree."""
    for level, sibling in enumerate(proof):
        if (index >> level) & 1:
            seed = hash_children(sibling, seed)
    return seed


def _chain_border(seed: bytes, proof: Sequence[bytes]) -> bytes:
    """Climb the right border: every sibling is on the left."""
    for sibling in proof:
        seed = hash_children(sibling, seed)
    return seed


def _require_match(*, expected: bytes, calculated: bytes) -> None:
    if calculated != expected:
        raise RootMismatchError(expected=expected, calculated=calculated)


def root_from_inclusion_proof(
    *, leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root of a tree of ``size`` leaves implied by ``proof`` for ``leaf_hash`` at ``index``."""
    if index < 0:
        raise ProofShapeError(f"index {index} is negative")
    if index >= size:
        raise ProofShapeError(f"index {index} is beyond size {size}")
    if len(leaf_hash) != HASH_SIZE:
        raise ProofShapeError(f"leaf hash is {len(leaf_hash)} bytes, want {HASH_SIZE}")
    inner, border = _split(index, size)
    if len(proof) != inner + border:
        raise ProofShapeError(
            f"inclusion proof for index {index} in size {size} has {len(proof)} hashes, "
            f"want {inner + border}"
        )
    _check_hashes(proof)
    return _chain_border(_chain_inner(leaf_hash, proof[:inner], index), proof[inner:])


def verify_inclusion(
    *, leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` puts ``leaf_hash`` at ``index`` in the tree of ``size`` and ``root``."""
    calculated = root_from_inclusion_proof(leaf_hash=leaf_hash, index=index, size=size, proof=proof)
    _require_match(expected=root, calculated=calculated)


def verify_consistency(
    *, size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree (``size2``, ``root2``) extends the tree (``size1``, ``root1``).

    Equal sizes need an empty proof and equal roots (the empty tree's root for size 0). A proof
    from the empty tree is refused: it would prove nothing.
    """
    if size1 < 0:
        raise ProofShapeError(f"size1 {size1} is negative")
    if size2 < size1:
        raise ProofShapeError(f"size1 {size1} is greater than size2 {size2}")
    if size1 == size2:
        if proof:
            raise ProofShapeError(
                f"sizes are equal ({size1}) but the proof has {len(proof)} hashes, want 0"
            )
        if size1 == 0:
            _require_match(expected=root1, calculated=EMPTY_ROOT)
        _require_match(expected=root2, calculated=root1)
        return
    if size1 == 0:
        raise ProofShapeError(f"a consistency proof from size 0 to size {size2} proves nothing")

    # The proof is the inclusion path of the last old leaf, size1 - 1, from the level `shift`
    # of the largest perfect subtree ending at size1; that subtree's root (the seed) comes first,
    # except when it is the whole old tree: then the verifier already holds it as root1.
    inner, border = _split(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1
    inner -= shift
    seed_given = size1 != 1 << shift
    want = int(seed_given) + inner + border
    if len(proof) != want:
        raise ProofShapeError(
            f"consistency proof from size {size1} to size {size2} has {len(proof)} hashes, "
            f"want {want}"
        )
    _check_hashes(proof)
    seed = proof[0] if seed_given else root1
    path = proof[1:] if seed_given else proof
    index = (size1 - 1) >> shift

    calculated1 = _chain_border(_chain_inner_left_only(seed, path[:inner], index), path[inner:])
    _require_match(expected=root1, calculated=calculated1)
    calculated2 = _chain_border(_chain_inner(seed, path[:inner], index), path[inner:])
    _require_match(expected=root2, calculated=calculated2)
