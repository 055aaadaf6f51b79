"""Addresses of the perfect subtrees a log stores.

Node ``(level, index)`` is the root of the perfect subtree over leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 holds the leaf hashes themselves.
Only complete subtrees are ever stored, so a stored node never changes once written. Any other
node of the RFC 9162 tree lies on the right border of some tree size and is recomputed from the
stored nodes of :func:`range_nodes` ("ephemeral" nodes).

Both types are named tuples rather than dataclasses: the append path creates two of them per
leaf, and a tuple is also directly a row for ``executemany`` and a key for a mapping.
"""

from __future__ import annotations

from typing import NamedTuple

from .errors import OutOfRangeError


class NodeId(NamedTuple):
    """The address of a stored perfect subtree."""

    level: int
    # The field shadows tuple.index on purpose: the contract names it `index`.
    index: int  # type: ignore[assignment]


class Node(NamedTuple):
    """A stored perfect subtree with its hash."""

    level: int
    # The field shadows tuple.index on purpose: the contract names it `index`.
    index: int  # type: ignore[assignment]
    hash: bytes


def range_nodes(start: int, end: int) -> tuple[NodeId, ...]:
    """The perfect subtrees covering leaves ``[start, end)``, largest (leftmost) first.

    ``start`` must be a multiple of a power of two of at least ``end - start``, which holds for
    every range this package asks about (a whole tree, or the right part of a subtree).
    """
    ids: list[NodeId] = []
    while start < end:
        level = (end - start).bit_length() - 1
        ids.append(NodeId(level, start >> level))
        start += 1 << level
    return tuple(ids)


def state_nodes(size: int) -> tuple[NodeId, ...]:
    """The perfect subtrees of the binary decomposition of ``size``, largest first.

    Their hashes are all a log needs to append to, or compute the root of, a tree of ``size``.
    """
    if size < 0:
        raise OutOfRangeError(f"size {size} is negative")
    return range_nodes(0, size)
