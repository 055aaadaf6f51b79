"""The log part of the audit: leaves, Merkle nodes and checkpoints recomputed and compared.

The store keeps the received COSE bytes (the leaves) and much that is derived from them:
leaf and node hashes, per-device chain state, decoded samples, signed checkpoints and the
local anchor table. :func:`gateway.audit.check_store` reads one consistent snapshot through
:class:`gateway.store.StoreReader` (the store opened read-only, so it is safe next to a
running gateway) and reports every place where a derived value no longer follows from the
leaves or a signature no longer verifies:

- ``leaves``: indexes ``0..size-1`` all present, ``message_hash`` = SHA-256 of the bytes;
- ``merkle_nodes``: every node recomputed from the stored leaves (RFC 9162), none missing,
  none beyond the log size;
- ``checkpoints``: the gateway's signature, the note's size and root equal the row's, the
  root recomputed from the leaves, and a consistency proof (built from the recomputed tree)
  between consecutive checkpoints that verifies against their signed roots;
- chains and samples (:mod:`gateway.audit.chains`): each device's seq/prev links, the
  device signature, the chain head and gap bookkeeping, and the decoded sample rows;
- ``anchors`` (:mod:`gateway.audit.anchors`, the local anchor table): the ledger's own
  local-anchor checks per entry, and the anchored root against the recomputed tree.

Memory is linear in the log size (the recomputed tree is held in memory).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.checkpoint import verify_checkpoint
from ledger.errors import VerificationError
from ledger.merkle import (
    LogState,
    MerkleProofError,
    NodeId,
    consistency_proof_plan,
    hash_children,
    hash_leaf,
    state_nodes,
    verify_consistency,
)

from ..store import CheckpointRecord, LeafRecord, StoreReader
from .report import Problem


@dataclass(slots=True, kw_only=True)
class Tree:
    """The tree recomputed from the stored leaves: every complete node."""

    size: int
    nodes: dict[NodeId, bytes] = field(default_factory=dict)

    def root(self, size: int) -> bytes:
        """The root of the first ``size`` leaves (every node it needs must be known)."""
        return LogState.from_nodes(size, [self.nodes[node] for node in state_nodes(size)]).root()


PAGE = 10_000
"""Leaves read per query."""


async def read_leaves(
    reader: StoreReader, size: int, problems: list[Problem], counts: dict[str, int]
) -> tuple[Tree, list[LeafRecord]]:
    """Check every stored leaf against the log size and its hash; the tree's level 0.

    Also returns the telemetry leaves (for the chain check).
    """
    tree = Tree(size=size)
    expected = 0
    telemetry: list[LeafRecord] = []
    after = -1
    while page := await reader.leaves_page(after=after, limit=PAGE):
        after = page[-1].leaf_index
        for leaf in page:
            expected = _check_leaf(leaf, tree, expected, problems)
            if leaf.kind == "telemetry":
                telemetry.append(leaf)
    problems.extend(_missing_leaf(missing) for missing in range(expected, size))
    counts["leaves"] = expected
    return tree, telemetry


def _check_leaf(leaf: LeafRecord, tree: Tree, expected: int, problems: list[Problem]) -> int:
    index, device, seq = leaf.leaf_index, leaf.device_id, leaf.seq
    if index >= tree.size:
        problems.append(
            Problem(
                table="leaves",
                code="leaf_beyond_size",
                leaf_index=index,
                device=device,
                seq=seq,
                detail=f"leaf {index} is stored but the log size is {tree.size}",
            )
        )
        return expected
    problems.extend(_missing_leaf(missing) for missing in range(expected, index))
    if hashlib.sha256(leaf.cose).digest() != leaf.message_hash:
        problems.append(
            Problem(
                table="leaves",
                code="message_hash_mismatch",
                leaf_index=index,
                device=device,
                seq=seq,
                detail="message_hash is not the SHA-256 of the stored COSE bytes",
            )
        )
    tree.nodes[NodeId(0, index)] = hash_leaf(leaf.cose)
    return index + 1


def _missing_leaf(index: int) -> Problem:
    return Problem(
        table="leaves",
        code="leaf_missing",
        leaf_index=index,
        detail=f"leaf {index} is below the log size but not stored",
    )


def check_nodes(stored: dict[NodeId, bytes], tree: Tree, problems: list[Problem]) -> None:
    """Recompute every complete node bottom-up from the leaves; compare with the stored ones."""
    size = tree.size
    for level in itertools.count():
        width = size >> level
        if width == 0:
            break
        for index in range(width):
            node = NodeId(level, index)
            if level:
                left = tree.nodes.get(NodeId(level - 1, 2 * index))
                right = tree.nodes.get(NodeId(level - 1, 2 * index + 1))
                if left is not None and right is not None:
                    tree.nodes[node] = hash_children(left, right)
            computed = tree.nodes.get(node)
            found = stored.pop(node, None)
            where = f"node (level {level}, index {index})"
            if found is None:
                problems.append(
                    Problem(
                        table="merkle_nodes",
                        code="node_missing",
                        leaf_index=_first(node),
                        detail=f"{where} is not stored",
                    )
                )
            elif computed is not None and found != computed:
                problems.append(
                    Problem(
                        table="merkle_nodes",
                        code="node_mismatch",
                        leaf_index=_first(node),
                        detail=f"{where} is stored as {found.hex()}, the leaves give "
                        f"{computed.hex()}",
                    )
                )
    for level, index in sorted(stored):
        problems.append(
            Problem(
                table="merkle_nodes",
                code="node_beyond_size",
                leaf_index=index << level,
                detail=f"node (level {level}, index {index}) lies beyond the log size {size}",
            )
        )


def _first(node: NodeId) -> int:
    """The first leaf under ``node``."""
    return node.index << node.level


def complete(tree: Tree, size: int) -> bool:
    """Whether the recomputed tree holds every node the root of ``size`` needs."""
    return size <= tree.size and all(node in tree.nodes for node in state_nodes(size))


def check_checkpoints(
    checkpoints: Sequence[CheckpointRecord],
    tree: Tree,
    *,
    trusted: str,
    origin: str,
    problems: list[Problem],
    counts: dict[str, int],
) -> None:
    """Each checkpoint's signature, its note against its row, its root and consistency."""
    counts["checkpoints"] = len(checkpoints)
    previous: tuple[int, bytes] | None = None
    for checkpoint in sorted(checkpoints, key=lambda c: c.size):
        size, root, note = checkpoint.size, checkpoint.root, checkpoint.note

        def bad(code: str, detail: str, size: int = size) -> None:
            problems.append(Problem(table="checkpoints", code=code, size=size, detail=detail))

        try:
            signed = verify_checkpoint(note, verifier_key=trusted, origin=origin)
        except VerificationError as exc:
            bad("checkpoint_signature", f"checkpoint {size}: {type(exc).__name__}: {exc}")
        else:
            if signed.size != size or signed.root != root:
                bad(
                    "checkpoint_note_mismatch",
                    f"checkpoint {size}: the signed note says size "
                    f"{signed.size} root {signed.root.hex()}, the row says root {root.hex()}",
                )
        if size > tree.size:
            bad("checkpoint_beyond_log", f"checkpoint {size} is beyond the log size {tree.size}")
            continue
        if not complete(tree, size):
            continue  # the missing leaves are reported already
        computed = tree.root(size)
        if computed != root:
            bad(
                "checkpoint_root_mismatch",
                f"checkpoint {size} has root {root.hex()}, the stored leaves give {computed.hex()}",
            )
        if previous is not None and previous[0] > 0:
            _check_consistency(previous, (size, root), tree, bad)
        previous = (size, root)


def _check_consistency(
    older: tuple[int, bytes], newer: tuple[int, bytes], tree: Tree, bad: Any
) -> None:
    plan = consistency_proof_plan(size1=older[0], size2=newer[0])
    if not all(node in tree.nodes for node in plan.nodes):
        return
    try:
        verify_consistency(
            size1=older[0],
            size2=newer[0],
            proof=plan.assemble(tree.nodes),
            root1=older[1],
            root2=newer[1],
        )
    except MerkleProofError as exc:
        bad(
            "checkpoint_inconsistent",
            f"checkpoints {older[0]} and {newer[0]} are not consistent: {exc}",
        )
