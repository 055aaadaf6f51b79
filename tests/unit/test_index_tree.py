"""The device index tree: root by definition, entry and absence proofs, corruptions refused."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle.errors import MerkleProofError, RootMismatchError
from ledger.merkle.index_tree import (
    EMPTY_NODE,
    IndexProof,
    IndexProofError,
    IndexTree,
    index_leaf_hash,
    reference_root,
    verify_index_absence,
    verify_index_entry,
)


def _h(value: object) -> bytes:
    return hashlib.sha256(repr(value).encode()).digest()


def _near(base: int, bit: int) -> bytes:
    """A key equal to ``base`` except for one bit (deep shared prefixes)."""
    return ((base ^ (1 << bit)) % (1 << 256)).to_bytes(32, "big")


hashes = st.binary(min_size=32, max_size=32)
# Keys that share long prefixes as well as random ones.
keys = st.one_of(
    hashes,
    st.integers(min_value=0, max_value=255).map(lambda b: _near(1 << 200, b)),
    st.integers(min_value=0, max_value=40).map(lambda n: n.to_bytes(32, "big")),
)
entry_maps = st.dictionaries(keys, hashes, max_size=40)


def _tree(pairs: dict[bytes, bytes]) -> IndexTree:
    tree = IndexTree()
    tree.update(pairs.items())
    return tree


@given(entry_maps)
def test_root_equals_the_definition(pairs: dict[bytes, bytes]) -> None:
    """The incremental tree's root is the recursive definition's root of the same set."""
    assert _tree(pairs).root() == reference_root(pairs)


@given(entry_maps, st.randoms(use_true_random=False))
def test_root_does_not_depend_on_insertion_order(pairs: dict[bytes, bytes], rnd: object) -> None:
    """The root is a function of the set of entries only."""
    items = list(pairs.items())
    rnd.shuffle(items)  # type: ignore[attr-defined]
    tree = IndexTree()
    tree.update(items)
    assert tree.root() == _tree(pairs).root()


@given(entry_maps)
def test_one_by_one_equals_the_bulk_build(pairs: dict[bytes, bytes]) -> None:
    """``set`` one entry at a time and ``update`` of an empty tree (one bulk build) agree."""
    tree = IndexTree()
    for key, value_hash in pairs.items():
        tree.set(key, value_hash)
    assert tree.root() == _tree(pairs).root() == reference_root(pairs)
    for key in pairs:
        assert tree.proof(key) == _tree(pairs).proof(key)


@given(entry_maps, entry_maps)
def test_updates_after_a_root_are_rehashed(
    first: dict[bytes, bytes], then: dict[bytes, bytes]
) -> None:
    """Roots read between updates do not leave stale cached hashes behind."""
    tree = _tree(first)
    tree.root()
    tree.update(then.items())
    assert tree.root() == reference_root({**first, **then})


@settings(max_examples=60)
@given(entry_maps.filter(bool), keys)
def test_every_entry_and_every_absence_is_provable(pairs: dict[bytes, bytes], probe: bytes) -> None:
    """Each present key proves its value; an absent key proves its absence."""
    tree = _tree(pairs)
    root = tree.root()
    for key, value_hash in pairs.items():
        verify_index_entry(root=root, key=key, value_hash=value_hash, proof=tree.proof(key))
    if probe in pairs:
        with pytest.raises(MerkleProofError):
            verify_index_absence(root=root, key=probe, proof=tree.proof(probe))
    else:
        verify_index_absence(root=root, key=probe, proof=tree.proof(probe))


@settings(max_examples=60)
@given(entry_maps.filter(bool), hashes)
def test_no_root_proves_a_second_value_for_a_key(pairs: dict[bytes, bytes], other: bytes) -> None:
    """The proof of a key does not verify another value for it."""
    tree = _tree(pairs)
    key, value_hash = next(iter(pairs.items()))
    if other == value_hash:
        return
    with pytest.raises(RootMismatchError):
        verify_index_entry(root=tree.root(), key=key, value_hash=other, proof=tree.proof(key))


def test_empty_index() -> None:
    """An empty index has the empty root, and every key is provably absent."""
    tree = IndexTree()
    assert tree.root() == EMPTY_NODE
    verify_index_absence(root=EMPTY_NODE, key=_h(1), proof=tree.proof(_h(1)))


def test_one_entry_is_its_leaf_hash() -> None:
    """A single entry sits at the root, whatever its key."""
    tree = IndexTree()
    tree.set(_h("k"), _h("v"))
    assert tree.root() == index_leaf_hash(_h("k"), _h("v"))
    assert tree.proof(_h("k")).siblings == ()


def _populated() -> tuple[IndexTree, bytes, bytes]:
    tree = IndexTree()
    tree.update((_h(n), _h(("v", n))) for n in range(64))
    tree.update([(_near(7, 0), _h("deep-a")), (_near(7, 1), _h("deep-b"))])
    return tree, _near(7, 0), _h("deep-a")


def test_corrupted_proofs_are_refused() -> None:
    """A flipped bit, a removed or an added sibling, or another root: each refused."""
    tree, key, value_hash = _populated()
    root = tree.root()
    proof = tree.proof(key)
    assert len(proof.siblings) > 200  # the two deep keys share 254 bits
    verify_index_entry(root=root, key=key, value_hash=value_hash, proof=proof)
    for depth in (0, len(proof.siblings) // 2, len(proof.siblings) - 1):
        flipped = list(proof.siblings)
        flipped[depth] = bytes([flipped[depth][0] ^ 1]) + flipped[depth][1:]
        with pytest.raises(RootMismatchError):
            verify_index_entry(
                root=root, key=key, value_hash=value_hash, proof=IndexProof(siblings=tuple(flipped))
            )
    for siblings in (proof.siblings[:-1], (*proof.siblings, EMPTY_NODE), proof.siblings[1:]):
        with pytest.raises(RootMismatchError):
            verify_index_entry(
                root=root, key=key, value_hash=value_hash, proof=IndexProof(siblings=siblings)
            )
    with pytest.raises(RootMismatchError):
        verify_index_entry(root=_h("other"), key=key, value_hash=value_hash, proof=proof)


def test_malformed_proofs_are_named() -> None:
    """Wrong sizes and mixed-up proof kinds raise IndexProofError with the reason."""
    tree, key, value_hash = _populated()
    with pytest.raises(IndexProofError, match="sibling at depth 0 must be 32 bytes"):
        IndexProof(siblings=(b"short",))
    with pytest.raises(IndexProofError, match="at most 256"):
        IndexProof(siblings=(EMPTY_NODE,) * 257)
    with pytest.raises(IndexProofError, match="come together"):
        IndexProof(siblings=(), other_key=key)
    named = IndexProof(siblings=(), other_key=_h(0), other_value_hash=_h(("v", 0)))
    with pytest.raises(IndexProofError, match="must not name another key"):
        verify_index_entry(root=tree.root(), key=key, value_hash=value_hash, proof=named)


def test_absence_cannot_be_claimed_with_a_leaf_off_the_path() -> None:
    """An absence proof must end on the key's own path, at an empty subtree or another key."""
    low, high = bytes(32), b"\x80" + bytes(31)
    tree = IndexTree()
    tree.update([(low, _h("low")), (high, _h("high"))])
    root = tree.root()
    absent = b"\x40" + bytes(31)  # bit 0 = 0 like ``low``, differs at bit 1
    proof = tree.proof(absent)
    assert proof.other_key == low
    verify_index_absence(root=root, key=absent, proof=proof)
    off_path = IndexProof(
        siblings=(tree.proof(low).siblings[0],), other_key=high, other_value_hash=_h("high")
    )
    with pytest.raises(IndexProofError, match="does not lie on the key's path"):
        verify_index_absence(root=root, key=absent, proof=off_path)
    with pytest.raises(IndexProofError, match="ends at the key it claims is absent"):
        verify_index_absence(
            root=root,
            key=low,
            proof=IndexProof(siblings=proof.siblings, other_key=low, other_value_hash=_h("low")),
        )
    with pytest.raises(RootMismatchError):
        verify_index_absence(root=root, key=absent, proof=IndexProof(siblings=proof.siblings))


def test_replacing_a_value_changes_only_that_entry() -> None:
    """Setting a new value for a key keeps the other entries' proofs valid."""
    tree, key, _ = _populated()
    tree.set(key, _h("new"))
    root = tree.root()
    verify_index_entry(root=root, key=key, value_hash=_h("new"), proof=tree.proof(key))
    verify_index_entry(root=root, key=_h(3), value_hash=_h(("v", 3)), proof=tree.proof(_h(3)))
    assert len(tree) == 66
