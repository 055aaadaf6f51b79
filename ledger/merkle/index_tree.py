"""The device index tree: a compressed sparse Merkle tree keyed by SHA-256 of the device id.

Every checkpoint of evidence v2 commits to one entry per device (``ledger.device_index``).
The entries sit in a binary tree whose shape is fixed by the keys alone, so the root is a
function of the *set* of (key, value) pairs and nothing else:

- a subtree that holds no entry hashes to ``EMPTY_NODE`` (32 zero bytes);
- a subtree that holds exactly one entry hashes to its leaf hash
  ``SHA-256(0x00 ‖ key ‖ value_hash)``, whatever its depth (the path is compressed);
- a subtree with two or more entries hashes to ``SHA-256(0x01 ‖ left ‖ right)``, where left
  holds the keys whose bit at this depth is 0 (bit 0 is the most significant bit of key[0]).

Why this shape: an entry's position is the path its key spells, so a proof is checked along
that one path and **no root can hold two entries for one key** — a second entry would need a
second position on the same path, where the node above it is either a leaf hash or a node
hash, never both (the 0x00 / 0x01 prefixes keep them apart). A proof is the list of sibling
hashes from the root down to the entry: its length is the entry's depth, O(log n) for n
random keys. Changing one entry rehashes only its path.

A proof that a key is *absent* ends at an empty subtree or at another key's leaf that shares
the path so far; it carries that leaf's key and value hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from .errors import MerkleProofError, RootMismatchError

__all__ = [
    "EMPTY_NODE",
    "KEY_BITS",
    "IndexProof",
    "IndexProofError",
    "IndexTree",
    "index_leaf_hash",
    "index_node_hash",
    "reference_root",
    "root_from_index_proof",
    "verify_index_absence",
    "verify_index_entry",
]

KEY_BITS: Final = 256
EMPTY_NODE: Final = bytes(32)
"""The hash of a subtree with no entry."""

_LEAF: Final = b"\x00"
_NODE: Final = b"\x01"


class IndexProofError(MerkleProofError):
    """A device index proof is malformed or does not lead to the root it is checked against."""


def index_leaf_hash(key: bytes, value_hash: bytes) -> bytes:
    """The hash of a subtree holding one entry: SHA-256(0x00 ‖ key ‖ value_hash)."""
    return hashlib.sha256(_LEAF + key + value_hash).digest()


def index_node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of a subtree with two or more entries: SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(_NODE + left + right).digest()


def _bit(key_int: int, depth: int) -> int:
    return (key_int >> (KEY_BITS - 1 - depth)) & 1


def _check_hash(value: bytes, what: str) -> None:
    if type(value) is not bytes or len(value) != 32:
        raise IndexProofError(f"{what} must be 32 bytes, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexProof:
    """Sibling hashes from the root down (``siblings[0]`` is the root's other child).

    For an absence proof that ends at another key's leaf, ``other_key`` and
    ``other_value_hash`` name that leaf; both are ``None`` when the path ends empty.
    """

    siblings: tuple[bytes, ...]
    other_key: bytes | None = None
    other_value_hash: bytes | None = None

    def __post_init__(self) -> None:
        if len(self.siblings) > KEY_BITS:
            raise IndexProofError(f"proof has {len(self.siblings)} siblings, at most 256")
        for depth, sibling in enumerate(self.siblings):
            _check_hash(sibling, f"sibling at depth {depth}")
        if (self.other_key is None) != (self.other_value_hash is None):
            raise IndexProofError("other_key and other_value_hash come together")
        if self.other_key is not None:
            _check_hash(self.other_key, "other key")
            assert self.other_value_hash is not None
            _check_hash(self.other_value_hash, "other value hash")


def root_from_index_proof(*, key: bytes, start: bytes, siblings: tuple[bytes, ...]) -> bytes:
    """The root reached from ``start`` (the hash at depth ``len(siblings)`` on key's path)."""
    key_int = int.from_bytes(key, "big")
    node = start
    for depth in range(len(siblings) - 1, -1, -1):
        sibling = siblings[depth]
        if _bit(key_int, depth):
            node = index_node_hash(sibling, node)
        else:
            node = index_node_hash(node, sibling)
    return node


def verify_index_entry(*, root: bytes, key: bytes, value_hash: bytes, proof: IndexProof) -> None:
    """Check that the index with ``root`` maps ``key`` to ``value_hash``.

    Raises :class:`IndexProofError` (or :class:`RootMismatchError`) naming what failed.
    """
    _check_hash(root, "root")
    _check_hash(key, "key")
    _check_hash(value_hash, "value hash")
    if proof.other_key is not None:
        raise IndexProofError("an entry proof must not name another key")
    calculated = root_from_index_proof(
        key=key, start=index_leaf_hash(key, value_hash), siblings=proof.siblings
    )
    if calculated != root:
        raise RootMismatchError(expected=root, calculated=calculated)


def verify_index_absence(*, root: bytes, key: bytes, proof: IndexProof) -> None:
    """Check that the index with ``root`` holds no entry for ``key``."""
    _check_hash(root, "root")
    _check_hash(key, "key")
    depth = len(proof.siblings)
    if proof.other_key is None:
        start = EMPTY_NODE
    else:
        assert proof.other_value_hash is not None
        if proof.other_key == key:
            raise IndexProofError("an absence proof ends at the key it claims is absent")
        key_int = int.from_bytes(key, "big")
        other_int = int.from_bytes(proof.other_key, "big")
        if any(_bit(key_int, d) != _bit(other_int, d) for d in range(depth)):
            raise IndexProofError("the other leaf does not lie on the key's path")
        start = index_leaf_hash(proof.other_key, proof.other_value_hash)
    calculated = root_from_index_proof(key=key, start=start, siblings=proof.siblings)
    if calculated != root:
        raise RootMismatchError(expected=root, calculated=calculated)


class _Leaf:
    __slots__ = ("hash", "key", "key_int", "value_hash")

    def __init__(self, key: bytes, value_hash: bytes) -> None:
        self.key = key
        self.key_int = int.from_bytes(key, "big")
        self.value_hash = value_hash
        self.hash = index_leaf_hash(key, value_hash)


class _Branch:
    __slots__ = ("hash", "left", "right")

    def __init__(self, left: _Node | None, right: _Node | None) -> None:
        self.left = left
        self.right = right
        self.hash: bytes | None = None


_Node = _Leaf | _Branch


def _hash(node: _Node | None) -> bytes:
    if node is None:
        return EMPTY_NODE
    if node.hash is None:
        assert isinstance(node, _Branch)
        node.hash = index_node_hash(_hash(node.left), _hash(node.right))
    return node.hash


def _join(a: _Leaf, b: _Leaf, depth: int) -> _Branch:
    """The smallest subtree at ``depth`` that holds the two distinct leaves."""
    top = _Branch(None, None)
    branch = top
    while _bit(a.key_int, depth) == _bit(b.key_int, depth):
        child = _Branch(None, None)
        if _bit(a.key_int, depth):
            branch.right = child
        else:
            branch.left = child
        branch = child
        depth += 1
    if _bit(a.key_int, depth):
        branch.left, branch.right = b, a
    else:
        branch.left, branch.right = a, b
    return top


def _build(leaves: list[_Leaf], depth: int) -> _Node | None:
    """The subtree at ``depth`` of ``leaves`` (sorted by key, sharing their first bits)."""
    if len(leaves) <= 1:
        return leaves[0] if leaves else None
    shift = KEY_BITS - 1 - depth
    low, high = 0, len(leaves)
    while low < high:  # the first leaf whose bit at ``depth`` is 1
        middle = (low + high) // 2
        if (leaves[middle].key_int >> shift) & 1:
            high = middle
        else:
            low = middle + 1
    return _Branch(_build(leaves[:low], depth + 1), _build(leaves[low:], depth + 1))


class IndexTree:
    """The device index as a mutable tree with cached node hashes.

    ``set`` costs O(depth) node visits and marks the path for rehashing; ``root`` rehashes
    only marked nodes, so a checkpoint that changes k of n entries costs O(k log n) hashes.
    """

    def __init__(self) -> None:
        self._root: _Node | None = None
        self._values: dict[bytes, bytes] = {}

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def get(self, key: bytes) -> bytes | None:
        """The value hash stored for ``key``, if any."""
        return self._values.get(key)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """(key, value hash) pairs in key order."""
        for key in sorted(self._values):
            yield key, self._values[key]

    def set(self, key: bytes, value_hash: bytes) -> None:
        """Insert or replace the entry for ``key``."""
        _check_hash(key, "key")
        _check_hash(value_hash, "value hash")
        if self._values.get(key) == value_hash:
            return
        self._values[key] = value_hash
        leaf = _Leaf(key, value_hash)
        if self._root is None:
            self._root = leaf
            return
        parent: _Branch | None = None
        node: _Node = self._root
        key_int = leaf.key_int
        shift = KEY_BITS - 1  # the bit at depth d is (key_int >> (255 - d)) & 1
        while type(node) is _Branch:
            node.hash = None
            parent = node
            if (key_int >> shift) & 1:
                child = node.right
                if child is None:
                    node.right = leaf
                    return
            else:
                child = node.left
                if child is None:
                    node.left = leaf
                    return
            node = child
            shift -= 1
        assert isinstance(node, _Leaf)
        depth = KEY_BITS - 1 - shift
        replacement: _Node = leaf if node.key == key else _join(node, leaf, depth)
        if parent is None:
            self._root = replacement
        elif (key_int >> (shift + 1)) & 1:
            parent.right = replacement
        else:
            parent.left = replacement

    def update(self, pairs: Iterable[tuple[bytes, bytes]]) -> None:
        """``set`` for each (key, value hash); into an empty tree, one bulk build instead."""
        if self._root is not None:
            for key, value_hash in pairs:
                self.set(key, value_hash)
            return
        values: dict[bytes, bytes] = {}
        for key, value_hash in pairs:
            _check_hash(key, "key")
            _check_hash(value_hash, "value hash")
            values[key] = value_hash
        self._values = values
        leaves = sorted((_Leaf(key, value) for key, value in values.items()),
                        key=lambda leaf: leaf.key_int)  # fmt: skip
        self._root = _build(leaves, 0)

    def root(self) -> bytes:
        """The index root (``EMPTY_NODE`` for an empty index)."""
        return _hash(self._root)

    def proof(self, key: bytes) -> IndexProof:
        """An entry proof if ``key`` is present, else an absence proof."""
        _check_hash(key, "key")
        key_int = int.from_bytes(key, "big")
        siblings: list[bytes] = []
        node = self._root
        depth = 0
        while isinstance(node, _Branch):
            if _bit(key_int, depth):
                siblings.append(_hash(node.left))
                node = node.right
            else:
                siblings.append(_hash(node.right))
                node = node.left
            depth += 1
        if node is None or node.key == key:
            return IndexProof(siblings=tuple(siblings))
        return IndexProof(
            siblings=tuple(siblings), other_key=node.key, other_value_hash=node.value_hash
        )


def reference_root(pairs: dict[bytes, bytes], depth: int = 0) -> bytes:
    """The root straight from the definition (recursive; for tests and auditors)."""
    if not pairs:
        return EMPTY_NODE
    if len(pairs) == 1:
        ((key, value_hash),) = pairs.items()
        return index_leaf_hash(key, value_hash)
    left = {k: v for k, v in pairs.items() if not _bit(int.from_bytes(k, "big"), depth)}
    right = {k: v for k, v in pairs.items() if _bit(int.from_bytes(k, "big"), depth)}
    return index_node_hash(reference_root(left, depth + 1), reference_root(right, depth + 1))
