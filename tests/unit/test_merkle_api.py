"""ledger.merkle preconditions, error types and the pure building blocks, one behaviour each."""

from __future__ import annotations

import pytest

import ledger.merkle
from ledger.errors import VerificationError
from ledger.merkle import (
    EMPTY_ROOT,
    LogState,
    MemoryLog,
    MissingNodeError,
    Node,
    NodeId,
    OutOfRangeError,
    ProofPlan,
    ProofShapeError,
    RootMismatchError,
    append,
    consistency_proof_plan,
    hash_leaf,
    inclusion_proof_plan,
    plan_append,
    root_from_inclusion_proof,
    state_nodes,
    verify_consistency,
    verify_inclusion,
)
from ledger.merkle.border import BORDER_CACHE_SIZES

LEAF = hash_leaf(b"leaf")


def test_all_is_sorted_and_complete() -> None:
    """The package exports an isort-sorted __all__ (constants, classes, functions) that exists."""
    names = ledger.merkle.__all__
    assert names == sorted(names, key=lambda name: (not name.isupper(), name[0].islower(), name))
    assert all(hasattr(ledger.merkle, name) for name in ledger.merkle.__all__)


class TestVerifierPreconditions:
    """Verifiers check their arguments first and say exactly what is wrong."""

    def test_index_beyond_size(self) -> None:
        """An index at or beyond the size is named with both numbers."""
        with pytest.raises(ProofShapeError, match=r"^index 9 is beyond size 8$"):
            verify_inclusion(leaf_hash=LEAF, index=9, size=8, proof=[], root=LEAF)

    def test_negative_index(self) -> None:
        """A negative index is refused."""
        with pytest.raises(ProofShapeError, match=r"^index -1 is negative$"):
            root_from_inclusion_proof(leaf_hash=LEAF, index=-1, size=8, proof=[])

    def test_short_leaf_hash(self) -> None:
        """A leaf hash that is not 32 bytes is refused."""
        with pytest.raises(ProofShapeError, match=r"^leaf hash is 3 bytes, want 32$"):
            root_from_inclusion_proof(leaf_hash=b"abc", index=0, size=1, proof=[])

    def test_wrong_inclusion_length(self) -> None:
        """A proof of the wrong length says how many hashes it should have."""
        with pytest.raises(ProofShapeError, match=r"index 5 in size 8 has 1 hashes, want 3$"):
            root_from_inclusion_proof(leaf_hash=LEAF, index=5, size=8, proof=[LEAF])

    def test_short_proof_hash(self) -> None:
        """A proof hash that is not 32 bytes is refused."""
        with pytest.raises(ProofShapeError, match=r"^proof hash 1 is 2 bytes, want 32$"):
            root_from_inclusion_proof(leaf_hash=LEAF, index=0, size=4, proof=[LEAF, b"ab"])

    def test_root_mismatch_carries_both(self) -> None:
        """A wrong root raises RootMismatchError carrying expected and calculated roots."""
        with pytest.raises(RootMismatchError, match=r"^root mismatch: expected 00+, calc") as info:
            verify_inclusion(leaf_hash=LEAF, index=0, size=1, proof=[], root=bytes(32))
        assert info.value.expected == bytes(32)
        assert info.value.calculated == LEAF
        assert isinstance(info.value, VerificationError)

    def test_size1_greater_than_size2(self) -> None:
        """A shrinking tree is refused."""
        with pytest.raises(ProofShapeError, match=r"^size1 5 is greater than size2 3$"):
            verify_consistency(size1=5, size2=3, proof=[], root1=LEAF, root2=LEAF)

    def test_negative_size1(self) -> None:
        """A negative size is refused."""
        with pytest.raises(ProofShapeError, match=r"^size1 -1 is negative$"):
            verify_consistency(size1=-1, size2=3, proof=[], root1=LEAF, root2=LEAF)

    def test_equal_sizes_with_proof(self) -> None:
        """Equal sizes with proof hashes are refused."""
        with pytest.raises(ProofShapeError, match=r"^sizes are equal \(4\) but the proof has 1"):
            verify_consistency(size1=4, size2=4, proof=[LEAF], root1=LEAF, root2=LEAF)

    def test_empty_trees_need_empty_root(self) -> None:
        """Two empty trees are consistent only with the empty tree's root."""
        verify_consistency(size1=0, size2=0, proof=[], root1=EMPTY_ROOT, root2=EMPTY_ROOT)
        with pytest.raises(RootMismatchError, match=r"root mismatch"):
            verify_consistency(size1=0, size2=0, proof=[], root1=LEAF, root2=LEAF)

    def test_from_empty_tree(self) -> None:
        """A consistency proof from size 0 is refused as meaningless."""
        with pytest.raises(ProofShapeError, match=r"^a consistency proof from size 0 to size 3"):
            verify_consistency(size1=0, size2=3, proof=[], root1=EMPTY_ROOT, root2=LEAF)

    def test_wrong_consistency_length(self) -> None:
        """A consistency proof of the wrong length says how many hashes it should have."""
        with pytest.raises(ProofShapeError, match=r"from size 6 to size 8 has 0 hashes, want 3$"):
            verify_consistency(size1=6, size2=8, proof=[], root1=LEAF, root2=LEAF)


