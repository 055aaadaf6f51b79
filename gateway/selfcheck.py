"""``voltproof gateway check``: recompute everything the store derives and compare.

The store keeps the received COSE bytes (the leaves) and much that is derived from them:
leaf and node hashes, per-device chain state, decoded samples, signed checkpoints and the
local anchor table. :func:`check_store` reads one consistent snapshot (one read transaction,
the database opened read-only, so it is safe next to a running gateway) and reports every
place where a derived value no longer follows from the leaves or a signature no longer
verifies:

- ``leaves``: indexes ``0..size-1`` all present, ``message_hash`` = SHA-256 of the bytes;
- ``merkle_nodes``: every node recomputed from the stored leaves (RFC 9162), none missing,
  none beyond the log size;
- ``checkpoints``: the gateway's signature, the note's size and root equal the row's, the
  root recomputed from the leaves, and a consistency proof (built from the recomputed tree)
  between consecutive checkpoints that verifies against their signed roots;
- chains and samples (:mod:`gateway.selfcheck_chains`): each device's seq/prev links, the
  device signature, the chain head and gap bookkeeping, and the decoded sample rows;
- ``anchors`` (the local anchor table): sequence, hash chain, entry hash, gateway signature,
  and the anchored root against the recomputed tree.

Memory is linear in the log size (the recomputed tree is held in memory).
"""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from ledger.anchors.local_entry import GENESIS_HASH, LocalEntry
from ledger.checkpoint import log_id, verify_checkpoint
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
from ledger.note import verifier_key

from .selfcheck_chains import check_chains
from .selfcheck_report import CheckReport, Problem

__all__ = ["CheckReport", "Problem", "SelfCheckError", "check_store"]


class SelfCheckError(Exception):
    """The store (or the anchor table) cannot be read at all."""


@dataclass(slots=True, kw_only=True)
class _Tree:
    """The tree recomputed from the stored leaves: every complete node."""

    size: int
    nodes: dict[NodeId, bytes] = field(default_factory=dict)

    def root(self, size: int) -> bytes:
        return LogState.from_nodes(size, [self.nodes[node] for node in state_nodes(size)]).root()


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    if not path.is_file():
        raise SelfCheckError(f"no database at {path}")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise SelfCheckError(f"cannot open {path}: {exc}") from exc
    with closing(db):
        try:
            db.execute("BEGIN")  # one snapshot for every table
            yield db
        except sqlite3.Error as exc:
            raise SelfCheckError(f"cannot read {path}: {exc}") from exc


def check_store(
    db_path: Path,
    *,
    origin: str,
    key_name: str,
    public_key: bytes,
    anchors_path: Path | None = None,
) -> CheckReport:
    """Check the gateway store at ``db_path`` (and the local anchor table, if given)."""
    problems: list[Problem] = []
    counts: dict[str, int] = {}
    with _read_only(db_path) as db:
        size = int(db.execute("SELECT size FROM merkle_size WHERE id = 0").fetchone()[0])
        tree = _check_leaves(db, size, problems, counts)
        _check_nodes(db, tree, problems)
        _check_checkpoints(
            db,
            tree,
            trusted=verifier_key(key_name, public_key),
            origin=origin,
            problems=problems,
            counts=counts,
        )
        check_chains(db, problems, counts)
    if anchors_path is not None:
        with _read_only(anchors_path) as anchors:
            _check_anchors(
                anchors,
                tree,
                origin=origin,
                public_key=public_key,
                problems=problems,
                counts=counts,
            )
    return CheckReport(log_size=size, counts=counts, problems=tuple(problems))


def _check_leaves(
    db: sqlite3.Connection, size: int, problems: list[Problem], counts: dict[str, int]
) -> _Tree:
    tree = _Tree(size=size)
    expected = 0
    rows = db.execute(
        "SELECT leaf_index, device, seq, message_hash, cose FROM leaves ORDER BY leaf_index"
    )
    for index, device, seq, digest, cose in rows:
        if index >= size:
            problems.append(
                Problem(
                    table="leaves",
                    code="leaf_beyond_size",
                    leaf_index=index,
                    device=device,
                    seq=seq,
                    detail=f"leaf {index} is stored but the log size is {size}",
                )
            )
            continue
        problems.extend(_missing_leaf(missing) for missing in range(expected, index))
        expected = index + 1
        data = bytes(cose)
        if hashlib.sha256(data).digest() != bytes(digest):
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
        tree.nodes[NodeId(0, index)] = hash_leaf(data)
    problems.extend(_missing_leaf(missing) for missing in range(expected, size))
    counts["leaves"] = expected
    return tree


