"""The O(log n) append state of a log: its size and the hashes of its right border.

A tree of ``size`` leaves is the sequence of perfect subtrees of the binary decomposition of
``size`` (:func:`~ledger.merkle.nodes.state_nodes`); their hashes are enough to append more
leaves and to compute the RFC 9162 root. :func:`append` is a pure planner: it returns the new
state and every node completed by the appended leaves, and leaves storing them to the caller,
so that any store (in memory, sqlite3, aiosqlite) can write them in its own transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat

from .errors import OutOfRangeError
from .hasher import EMPTY_ROOT, HASH_SIZE, NODE_PREFIX, hash_children
from .nodes import Node


@dataclass(frozen=True, slots=True, kw_only=True)
class LogState:
    """A log of ``size`` leaves, as the hashes of the perfect subtrees of its decomposition.

    ``hashes`` follow :func:`~ledger.merkle.nodes.state_nodes` order: largest subtree first.
    """

    size: int
    hashes: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if self.size < 0:
            raise OutOfRangeError(f"size {self.size} is negative")
        want = self.size.bit_count()
        if len(self.hashes) != want:
            raise ValueError(
                f"a log of size {self.size} has {want} border hashes, got {len(self.hashes)}"
            )
        for position, value in enumerate(self.hashes):
            if len(value) != HASH_SIZE:
                raise ValueError(f"border hash {position} is {len(value)} bytes, want {HASH_SIZE}")

    @classmethod
    def empty(cls) -> LogState:
        """The state of a log with no leaves."""
        return cls(size=0, hashes=())

    @classmethod
    def from_nodes(cls, size: int, hashes: Sequence[bytes]) -> LogState:
        """The state of a log of ``size`` from the hashes of ``state_nodes(size)``, in order."""
        return cls(size=size, hashes=tuple(hashes))

    def root(self) -> bytes:
        """The RFC 9162 Merkle tree hash of the log: the border folded from the right."""
        if not self.hashes:
            return EMPTY_ROOT
        result = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            result = hash_children(left, result)
        return result


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendPlan:
    """What appending a batch of leaves does: the new state and the nodes to store.

    The nodes are held as columns (the leaves, and the interior nodes in the order they
    complete) because tuples kept per node cost the garbage collector more than the hashing
    itself; :meth:`rows` streams them to a store in completion order.
    """

    state: LogState
    first: int
    leaves: list[bytes]
    levels: list[int]
    indices: list[int]
    hashes: list[bytes]

    def rows(self) -> Iterator[tuple[int, int, bytes]]:
        """Every new node as a ``(level, index, hash)`` row, in the order the nodes complete.

        Each leaf comes with the interior nodes it completes, bottom up (leaf ``p`` completes
        one node per trailing zero bit of ``p + 1``), so every node follows its children and
        a store keyed by completion order (``gateway.store.merkle_nodes``) only ever appends.
        """
        interior = zip(self.levels, self.indices, self.hashes, strict=True)
        completes = next
        for position, leaf in enumerate(self.leaves, self.first):
            yield 0, position, leaf
            ended = position + 1
            while not ended & 1:
                yield completes(interior)
                ended >>= 1

    def nodes(self) -> list[Node]:
        """Every new node, in the order of :meth:`rows`."""
        return list(map(tuple.__new__, repeat(Node), self.rows()))


def plan_append(state: LogState, leaf_hashes: Iterable[bytes]) -> AppendPlan:
    """Plan appending ``leaf_hashes`` to ``state``; nothing is mutated.

    Raises ``ValueError`` before planning anything if a hash is not 32 bytes long.
    """
    leaves = list(leaf_hashes)
    if leaves and set(map(len, leaves)) != {HASH_SIZE}:
        position, value = next((i, h) for i, h in enumerate(leaves) if len(h) != HASH_SIZE)
        raise ValueError(f"leaf hash {position} is {len(value)} bytes, want {HASH_SIZE}")
    first = state.size
    border = list(state.hashes)
    levels: list[int] = []
    indices: list[int] = []
    hashes: list[bytes] = []
    # The loop runs once per leaf: bound methods, and hash_children inlined.
    push, pop = border.append, border.pop
    add_level, add_index, add_hash = levels.append, indices.append, hashes.append
    sha256 = hashlib.sha256
    for position, leaf in enumerate(leaves, first):
        node = leaf
        level = 0
        index = position
        while index & 1:
            node = sha256(NODE_PREFIX + pop() + node).digest()
            level += 1
            index >>= 1
            add_level(level)
            add_index(index)
            add_hash(node)
        push(node)
    return AppendPlan(
        state=LogState(size=first + len(leaves), hashes=tuple(border)),
        first=first,
        leaves=leaves,
        levels=levels,
        indices=indices,
        hashes=hashes,
    )


def append(state: LogState, leaf_hashes: Iterable[bytes]) -> tuple[LogState, list[Node]]:
    """Append ``leaf_hashes`` to ``state``; return the new state and every node they complete.

    The nodes come in the order they complete: each leaf, then the interior nodes it
    completes, so every node follows its children. Nothing is mutated: a caller
    that fails to store the nodes keeps using the old state. Stores that can take rows as a
    stream should prefer :func:`plan_append`, which builds no object per node.
    """
    plan = plan_append(state, leaf_hashes)
    return plan.state, plan.nodes()