class TestPlans:
    """Proof plans name O(log n) stored nodes and refuse impossible requests."""

    def test_inclusion_plan_beyond_size(self) -> None:
        """An index beyond the size is a request error, not a verification error."""
        with pytest.raises(OutOfRangeError, match=r"^index 8 is beyond size 8$"):
            inclusion_proof_plan(index=8, size=8)

    def test_inclusion_plan_negative_index(self) -> None:
        """A negative index is refused."""
        with pytest.raises(OutOfRangeError, match=r"^index -2 is negative$"):
            inclusion_proof_plan(index=-2, size=8)

    def test_consistency_plan_shrinking(self) -> None:
        """size1 greater than size2 is refused."""
        with pytest.raises(OutOfRangeError, match=r"^size1 9 is greater than size2 8$"):
            consistency_proof_plan(size1=9, size2=8)

    def test_consistency_plan_negative(self) -> None:
        """A negative size1 is refused."""
        with pytest.raises(OutOfRangeError, match=r"^size1 -1 is negative$"):
            consistency_proof_plan(size1=-1, size2=8)

    def test_consistency_plan_from_empty(self) -> None:
        """A proof from the empty tree is refused, as the verifier refuses it."""
        with pytest.raises(OutOfRangeError, match=r"from size 0 to size 8 proves nothing$"):
            consistency_proof_plan(size1=0, size2=8)

    def test_equal_sizes_plan_is_empty(self) -> None:
        """Equal sizes need no hashes."""
        assert consistency_proof_plan(size1=5, size2=5).parts == ()

    def test_ephemeral_node(self) -> None:
        """Leaf 0 of 7 needs leaf 1, node (1, 1), and the right border [4, 7) from two nodes."""
        plan = inclusion_proof_plan(index=0, size=7)
        assert plan.parts == ((NodeId(0, 1),), (NodeId(1, 1),), (NodeId(1, 2), NodeId(0, 6)))

    def test_plan_is_logarithmic(self) -> None:
        """A proof in a tree of 10 million leaves needs at most 2 log2 n nodes."""
        size = 10_000_000
        for index in (0, 1, 4_999_999, size - 2, size - 1):
            assert len(inclusion_proof_plan(index=index, size=size).nodes) <= 2 * 24
        assert len(consistency_proof_plan(size1=3_333_333, size2=size).nodes) <= 2 * 24

    def test_assemble_missing_node(self) -> None:
        """Assembling without a needed node names it."""
        plan = inclusion_proof_plan(index=0, size=2)
        with pytest.raises(MissingNodeError, match=r"node \(level 0, index 1\) is needed"):
            plan.assemble({})

    def test_empty_part_refused(self) -> None:
        """A plan part made of no nodes is refused."""
        with pytest.raises(ValueError, match=r"^proof hash 0 is planned from no nodes$"):
            ProofPlan(parts=((),))