def _missing_leaf(index: int) -> Problem:
    return Problem(
        table="leaves",
        code="leaf_missing",
        leaf_index=index,
        detail=f"leaf {index} is below the log size but not stored",
    )


def _check_nodes(db: sqlite3.Connection, tree: _Tree, problems: list[Problem]) -> None:
    """Recompute every complete node bottom-up from the leaves; compare with the stored ones."""
    stored = {
        NodeId(level, index): bytes(value)
        for level, index, value in db.execute("SELECT level, idx, hash FROM merkle_nodes")
    }
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


def _complete(tree: _Tree, size: int) -> bool:
    return size <= tree.size and all(node in tree.nodes for node in state_nodes(size))


def _check_checkpoints(
    db: sqlite3.Connection,
    tree: _Tree,
    *,
    trusted: str,
    origin: str,
    problems: list[Problem],
    counts: dict[str, int],
) -> None:
    rows = db.execute("SELECT size, root, note FROM checkpoints ORDER BY size").fetchall()
    counts["checkpoints"] = len(rows)
    previous: tuple[int, bytes] | None = None
    for size, root_value, note in rows:
        root = bytes(root_value)

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
        if not _complete(tree, size):
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
    older: tuple[int, bytes], newer: tuple[int, bytes], tree: _Tree, bad: Any
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


def _check_anchors(
    db: sqlite3.Connection,
    tree: _Tree,
    *,
    origin: str,
    public_key: bytes,
    problems: list[Problem],
    counts: dict[str, int],
) -> None:
    owner = db.execute("SELECT value FROM anchor_meta WHERE key = 'public_key'").fetchone()
    if owner is None or bytes(owner[0]) != public_key:
        problems.append(
            Problem(
                table="anchors",
                code="anchor_owner",
                detail="the anchor table is not owned by the gateway key",
            )
        )
    verify = VerifyKey(public_key)
    ours = log_id(origin)
    prev_hash = GENESIS_HASH
    rows = db.execute(
        "SELECT sequence, log_id, tree_size, root, anchored_at_ms, prev_hash, entry_hash, "
        "signature FROM anchors ORDER BY sequence"
    ).fetchall()
    counts["anchors"] = len(rows)
    for position, row in enumerate(rows, start=1):
        entry = _entry(row)
        for code, broken in _anchor_faults(entry, position, prev_hash, verify):
            problems.append(
                Problem(
                    table="anchors",
                    code=code,
                    size=entry.tree_size,
                    detail=f"anchor entry {entry.sequence}: {broken}",
                )
            )
        prev_hash = entry.entry_hash
        if entry.log_id == ours and _complete(tree, entry.tree_size):
            computed = tree.root(entry.tree_size)
            if computed != entry.root:
                problems.append(
                    Problem(
                        table="anchors",
                        code="anchor_root_mismatch",
                        size=entry.tree_size,
                        detail=f"anchor entry {entry.sequence} anchors root {entry.root.hex()} "
                        f"for size {entry.tree_size}, the stored leaves give {computed.hex()}",
                    )
                )


def _entry(row: tuple[Any, ...]) -> LocalEntry:
    seq, lid, size, root, at_ms, prev, digest, signature = row
    return LocalEntry(
        sequence=seq,
        log_id=bytes(lid),
        tree_size=size,
        root=bytes(root),
        anchored_at_ms=at_ms,
        prev_hash=bytes(prev),
        entry_hash=bytes(digest),
        signature=bytes(signature),
    )


def _anchor_faults(
    entry: LocalEntry, position: int, prev_hash: bytes, verify: VerifyKey
) -> Iterator[tuple[str, str]]:
    if entry.sequence != position:
        yield "anchor_sequence", f"sequence {entry.sequence} where {position} was expected"
    if entry.prev_hash != prev_hash:
        yield (
            "anchor_chain",
            f"links to {entry.prev_hash.hex()}, the entry before hashes to " + (prev_hash.hex()),
        )
    if entry.computed_hash() != entry.entry_hash:
        yield "anchor_entry_hash", "its fields do not hash to its entry_hash"
    try:
        verify.verify(entry.entry_hash, entry.signature)
    except BadSignatureError:
        yield "anchor_signature", "the signature does not verify under the gateway key"


def report_lines(report: CheckReport) -> Iterator[str]:
    """The report as text, one problem per line."""
    counted = ", ".join(f"{name} {count}" for name, count in sorted(report.counts.items()))
    yield f"log size {report.log_size}; checked {counted}"
    for problem in report.problems:
        yield problem.describe()
    yield "clean" if report.ok else f"{len(report.problems)} problem(s)"
