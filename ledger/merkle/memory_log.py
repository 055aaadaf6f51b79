"""A Merkle log held in memory: the reference store, and the fake for tests of its users.

It stores every complete perfect subtree, one list per level (``levels[level][index]``), so a
proof is index arithmetic over those lists: O(log n) lookups, no hashing except for the one
proof hash that may lie on the partial right border of the tree. Those right-border hashes
are folded once per tree size and kept for the sizes most recently asked about
(:mod:`ledger.merkle.border`). The SQLite log (``gateway.store.merkle_nodes``) has the same methods
and walks the same path with :func:`ledger.merkle.proof.sibling_path`; the tests check each
against the other and against the recursive RFC 9162 definition.
"""

from __future__ import annotations

from collections.abc import Iterable

from .border import BorderCache
from .compact import LogState, plan_append
from .errors import OutOfRangeError
from .hasher import EMPTY_ROOT, hash_leaf
from .proof import check_consistency_request, check_inclusion_request


class MemoryLog:
    """An append-only RFC 9162 log in memory."""

    def __init__(self) -> None:
        self._state = LogState.empty()
        self._levels: list[list[bytes]] = []  # self._levels[level][index]
        self._borders = BorderCache()

    @property
    def size(self) -> int:
        """The number of leaves."""
        return self._state.size

    def root(self) -> bytes:
        """The root of the whole log."""
        return self._state.root()

    def append(self, leaf_datas: Iterable[bytes]) -> int:
        """Append leaves given as their data; return the index of the first one."""
        return self.append_hashes(map(hash_leaf, leaf_datas))

    def append_hashes(self, leaf_hashes: Iterable[bytes]) -> int:
        """Append leaves given as their leaf hashes; return the index of the first one."""
        plan = plan_append(self._state, leaf_hashes)
        levels = self._levels
        if not levels:
            levels.append([])
        levels[0].extend(plan.leaves)
        for level, value in zip(plan.levels, plan.hashes, strict=True):
            if level == len(levels):
                levels.append([])
            levels[level].append(value)
        self._state = plan.state
        return plan.first

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        if not 0 <= index < self._state.size:
            raise OutOfRangeError(f"index {index} is beyond size {self._state.size}")
        return self._levels[0][index]

    def inclusion_proof(self, *, index: int, size: int) -> list[bytes]:
        """The inclusion proof of leaf ``index`` in the tree of the first ``size`` leaves."""
        self._check_size(size)
        check_inclusion_request(index=index, size=size)
        return self._path(index, size, 0)

    def consistency_proof(self, *, size1: int, size2: int) -> list[bytes]:
        """The proof that the tree of ``size2`` leaves extends the tree of ``size1`` leaves."""
        self._check_size(size2)
        if not check_consistency_request(size1=size1, size2=size2):
            return []
        # As in ledger.merkle.proof.consistency_proof_plan: the root of the largest perfect
        # subtree ending at size1 (unless it is the whole old tree), then the path above it.
        shift = (size1 & -size1).bit_length() - 1
        path = self._path(size1 - 1, size2, shift)
        if size1 != 1 << shift:
            path.insert(0, self._levels[shift][(size1 - 1) >> shift])
        return path

    def root_at(self, size: int) -> bytes:
        """The root of the tree of the first ``size`` leaves."""
        self._check_size(size)
        return self._border(size)[0] if size else EMPTY_ROOT

    def close(self) -> None:
        """Nothing to release; present so both logs can be used alike."""

    def _check_size(self, size: int) -> None:
        if size > self._state.size:
            raise OutOfRangeError(f"size {size} is beyond the log size {self._state.size}")

    def _path(self, index: int, size: int, start: int) -> list[bytes]:
        """The inclusion path of ``index`` in ``size`` from level ``start``.

        The same walk as :func:`ledger.merkle.proof.sibling_path`, reading hashes directly.
        """
        levels = self._levels
        last = size - 1
        inner = (index ^ last).bit_length()
        proof = [levels[level][(index >> level) ^ 1] for level in range(start, inner - 1)]
        if inner > start:
            top = inner - 1
            sibling = (index >> top) + 1
            if (sibling + 1) << top <= size:
                proof.append(levels[top][sibling])
            else:  # the partial right-border subtree: the state nodes below `top`, folded
                proof.append(self._border(size)[(size >> top).bit_count()])
        level = max(start, inner)
        node = index >> level
        add = proof.append
        while node:
            if node & 1:
                add(levels[level][node - 1])
            node >>= 1
            level += 1
        return proof

    def _border(self, size: int) -> list[bytes]:
        return self._borders.folds(size, self._state_hashes)

    def _state_hashes(self, size: int) -> list[bytes]:
        """The hashes of ``state_nodes(size)``: node ``(L, (size >> L) - 1)`` per set bit L."""
        levels = self._levels
        return [
            levels[level][(size >> level) - 1]
            for level in range(size.bit_length() - 1, -1, -1)
            if (size >> level) & 1
        ]