class TestLogState:
    """The compact append state validates itself and appends purely."""

    def test_state_nodes(self) -> None:
        """Size 13 = 8 + 4 + 1 decomposes into three perfect subtrees."""
        assert state_nodes(13) == (NodeId(3, 0), NodeId(2, 2), NodeId(0, 12))

    def test_state_nodes_negative(self) -> None:
        """A negative size is refused."""
        with pytest.raises(OutOfRangeError, match=r"^size -1 is negative$"):
            state_nodes(-1)

    def test_wrong_border_count(self) -> None:
        """A state needs one hash per set bit of its size."""
        with pytest.raises(ValueError, match=r"^a log of size 3 has 2 border hashes, got 1$"):
            LogState.from_nodes(3, [LEAF])

    def test_wrong_border_hash_size(self) -> None:
        """Border hashes are 32 bytes."""
        with pytest.raises(ValueError, match=r"^border hash 0 is 1 bytes, want 32$"):
            LogState.from_nodes(1, [b"x"])

    def test_negative_size(self) -> None:
        """A negative size is refused."""
        with pytest.raises(OutOfRangeError, match=r"^size -1 is negative$"):
            LogState(size=-1, hashes=())

    def test_empty_root(self) -> None:
        """The empty state has the empty tree's root."""
        assert LogState.empty().root() == EMPTY_ROOT

    def test_append_emits_every_node(self) -> None:
        """Appending 4 leaves to 3 emits each leaf followed by the nodes it completes."""
        hashes = [hash_leaf(bytes([i])) for i in range(7)]
        state, _ = append(LogState.empty(), hashes[:3])
        new_state, nodes = append(state, hashes[3:])
        assert [(n.level, n.index) for n in nodes] == [
            (0, 3), (1, 1), (2, 0), (0, 4), (0, 5), (1, 2), (0, 6),
        ]  # fmt: skip
        assert all(isinstance(node, Node) for node in nodes)
        assert new_state.size == 7
        assert state.size == 3  # the old state is untouched

    def test_append_refuses_bad_hash(self) -> None:
        """A leaf hash of the wrong size is refused before anything is planned."""
        with pytest.raises(ValueError, match=r"^leaf hash 1 is 31 bytes, want 32$"):
            plan_append(LogState.empty(), [LEAF, LEAF[:31]])


class TestMemoryLog:
    """The in-memory log refuses requests beyond its size."""

    def test_size_beyond_log(self) -> None:
        """A proof for a size the log does not have yet is refused."""
        log = MemoryLog()
        log.append([b"a", b"b"])
        with pytest.raises(OutOfRangeError, match=r"^size 3 is beyond the log size 2$"):
            log.inclusion_proof(index=0, size=3)
        with pytest.raises(OutOfRangeError, match=r"^size 5 is beyond the log size 2$"):
            log.consistency_proof(size1=1, size2=5)
        with pytest.raises(OutOfRangeError, match=r"^size 4 is beyond the log size 2$"):
            log.root_at(4)

    def test_leaf_hash_beyond_size(self) -> None:
        """A leaf beyond the log is refused."""
        log = MemoryLog()
        log.append([b"a"])
        assert log.leaf_hash(0) == hash_leaf(b"a")
        with pytest.raises(OutOfRangeError, match=r"^index 1 is beyond size 1$"):
            log.leaf_hash(1)

    def test_border_cache_evicts_least_recent(self) -> None:
        """Proofs stay right while the folded borders of many sizes come and go."""
        log = MemoryLog()
        log.append([bytes([i]) for i in range(100)])
        sizes = list(range(3, 100, 2))  # odd sizes: every proof of leaf 0 has an ephemeral hash
        assert len(sizes) > 2 * BORDER_CACHE_SIZES
        first = {size: log.inclusion_proof(index=0, size=size) for size in sizes}
        roots = {size: log.root_at(size) for size in reversed(sizes)}
        for size in sizes:
            assert log.inclusion_proof(index=0, size=size) == first[size]
            verify_inclusion(
                leaf_hash=hash_leaf(b"\x00"),
                index=0,
                size=size,
                proof=first[size],
                root=roots[size],
            )

    def test_append_returns_first_index(self) -> None:
        """append returns the index of the first appended leaf."""
        log = MemoryLog()
        assert log.append([b"a", b"b"]) == 0
        assert log.append_hashes([LEAF]) == 2
        assert log.size == 3
        log.close()
