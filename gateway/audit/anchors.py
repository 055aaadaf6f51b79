"""The audit of the local anchor table: the ledger's own checks, then roots against the log.

Each entry is checked by :func:`ledger.anchors.local_verify.local_table_faults` (the checks a
lessor's offline verifier makes: sequence, hash chain, entry hash, gateway signature, growing
sizes), every fault reported rather than the first; then the anchored root of every entry of
this log is compared with the root recomputed from the stored leaves.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.anchors.local_entry import LocalEntry
from ledger.anchors.local_verify import local_table_faults
from ledger.checkpoint import log_id

from .log import Tree, complete
from .report import Problem


def check_anchors(
    owner: bytes | None,
    entries: Sequence[LocalEntry],
    tree: Tree,
    *,
    origin: str,
    public_key: bytes,
    problems: list[Problem],
    counts: dict[str, int],
) -> None:
    """Check the table's owner key, every entry and every anchored root of this log."""
    if owner != public_key:
        problems.append(
            Problem(
                table="anchors",
                code="anchor_owner",
                detail="the anchor table is not owned by the gateway key",
            )
        )
    counts["anchors"] = len(entries)
    problems.extend(
        Problem(
            table="anchors",
            code=f"anchor_{fault.check}",
            size=fault.entry.tree_size,
            detail=f"anchor entry {fault.entry.sequence}: {fault.error}",
        )
        for fault in local_table_faults(list(entries), public_key=public_key)
    )
    ours = log_id(origin)
    for entry in entries:
        if entry.log_id == ours and complete(tree, entry.tree_size):
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
