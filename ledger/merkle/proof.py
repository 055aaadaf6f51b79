"""Proof construction, as plans: which stored nodes a proof needs and how to combine them.

A plan is pure: it names the stored :class:`~ledger.merkle.nodes.NodeId` s to fetch (at most
about ``2 log2 n``) and :meth:`ProofPlan.assemble` turns the fetched hashes into the RFC 9162
§2.1.3 inclusion proof or §2.1.4 consistency proof. Any store can then build a proof with one
batched read, inside whatever transaction it likes.

A proof hash is either one stored node or an "ephemeral" node on the right border of the tree,
which is recomputed by folding the stored perfect subtrees under it from the right. At most
one hash of a proof is ephemeral (see :func:`sibling_path`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import chain

from .errors import MissingNodeError, OutOfRangeError
from .hasher import hash_children
from .nodes import NodeId, range_nodes


@dataclass(frozen=True, slots=True, kw_only=True)
class ProofPlan:
    """One entry per proof hash: the stored nodes it is made of, folded from the right."""

    parts: tuple[tuple[NodeId, ...], ...]
    nodes: tuple[NodeId, ...] = field(init=False, repr=False, compare=False)
    """Every stored node the proof needs, each once, in proof order."""

    def __post_init__(self) -> None:
        if not all(self.parts):
            position = next(i for i, part in enumerate(self.parts) if not part)
            raise ValueError(f"proof hash {position} is planned from no nodes")
        object.__setattr__(self, "nodes", tuple(chain.from_iterable(self.parts)))

    def assemble(self, fetched: Mapping[NodeId, bytes]) -> list[bytes]:
        """The proof hashes, from the hashes of :attr:`nodes` (extra entries are ignored)."""
        if not all(map(fetched.__contains__, self.nodes)):
            level, index = next(node for node in self.nodes if node not in fetched)
            raise MissingNodeError(
                f"node (level {level}, index {index}) is needed but was not fetched"
            )
        proof: list[bytes] = []
        add = proof.append
        for part in self.parts:
            result = fetched[part[-1]]
            for node in part[-2::-1]:
                result = hash_children(fetched[node], result)
            add(result)
        return proof


def sibling_path(index: int, size: int, start: int) -> tuple[list[NodeId], int, int]:
    """The inclusion path of leaf ``index`` in a tree of ``size``, from level ``start`` up.

    Returns ``(nodes, ephemeral, level)``: one stored node per proof hash, in proof order,
    except at position ``ephemeral`` (``-1`` if none), where the proof hash is the
    right-border subtree of ``size`` at ``level``, covering leaves ``[first, size)`` for some
    ``first`` that is a multiple of ``2**level``; there ``nodes`` holds the stored node of
    that subtree if it is complete, and is otherwise a placeholder to be replaced.

    Let ``inner`` be the level where the paths to ``index`` and to the last leaf meet. Below
    ``inner - 1`` every sibling lies inside the complete left child of that meeting node, so
    it is stored. At ``inner - 1`` the sibling is the right child, which holds the last leaf
    and may be partial. Above ``inner`` the node lies on the right border and has a sibling
    only when that one is on the left, where it is always complete.
    """
    new = tuple.__new__  # NodeId(...) without the Python-level __new__: proofs are hot
    last = size - 1
    inner = (index ^ last).bit_length()
    nodes = [new(NodeId, (level, (index >> level) ^ 1)) for level in range(start, inner - 1)]
    ephemeral = top = -1
    if inner > start:
        top = inner - 1
        sibling = (index >> top) + 1  # bit `top` of index is 0, of last is 1
        if (sibling + 1) << top > size:
            ephemeral = len(nodes)
        nodes.append(new(NodeId, (top, sibling)))
    level = max(start, inner)
    node = index >> level
    while node:
        if node & 1:
            nodes.append(new(NodeId, (level, node - 1)))
        node >>= 1
        level += 1
    return nodes, ephemeral, top


def check_inclusion_request(*, index: int, size: int) -> None:
    """Refuse an inclusion proof of ``index`` in ``size`` that cannot exist."""
    if index < 0:
        raise OutOfRangeError(f"index {index} is negative")
    if index >= size:
        raise OutOfRangeError(f"index {index} is beyond size {size}")


def check_consistency_request(*, size1: int, size2: int) -> bool:
    """Refuse a consistency proof that cannot exist; return whether it has any hashes.

    Equal sizes need no proof hashes. A proof from the empty tree proves nothing and is refused,
    as verifiers refuse it (RFC 9162 §2.1.4 defines proofs for ``0 < size1 < size2``).
    """
    if size1 < 0:
        raise OutOfRangeError(f"size1 {size1} is negative")
    if size1 > size2:
        raise OutOfRangeError(f"size1 {size1} is greater than size2 {size2}")
    if size1 == size2:
        return False
    if size1 == 0:
        raise OutOfRangeError(f"a consistency proof from size 0 to size {size2} proves nothing")
    return True


def _parts(index: int, size: int, start: int) -> list[tuple[NodeId, ...]]:
    nodes, ephemeral, level = sibling_path(index, size, start)
    parts: list[tuple[NodeId, ...]] = [(node,) for node in nodes]
    if ephemeral >= 0:
        parts[ephemeral] = range_nodes(nodes[ephemeral].index << level, size)
    return parts


def inclusion_proof_plan(*, index: int, size: int) -> ProofPlan:
    """The plan of the inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
    check_inclusion_request(index=index, size=size)
    return ProofPlan(parts=tuple(_parts(index, size, 0)))


def consistency_proof_plan(*, size1: int, size2: int) -> ProofPlan:
    """The plan of the proof that the tree of ``size2`` leaves extends the one of ``size1``.

    The proof starts at the largest perfect subtree that ends at ``size1``: its root is the
    first proof hash, unless it is the whole old tree, whose root the verifier already has.
    The rest is the inclusion path of the last old leaf from that subtree's level.
    """
    if not check_consistency_request(size1=size1, size2=size2):
        return ProofPlan(parts=())
    shift = (size1 & -size1).bit_length() - 1
    parts = _parts(size1 - 1, size2, shift)
    if size1 != 1 << shift:
        parts.insert(0, (NodeId(shift, (size1 - 1) >> shift),))
    return ProofPlan(parts=tuple(parts))
