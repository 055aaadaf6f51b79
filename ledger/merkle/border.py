"""The right border of a tree size, folded: the hashes a proof recomputes rather than stores.

For a tree of ``size`` leaves with state nodes ``s_0, s_1, ..., s_k`` (largest first, see
:func:`~ledger.merkle.nodes.state_nodes`), entry ``j`` of the folded border is
``s_j`` folded with everything to its right: ``H(s_j, H(s_j+1, ... s_k))``. Entry 0 is the
root, and the partial ("ephemeral") right-border subtree at level ``L`` is entry
``(size >> L).bit_count()``, the fold of the state nodes below ``L``. Stored nodes never
change, so a folded border never goes stale and is worth keeping for the sizes proofs are
asked about (usually the latest checkpoint's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from .hasher import hash_children

BORDER_CACHE_SIZES: Final = 16
"""How many tree sizes a :class:`BorderCache` keeps (about ``log2 n`` hashes each)."""


def fold_border(hashes: Sequence[bytes]) -> list[bytes]:
    """The folded border from the state node hashes of a non-empty tree, largest first."""
    folds = list(hashes)
    for position in range(len(folds) - 2, -1, -1):
        folds[position] = hash_children(folds[position], folds[position + 1])
    return folds


class BorderCache:
    """The folded borders of the :data:`BORDER_CACHE_SIZES` most recently used tree sizes."""

    def __init__(self) -> None:
        self._folds: dict[int, list[bytes]] = {}

    def folds(self, size: int, state_hashes: Callable[[int], Sequence[bytes]]) -> list[bytes]:
        """The folded border of ``size`` (> 0), from ``state_hashes(size)`` on a miss."""
        folds = self._folds.pop(size, None)  # re-inserted last: least recently used first
        if folds is None:
            folds = fold_border(state_hashes(size))
            if len(self._folds) >= BORDER_CACHE_SIZES:
                del self._folds[next(iter(self._folds))]
        self._folds[size] = folds
        return folds
