"""The device index tree against its JSON vectors and a brute-force reference.

The vectors (``tests/data/index_tree/index_proofs.json``) come from a second implementation
written from the definition (:mod:`tests.support.index_vectors`): every honest entry and
absence proof must verify and equal what :class:`IndexTree` builds, and every systematic
corruption must be refused with the error class the reference names. The brute force takes
every set of keys from a small key space and checks roots, proofs and forged absences.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from ledger.merkle.errors import MerkleProofError
from ledger.merkle.index_tree import (
    IndexProof,
    IndexTree,
    reference_root,
    verify_index_absence,
    verify_index_entry,
)
from tests.support import index_vectors as ref

DOCUMENT: dict[str, Any] = json.loads(ref.VECTORS_FILE.read_text(encoding="utf-8"))
VECTORS: list[dict[str, Any]] = DOCUMENT["vectors"]


def _bytes(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


def _proof(vector: dict[str, Any]) -> IndexProof:
    return IndexProof(
        siblings=tuple(bytes.fromhex(s) for s in vector["siblings"]),
        other_key=_bytes(vector["other_key"]),
        other_value_hash=_bytes(vector["other_value_hash"]),
    )


def _check(vector: dict[str, Any]) -> None:
    root, key = bytes.fromhex(vector["root"]), bytes.fromhex(vector["key"])
    if vector["kind"] == "entry":
        verify_index_entry(
            root=root, key=key, value_hash=bytes.fromhex(vector["value_hash"]), proof=_proof(vector)
        )
    else:
        verify_index_absence(root=root, key=key, proof=_proof(vector))


def test_the_file_is_what_the_reference_writes() -> None:
    """The committed vectors are the reference's output (regenerate with its module)."""
    assert ref.VECTORS_FILE.read_text(encoding="utf-8") == ref.render()


def test_the_vectors_cover_every_case() -> None:
    """Entry and absence, ending empty and at another leaf, both refusal classes."""
    kinds = {
        (v["kind"], v["error"], v["other_key"] is not None)
        for v in VECTORS
        if v["kind"] == "absence" or v["error"] is None
    }
    assert {
        ("entry", None, False),
        ("absence", None, False),
        ("absence", None, True),
        ("absence", "RootMismatchError", False),
        ("absence", "RootMismatchError", True),
        ("absence", "IndexProofError", True),
    } <= kinds
    assert max(len(v["siblings"]) for v in VECTORS if v["error"] is None) >= 39


@pytest.mark.parametrize("tree", DOCUMENT["trees"], ids=lambda t: t["name"])
def test_roots_agree_with_the_reference(tree: dict[str, Any]) -> None:
    """IndexTree and reference_root give the root of the vectors' independent definition."""
    pairs = {bytes.fromhex(k): bytes.fromhex(v) for k, v in tree["entries"]}
    built = IndexTree()
    built.update(pairs.items())
    assert built.root().hex() == tree["root"]
    assert reference_root(pairs).hex() == tree["root"]


VALID = [v for v in VECTORS if v["error"] is None]
INVALID = [v for v in VECTORS if v["error"] is not None]


@pytest.mark.parametrize("vector", VALID, ids=lambda v: f"{v['tree']}: {v['note']}")
def test_honest_proofs_verify_and_equal_the_tree_s(vector: dict[str, Any]) -> None:
    """Each honest proof verifies and is exactly the proof IndexTree gives."""
    _check(vector)
    tree = next(t for t in DOCUMENT["trees"] if t["name"] == vector["tree"])
    built = IndexTree()
    built.update((bytes.fromhex(k), bytes.fromhex(v)) for k, v in tree["entries"])
    assert built.proof(bytes.fromhex(vector["key"])) == _proof(vector)


@pytest.mark.parametrize("vector", INVALID, ids=lambda v: f"{v['tree']}: {v['note']}")
def test_corrupted_proofs_are_refused_by_name(vector: dict[str, Any]) -> None:
    """Each corruption raises the class the reference names (never passes, never crashes)."""
    with pytest.raises(MerkleProofError) as caught:
        _check(vector)
    assert type(caught.value).__name__ == vector["error"], caught.value


SPACE = [(n << 253).to_bytes(32, "big") for n in range(8)]
"""Eight keys differing in their first three bits (every tree shape over them)."""


def _value(key: bytes) -> bytes:
    return ref.leaf_hash(key, b"value")


def test_brute_force_every_subset_of_a_small_key_space() -> None:
    """For every set of keys: the root is the definition's; every key proves present or
    absent as it is; and no present key is proven absent by any proof built from the tree's
    own nodes (each other leaf at each depth of its path, or an empty end)."""
    refused = 0
    for size in range(len(SPACE) + 1):
        for chosen in itertools.combinations(SPACE, size):
            pairs = {key: _value(key) for key in chosen}
            tree = IndexTree()
            tree.update(pairs.items())
            root = tree.root()
            assert root == ref.root(pairs) == reference_root(pairs)
            for key in SPACE:
                proof = tree.proof(key)
                if key in pairs:
                    verify_index_entry(root=root, key=key, value_hash=pairs[key], proof=proof)
                    refused += _forged_absences_refused(root, key, tree, pairs)
                else:
                    verify_index_absence(root=root, key=key, proof=proof)
                    with pytest.raises(MerkleProofError):
                        verify_index_entry(root=root, key=key, value_hash=_value(key), proof=proof)
    assert refused > 1000


def _forged_absences_refused(
    root: bytes, key: bytes, tree: IndexTree, pairs: dict[bytes, bytes]
) -> int:
    """Try every absence proof of ``key`` made of the tree's own siblings; count refusals."""
    count = 0
    paths = [tree.proof(other).siblings for other in pairs] + [tree.proof(key).siblings]
    for siblings in paths:
        for depth in range(len(siblings) + 1):
            ends: list[tuple[bytes | None, bytes | None]] = [(None, None)]
            ends += list(pairs.items())
            for other_key, other_value in ends:
                forged = IndexProof(
                    siblings=siblings[:depth], other_key=other_key, other_value_hash=other_value
                )
                with pytest.raises(MerkleProofError):
                    verify_index_absence(root=root, key=key, proof=forged)
                count += 1
    return count
