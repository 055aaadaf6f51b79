"""Checkpoints, anchors and RFC 9162 proofs: what lets anyone check the gateway."""

from __future__ import annotations

import base64
import json
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import PlainTextResponse

from gateway.store import CheckpointRecord, StoreReader, UnknownCheckpointError
from ledger.merkle import MerkleProofError, OutOfRangeError, hash_leaf, verify_inclusion

from ..access import FOREVER, Principal
from ..deps import (
    CurrentUser,
    CursorQuery,
    CursorsDep,
    DashboardDep,
    ReaderDep,
    not_found,
    visible_device,
)
from ..queries import DashboardQueries
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


def _checkpoint(record: CheckpointRecord) -> CheckpointPublic:
    receipt = json.loads(record.receipt) if record.receipt else None
    return CheckpointPublic(size=record.size, root=record.root.hex(),
                            signed_at_ms=record.signed_at_ms,
                            anchor_state=record.anchor_state.value, note=record.note,
                            receipt=receipt)  # fmt: skip


@checkpoints_router.get("", response_model=CheckpointsPublic)
async def list_checkpoints(
    *,
    reader: ReaderDep,
    cursors: CursorsDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    anchored: bool = False,
    cursor: CursorQuery = None,
) -> CheckpointsPublic:
    """Newest signed checkpoints first (``anchored``: only those with a final anchor), one
    keyset page at a time."""
    scope = cursors.scope("checkpoints", user.name, anchored=anchored)
    position = cursors.decode(scope, cursor, (int,))
    rows = await reader.checkpoints(
        limit=limit + 1, final_only=anchored,
        below_size=None if position is None else int(position[0]),
    )  # fmt: skip
    more = len(rows) > limit
    data = [_checkpoint(r) for r in rows[:limit]]
    next_cursor = cursors.encode(scope, (data[-1].size,)) if more else None
    return CheckpointsPublic(data=data, count=len(data), next=next_cursor)


@checkpoints_router.get("/latest", response_class=PlainTextResponse)
async def latest_checkpoint(*, reader: ReaderDep, user: CurrentUser) -> PlainTextResponse:
    """The newest checkpoint as its C2SP signed note (text/plain)."""
    latest = await reader.latest_checkpoint()
    if latest is None:
        raise HTTPException(status_code=404, detail="no checkpoint has been signed yet")
    return PlainTextResponse(latest.note, media_type="text/plain; charset=utf-8")


@checkpoints_router.get("/{size}", response_model=CheckpointPublic)
async def get_checkpoint(
    *, reader: ReaderDep, user: CurrentUser, size: Annotated[int, Path(ge=0, le=FOREVER)]
) -> CheckpointPublic:
    """One checkpoint by tree size."""
    try:
        return _checkpoint(await reader.checkpoint(size))
    except UnknownCheckpointError:
        raise HTTPException(status_code=404, detail=f"no checkpoint of size {size}") from None


async def _may_read_leaf(
    dashboard: DashboardQueries, user: Principal, device: str, t_ms: int | None
) -> bool:
    row = await dashboard.device(device)
    if row is None:
        return False
    return any(t_ms is None or w.covers(t_ms) for w in user.windows(device, row.fleet))


async def inclusion(
    reader: StoreReader, dashboard: DashboardQueries, user: Principal, leaf: int, size: int | None
) -> InclusionPublic:
    """The proof of ``leaf`` in the tree of ``size`` (default: the newest checkpoint)."""
    try:
        stored = await reader.leaf(leaf)
    except OutOfRangeError:
        raise HTTPException(status_code=404, detail=f"leaf {leaf} is not stored") from None
    device, seq, t_ms, cose = stored.device_id, stored.seq, stored.t_ms, stored.cose
    readable = await _may_read_leaf(dashboard, user, device, t_ms)
    if not readable and user.reads_telemetry:
        raise HTTPException(status_code=404, detail=f"leaf {leaf} is not stored")
    note = None
    if size is None:
        latest = await reader.latest_checkpoint()
        if latest is None:
            raise HTTPException(status_code=409, detail="no checkpoint has been signed yet")
        size, note = latest.size, latest.note
    else:
        try:
            note = (await reader.checkpoint(size)).note
        except UnknownCheckpointError:
            note = None
    if leaf >= size:
        raise HTTPException(
            status_code=409, detail=f"leaf {leaf} is not in the tree of size {size} yet"
        )
    proof, root = await reader.inclusion_proof_and_root(leaf, size)
    data = cose
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
    reader: ReaderDep,
    dashboard: DashboardDep,
    user: CurrentUser,
    leaf: Annotated[int, Query(ge=0, le=FOREVER)],
    size: Annotated[int | None, Query(ge=1, le=FOREVER)] = None,
) -> InclusionPublic:
    """RFC 9162 inclusion proof of a stored leaf (message bytes only for who may read them)."""
    return await inclusion(reader, dashboard, user, leaf, size)


@proofs_router.get("/consistency", response_model=ConsistencyPublic)
async def consistency_proof(
    *,
    reader: ReaderDep,
    user: CurrentUser,
    size1: Size,
    size2: Size,
) -> ConsistencyPublic:
    """RFC 9162 proof that the tree of ``size2`` leaves extends the tree of ``size1``."""
    if size1 > size2:
        raise HTTPException(
            status_code=400, detail=f"size1 ({size1}) is larger than size2 ({size2})"
        )
    head = await reader.log_head()
    if size2 > head.size:
        raise HTTPException(
            status_code=404, detail=f"size {size2} is beyond the log size {head.size}"
        )
    proof = await reader.consistency_proof(size1, size2)
    return ConsistencyPublic(
        size1=size1, size2=size2, root1=(await reader.root_at(size1)).hex(),
        root2=(await reader.root_at(size2)).hex(), proof=[h.hex() for h in proof],
    )  # fmt: skip


@proofs_router.get("/assets/{asset}", response_model=ProofStatusPublic)
async def proof_status(
    *, reader: ReaderDep, dashboard: DashboardDep, user: CurrentUser, asset: str
) -> ProofStatusPublic:
    """The asset's newest anchored message, its inclusion proof and the server's own check."""
    if user.reads_telemetry:
        device = await visible_device(dashboard, user, asset)
        window = user.default_window(asset, device.fleet)
    elif await dashboard.device(asset) is None:
        raise not_found(asset)
    else:
        window = None
    anchored = await reader.latest_anchored()
    if anchored is None:
        return ProofStatusPublic(asset=asset, anchored=False, anchored_size=None,
                                 anchor_backend=None, inclusion=None,
                                 server_check="no checkpoint is anchored yet")  # fmt: skip
    size, backend = anchored.size, anchored.backend
    lo, hi = (0, FOREVER) if window is None else (window.from_ms, window.to_ms)
    newest = await reader.newest_message(asset, t_from=lo, t_to=hi, leaf_below=size)
    if newest is None:
        return ProofStatusPublic(
            asset=asset,
            anchored=False,
            anchored_size=size,
            anchor_backend=backend,
            inclusion=None,
            server_check="no message of this asset is anchored yet",
        )
    proof = await inclusion(reader, dashboard, user, newest.leaf_index, size)
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
