"""Checkpoints, anchors and RFC 9162 proofs: what lets anyone check the gateway."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import PlainTextResponse

from ledger.merkle import MerkleProofError, hash_leaf, verify_inclusion

from ..access import FOREVER, Principal
from ..deps import CurrentUser, ReadsDep, StoreDep, not_found, visible_device
from ..queries import Reads
from ..schemas import (
    CheckpointPublic,
    CheckpointsPublic,
    ConsistencyPublic,
    InclusionPublic,
    ProofStatusPublic,
)

checkpoints_router = APIRouter(prefix="/api/checkpoints", tags=["checkpoints"])
proofs_router = APIRouter(prefix="/api/proofs", tags=["proofs"])

Size = Annotated[int, Query(ge=1, le=FOREVER)]
_CHECKPOINT_COLUMNS = (
    "c.size, c.root, c.signed_at_ms, c.anchor_state, c.note, r.receipt "
    "FROM checkpoints AS c LEFT JOIN anchor_receipts AS r ON r.size = c.size"
)


def _checkpoint(row: Any) -> CheckpointPublic:
    receipt = json.loads(row[5]) if row[5] else None
    return CheckpointPublic(size=row[0], root=bytes(row[1]).hex(), signed_at_ms=row[2],
                            anchor_state=row[3], note=row[4], receipt=receipt)  # fmt: skip


@checkpoints_router.get("", response_model=CheckpointsPublic)
async def list_checkpoints(
    *,
    reads: ReadsDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    anchored: bool = False,
) -> CheckpointsPublic:
    """Newest signed checkpoints first (``anchored``: only those with a final anchor)."""
    where = "WHERE c.anchor_state = 'final'" if anchored else ""
    rows = await reads.rows(
        f"SELECT {_CHECKPOINT_COLUMNS} {where} ORDER BY c.size DESC LIMIT ?",
        (limit,),
    )
    data = [_checkpoint(r) for r in rows]
    return CheckpointsPublic(data=data, count=len(data))


@checkpoints_router.get("/latest", response_class=PlainTextResponse)
async def latest_checkpoint(*, reads: ReadsDep, user: CurrentUser) -> PlainTextResponse:
    """The newest checkpoint as its C2SP signed note (text/plain)."""
    rows = await reads.rows("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1")
    if not rows:
        raise HTTPException(status_code=404, detail="no checkpoint has been signed yet")
    return PlainTextResponse(str(rows[0][0]), media_type="text/plain; charset=utf-8")


@checkpoints_router.get("/{size}", response_model=CheckpointPublic)
async def get_checkpoint(
    *, reads: ReadsDep, user: CurrentUser, size: Annotated[int, Path(ge=0, le=FOREVER)]
) -> CheckpointPublic:
    """One checkpoint by tree size."""
    rows = await reads.rows(f"SELECT {_CHECKPOINT_COLUMNS} WHERE c.size = ?", (size,))
    if not rows:
        raise HTTPException(status_code=404, detail=f"no checkpoint of size {size}")
    return _checkpoint(rows[0])


async def _may_read_leaf(reads: Reads, user: Principal, device: str, t_ms: int | None) -> bool:
    row = await reads.device(device)
    if row is None:
        return False
    return any(t_ms is None or w.covers(t_ms) for w in user.windows(device, row.fleet))


async def inclusion(
    store: StoreDep, reads: Reads, user: Principal, leaf: int, size: int | None
) -> InclusionPublic:
    """The proof of ``leaf`` in the tree of ``size`` (default: the newest checkpoint)."""
    rows = await reads.rows(
        "SELECT device, seq, t_ms, cose FROM leaves WHERE leaf_index = ?", (leaf,)
    )
    if not rows:
        raise HTTPException(status_code=404, detail=f"leaf {leaf} is not stored")
    device, seq, t_ms, cose = rows[0]
    readable = await _may_read_leaf(reads, user, device, t_ms)
    if not readable and user.reads_telemetry:
        raise HTTPException(status_code=404, detail=f"leaf {leaf} is not stored")
    note = None
    if size is None:
        latest = await reads.rows("SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1")
        if not latest:
            raise HTTPException(status_code=409, detail="no checkpoint has been signed yet")
        size, note = int(latest[0][0]), str(latest[0][1])
    else:
        found = await reads.rows("SELECT note FROM checkpoints WHERE size = ?", (size,))
        note = str(found[0][0]) if found else None
    if leaf >= size:
        raise HTTPException(
            status_code=409, detail=f"leaf {leaf} is not in the tree of size {size} yet"
        )
    proof, root = await store.inclusion_proof_and_root(leaf, size)
    data = bytes(cose)
    return InclusionPublic(
        leaf_index=leaf, tree_size=size, leaf_hash=hash_leaf(data).hex(), root=root.hex(),
        proof=[h.hex() for h in proof], checkpoint=note,
        device=device if readable else None, seq=seq if readable else None,
        t_ms=t_ms if readable else None,
        message_b64=base64.b64encode(data).decode() if readable else None,
    )  # fmt: skip


@proofs_router.get("/inclusion", response_model=InclusionPublic)
async def inclusion_proof(
    *,
    store: StoreDep,
    reads: ReadsDep,
    user: CurrentUser,
    leaf: Annotated[int, Query(ge=0, le=FOREVER)],
    size: Annotated[int | None, Query(ge=1, le=FOREVER)] = None,
) -> InclusionPublic:
    """RFC 9162 inclusion proof of a stored leaf (message bytes only for who may read them)."""
    return await inclusion(store, reads, user, leaf, size)


@proofs_router.get("/consistency", response_model=ConsistencyPublic)
async def consistency_proof(
    *,
    store: StoreDep,
    user: CurrentUser,
    size1: Size,
    size2: Size,
) -> ConsistencyPublic:
    """RFC 9162 proof that the tree of ``size2`` leaves extends the tree of ``size1``."""
    if size1 > size2:
        raise HTTPException(
            status_code=400, detail=f"size1 ({size1}) is larger than size2 ({size2})"
        )
    head = await store.log_head()
    if size2 > head.size:
        raise HTTPException(
            status_code=404, detail=f"size {size2} is beyond the log size {head.size}"
        )
    proof = await store.consistency_proof(size1, size2)
    return ConsistencyPublic(
        size1=size1, size2=size2, root1=(await store.root_at(size1)).hex(),
        root2=(await store.root_at(size2)).hex(), proof=[h.hex() for h in proof],
    )  # fmt: skip


@proofs_router.get("/assets/{asset}", response_model=ProofStatusPublic)
async def proof_status(
    *, store: StoreDep, reads: ReadsDep, user: CurrentUser, asset: str
) -> ProofStatusPublic:
    """The asset's newest anchored message, its inclusion proof and the server's own check."""
    if user.reads_telemetry:
        device = await visible_device(reads, user, asset)
        window = user.default_window(asset, device.fleet)
    elif await reads.device(asset) is None:
        raise not_found(asset)
    else:
        window = None
    anchored = await reads.rows(
        "SELECT c.size, r.backend FROM checkpoints AS c JOIN anchor_receipts AS r "
        "ON r.size = c.size WHERE r.state = 'final' ORDER BY c.size DESC LIMIT 1"
    )
    if not anchored:
        return ProofStatusPublic(asset=asset, anchored=False, anchored_size=None,
                                 anchor_backend=None, inclusion=None,
                                 server_check="no checkpoint is anchored yet")  # fmt: skip
    size, backend = int(anchored[0][0]), str(anchored[0][1])
    lo, hi = (0, FOREVER) if window is None else (window.from_ms, window.to_ms)
    rows = await reads.rows(
        "SELECT leaf_index FROM leaves WHERE device = ? AND seq IS NOT NULL AND t_ms >= ? "
        "AND t_ms < ? AND leaf_index < ? ORDER BY t_ms DESC LIMIT 1",
        (asset, lo, hi, size),
    )
    if not rows:
        return ProofStatusPublic(
            asset=asset,
            anchored=False,
            anchored_size=size,
            anchor_backend=backend,
            inclusion=None,
            server_check="no message of this asset is anchored yet",
        )
    proof = await inclusion(store, reads, user, int(rows[0][0]), size)
    try:
        verify_inclusion(
            leaf_hash=bytes.fromhex(proof.leaf_hash), index=proof.leaf_index, size=size,
            proof=[bytes.fromhex(h) for h in proof.proof], root=bytes.fromhex(proof.root),
        )  # fmt: skip
        check = f"verified: leaf {proof.leaf_index} is in the anchored tree of size {size}"
    except MerkleProofError as exc:
        check = f"FAILED: {exc}"
    return ProofStatusPublic(asset=asset, anchored=True, anchored_size=size,
                             anchor_backend=backend, inclusion=proof,
                             server_check=check)  # fmt: skip
