"""Evidence v2: a ``voltproof-bundle/2`` for one asset and period, from the store.

The bundle is proven against the newest checkpoint with a final anchor (so the consistency
proof is empty), which must carry a ``voltproof-index/1`` line; the store's device index of
that prefix (``StoreReader.device_index_at``) must give the same root, or the store
contradicts its own checkpoint and nothing is built.

What goes in (``docs/protocol.md``, "Bundle ``voltproof-bundle/2``"):

- the asset's own chain over the period (always, even empty);
- for an asset a ``replace`` entry names as another device's successor (transitively, at most
  :data:`~ledger.verify_v2.MAX_PREDECESSORS`), one ``predecessor`` chain per device it
  carries the history of, over the whole period like the asset's own (a replaced device is
  revoked, so its chain is final; the ``replace`` entry's ``t`` is the operator's word and
  decides nothing); its own partners are in its own bundle;
- for a pack, one host chain per hosting interval, holding only the host's messages inside
  that interval; for a bus, one ``installed`` chain per interval its messages name a pack,
  holding only that pack's messages inside it;
- per chain, a ``before`` message only when the first message is not seq 0, and an ``after``
  message only when the index head cannot prove the end (an "up to now" chain has none);
- every device spoken of, with its index entry, the entry's proof and every registry entry;
- for each partner the asset's messages name that the index does not hold (a host bus never
  enrolled), the proof of its absence from the index instead of a chain (``absent``).

Nothing outside the period is disclosed except those boundary messages, and for a lessor
(``grant``) not even those when they lie outside the grant (the asset's chain and its
predecessors') or outside the chain's interval (a host's or installed pack's): the verifier
then says which ends are not proven. What every bundle still says of each device it names is
its index entry (newest seq, leaf, ``t`` and hash at the checkpoint): the entry proof needs
it. Reads go only through :class:`gateway.store.StoreReader`.

Witness cosignatures: the bundle's checkpoint carries every stored cosignature line of its
size, and the ``timeline`` lists, thinned, the cosigned checkpoints that first cover the
chains' messages (``docs/witness.md``, "Timeliness"); no cosigned checkpoint, no timeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ledger.bundle import AnchorEvidence, LoggedLeaf
from ledger.bundle_v2 import AbsentDevice, BundleV2, IndexedDevice, RoleChain, TimelineEntry
from ledger.checkpoint import CheckpointError, parse_checkpoint
from ledger.device_index import DeviceIndex, IndexEntry, IndexLineError, index_root_from_extensions
from ledger.gbt32960 import GbtError, is_envelope, read_leaf
from ledger.message import MessageError, SignedMessage, decode_message
from ledger.note import NoteError, split_note
from ledger.registry import RegistryEntryError, read_registry_entry
from ledger.verify_v2 import (
    MAX_PREDECESSORS,
    PredecessorChainError,
    partner_intervals,
    predecessor_lineage,
)

from .collector import gc_paused
from .evidence import (
    MAX_MESSAGES,
    DeviceLeaves,
    EvidenceError,
    NotAnchoredError,
    PayloadExtraction,
    UnknownAssetError,
    _Anchored,
    _anchored,
    _inside_payloads,
    _local_export,
    _stored,
)
from .store import MessageLeaf, StoreError, StoreReader

__all__ = ["NoIndexLineError", "extract_bundle_v2", "extract_payloads_v2"]

_END: Final = 2**63 - 1
_SEQ: Final = operator.attrgetter("seq")
TIMELINE_BUDGET: Final = 10_000
"""At most this many timeline entries (each a note and a consistency proof, about 1 kB)."""


class NoIndexLineError(EvidenceError):
    """The anchored checkpoint carries no device index line: a v2 bundle cannot be built."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Chosen:
    before: MessageLeaf | None
    inside: list[MessageLeaf]
    after: MessageLeaf | None

    def all(self) -> list[MessageLeaf]:
        return [leaf for leaf in (self.before, *self.inside, self.after) if leaf is not None]


async def _choose(
    store: StoreReader,
    entry: IndexEntry,
    *,
    from_ms: int,
    to_ms: int,
    size: int,
    keep: tuple[int, int] | None = None,
) -> _Chosen:
    """The device's messages in ``[from_ms, to_ms)`` and the boundary messages it needs.

    With ``keep`` (``[from, to)``: what the reader may see) a boundary message dated outside
    it is left out; the verifier then reports that end as not proven.
    """
    device, head = entry.device, entry.head
    if head is None or head.t < from_ms:
        # No telemetry, or the newest is before the interval: the index head proves both
        # ends, and nothing outside the interval is disclosed.
        return _Chosen(before=None, inside=[], after=None)
    found = await store.messages_in(device, t_from=from_ms, t_to=to_ms, limit=MAX_MESSAGES + 1)
    if len(found) > MAX_MESSAGES:
        raise EvidenceError(
            f"{device} has more than {MAX_MESSAGES} messages in the period; ask for a shorter one"
        )
    inside = sorted((leaf for leaf in found if leaf.leaf_index < size), key=_SEQ)
    before = None
    if not inside or inside[0].seq != 0:
        first = inside[0].seq if inside else _END
        before = await store.message_before(device, seq=first, t_ms=from_ms, leaf_below=size)
    newest = inside[-1] if inside else before
    after = None
    at_head = newest is not None and newest.seq == head.seq and to_ms > head.t
    if not at_head:
        last = -1 if newest is None else newest.seq
        after = await store.message_after(device, seq=last, t_ms=to_ms, leaf_below=size)
    if keep is not None:
        before = before if before is not None and keep[0] <= before.t_ms < keep[1] else None
        after = after if after is not None and keep[0] <= after.t_ms < keep[1] else None
    return _Chosen(before=before, inside=inside, after=after)


def _index_root(note: str, size: int) -> bytes:
    try:
        body, _ = split_note(note)
        root = index_root_from_extensions(parse_checkpoint(body).extensions)
    except (NoteError, CheckpointError, IndexLineError) as exc:
        raise EvidenceError(f"the stored checkpoint of size {size} is unreadable: {exc}") from exc
    if root is None:
        raise NoIndexLineError(
            f"the anchored checkpoint of size {size} has no voltproof-index/1 line; a v2 bundle "
            "needs a gateway that commits the device index (or ask for --format 1)"
        )
    return root


@dataclass(frozen=True, slots=True, kw_only=True)
class _Selection:
    """Which message leaves a v2 bundle of one asset and period holds."""

    size: int
    anchored: _Anchored
    note: str
    index: DeviceIndex
    kind: str
    chains: list[tuple[str, str, int, int, _Chosen]]
    """``(device, role, from ms, to ms, chosen leaves)``, the asset's chain first."""
    decoded: dict[int, SignedMessage]
    """The asset's own COSE messages in the period, decoded (by leaf index) to find partners."""
    frames: dict[int, Mapping[str, Any]]
    """The payloads of the asset's own GB/T 32960 frames in the period (by leaf index)."""
    absent: tuple[str, ...]
    """Partners the asset's messages name that the index does not hold (sorted, once each)."""


async def _select(
    store: StoreReader,
    *,
    asset_id: str,
    from_ms: int,
    to_ms: int,
    grant: tuple[int, int] | None = None,
) -> _Selection:
    """The one place that decides what a v2 bundle holds (bundle and report read it).

    ``grant`` (a lessor's ``[from, to)``; ``None``: an operator) clips the boundary messages:
    the asset's and its predecessors' (the asset under its earlier ids) to the grant, a host's
    or installed pack's to the interval its chain covers (the reader leases the asset, not its
    partners at other times).
    """
    if not from_ms < to_ms:
        raise EvidenceError(f"period start {from_ms} is not before its end {to_ms}")
    anchored = await _anchored(store)
    size = anchored.size
    try:
        note = (await store.checkpoint(size)).note
        index = await store.device_index_at(size)
    except StoreError as exc:
        raise NotAnchoredError(f"cannot read the anchored checkpoint {size}: {exc}") from exc
    root = _index_root(note, size)
    if index.root() != root:
        raise EvidenceError(
            f"the store's device index at size {size} does not give the root its checkpoint "
            "commits to (run voltproof audit)"
        )
    entry = index.entry(asset_id)
    if entry is None:
        raise UnknownAssetError(f"no device {asset_id!r} is enrolled in the anchored log")
    own = await _choose(store, entry, from_ms=from_ms, to_ms=to_ms, size=size, keep=grant)
    chains: list[tuple[str, str, int, int, _Chosen]] = [(asset_id, "asset", from_ms, to_ms, own)]
    for predecessor in await _predecessors(store, asset_id=asset_id, size=size):
        predecessor_entry = index.entry(predecessor)
        if predecessor_entry is None:
            raise EvidenceError(
                f"{predecessor!r}, which a replace entry links to {asset_id!r}, is not in the "
                f"store's device index at size {size} (run voltproof audit)"
            )
        # The whole period, like the asset's own chain: a replaced device is revoked, so its
        # chain is final, and the replace entry's t (the operator's word) decides nothing.
        chosen = await _choose(
            store, predecessor_entry, from_ms=from_ms, to_ms=to_ms, size=size, keep=grant
        )
        chains.append((predecessor, "predecessor", from_ms, to_ms, chosen))
    decoded, frames = _decoded(own.inside)
    role, intervals = partner_intervals(entry.kind, _own_payloads(own.inside, decoded, frames),
                                        to_ms=to_ms)  # fmt: skip
    absent: set[str] = set()
    for partner, start, end in intervals:
        partner_entry = index.entry(partner)
        if partner_entry is None:
            absent.add(partner)  # no chain to give: the bundle proves the absence instead
            continue
        keep = None if grant is None else (start, end)
        chosen = await _choose(store, partner_entry, from_ms=start, to_ms=end, size=size, keep=keep)
        chains.append((partner, role, start, end, chosen))
    return _Selection(size=size, anchored=anchored, note=note, index=index, kind=entry.kind,
                      chains=chains, decoded=decoded, frames=frames,
                      absent=tuple(sorted(absent)))  # fmt: skip


async def _predecessors(store: StoreReader, *, asset_id: str, size: int) -> list[str]:
    """The lineage of ``asset_id`` (:func:`ledger.verify_v2.predecessor_lineage`) from the
    ``replace`` entries below ``size``, walked back to a device that replaces none (at most
    one link past :data:`~ledger.verify_v2.MAX_PREDECESSORS`, enough to refuse)."""
    links: dict[str, str] = {}
    current = asset_id
    while current not in links and len(links) <= MAX_PREDECESSORS:
        replaced = await _replaces(store, current, size=size)
        if replaced is None:
            break
        links[current] = replaced
        current = replaced
    try:
        return predecessor_lineage(links, asset_id=asset_id)
    except PredecessorChainError as exc:
        raise EvidenceError(str(exc)) from exc


async def _replaces(store: StoreReader, device: str, *, size: int) -> str | None:
    """The device ``device`` replaces (its ``replace`` entry below ``size``), if any."""
    for record in await store.registry_leaves([device], leaf_below=size):
        try:
            fact = read_registry_entry(record.cose, index=record.leaf_index)
        except RegistryEntryError as exc:
            raise EvidenceError(f"stored registry leaf {record.leaf_index}: {exc}") from exc
        if fact.type == "replace" and fact.new == device:
            return fact.device
    return None


async def extract_payloads_v2(
    store: StoreReader,
    *,
    asset_id: str,
    from_ms: int,
    to_ms: int,
    grant: tuple[int, int] | None = None,
) -> PayloadExtraction:
    """The payloads of the messages the v2 bundle of ``asset_id`` over the period holds.

    Exactly the messages of every chain of :func:`extract_bundle_v2` inside its interval (the
    ones ``check_messages_v2`` gives for that bundle), each decoded once, with the checks of
    :func:`gateway.evidence.extract_payloads` (each message is its device's telemetry with
    the stored seq and t, seqs increase, ``prev`` links) and its refusals; no proofs, and no
    second signature check (that function's docstring says why). ``compute_report`` of
    them is the report ``voltproof report`` computes from the bundle. A GB/T 32960 frame
    gives its bus sample, and ``asset_frames`` holds the asset's frames in the period: with
    :func:`gateway.evidence.frames_in` the terminal figures, as ``voltproof report`` adds
    them from ``ledger.verify_terminal.asset_frames``.
    """
    selection = await _select(store, asset_id=asset_id, from_ms=from_ms, to_ms=to_ms, grant=grant)
    payloads = await asyncio.to_thread(_chain_payloads, selection)
    own = selection.chains[0][-1]
    return PayloadExtraction(
        asset_id=asset_id, asset_kind=selection.kind, from_ms=from_ms, to_ms=to_ms,
        payloads=tuple(payloads), devices=tuple(sorted({c[0] for c in selection.chains})),
        unanchored=0,
        asset_frames=tuple(_stored(leaf) for leaf in own.inside if is_envelope(leaf.cose)),
        predecessors=tuple(c[0] for c in selection.chains if c[1] == "predecessor"),
    )  # fmt: skip


def _chain_payloads(selection: _Selection) -> list[Mapping[str, Any]]:
    """The checked payloads of every chain's messages inside its interval, in chain order."""
    payloads: list[Mapping[str, Any]] = []
    with gc_paused():
        for device, _, _, _, chosen in selection.chains:
            chain = DeviceLeaves(
                device=device,
                before=None if chosen.before is None else _stored(chosen.before),
                inside=tuple(_stored(leaf) for leaf in chosen.inside),
                after=None if chosen.after is None else _stored(chosen.after),
            )
            payloads += _inside_payloads(chain, selection.decoded, selection.frames)
    return payloads


def _decoded(
    leaves: list[MessageLeaf],
) -> tuple[dict[int, SignedMessage], dict[int, Mapping[str, Any]]]:
    """The leaves decoded, by leaf index: COSE messages, and apart the payloads of GB/T 32960
    frames.

    A COSE leaf that does not decode is refused (the partner chains cannot be derived
    without it). A frame that does not decode is left out and still goes into the bundle:
    a frame names no pack, and the lessor's verifier refuses it with the frame's own reason
    (the report from the store refuses it too, when it reads the chain).
    """
    messages: dict[int, SignedMessage] = {}
    frames: dict[int, Mapping[str, Any]] = {}
    with gc_paused():
        for leaf in leaves:
            if is_envelope(leaf.cose):
                with contextlib.suppress(GbtError):  # left out: see above
                    frames[leaf.leaf_index] = read_leaf(leaf.cose).payload()
                continue
            try:
                messages[leaf.leaf_index] = decode_message(leaf.cose)
            except MessageError as exc:
                raise EvidenceError(
                    f"stored leaf {leaf.leaf_index} does not decode: {exc}"
                ) from exc
    return messages, frames


def _own_payloads(
    leaves: list[MessageLeaf],
    decoded: Mapping[int, SignedMessage],
    frames: Mapping[int, Mapping[str, Any]],
) -> list[Mapping[str, Any]]:
    """The payloads of the decoded leaves in order (a frame's: its bus sample, as the
    verifier reads it), from which the partner chains are derived."""
    return [
        decoded[leaf.leaf_index].payload if leaf.leaf_index in decoded else frames[leaf.leaf_index]
        for leaf in leaves
        if leaf.leaf_index in decoded or leaf.leaf_index in frames
    ]


async def extract_bundle_v2(
    store: StoreReader,
    *,
    asset_id: str,
    from_ms: int,
    to_ms: int,
    operator_key: bytes,
    anchor_db: Path | None = None,
    grant: tuple[int, int] | None = None,
) -> BundleV2:
    """The v2 bundle of ``asset_id`` over ``[from_ms, to_ms)``, with real proofs; ``grant``
    clips the boundary messages to what a lessor may see (:func:`_select`)."""
    selection = await _select(store, asset_id=asset_id, from_ms=from_ms, to_ms=to_ms, grant=grant)
    size, anchored, note, index = (
        selection.size, selection.anchored, selection.note, selection.index
    )  # fmt: skip
    chains = selection.chains
    devices = sorted({device for device, *_ in chains})
    registry = await store.registry_leaves(devices, leaf_below=size)
    wanted = sorted(
        {leaf.leaf_index for *_, chosen in chains for leaf in chosen.all()}
        | {r.leaf_index for r in registry}
    )
    try:
        proofs = dict(zip(wanted, await store.inclusion_proofs(wanted, size), strict=True))
    except StoreError as exc:
        raise EvidenceError(f"cannot read proofs from the store: {exc}") from exc

    def logged(index_: int, data: bytes) -> LoggedLeaf:
        return LoggedLeaf(index=index_, data=data, proof=tuple(proofs[index_]))

    def leaf(found: MessageLeaf | None) -> LoggedLeaf | None:
        return None if found is None else logged(found.leaf_index, found.cose)

    cosigned_note = note + "".join(c.line for c in await store.cosignatures(size))
    timeline = await _timeline(
        store, sorted({m.leaf_index for *_, c in chains for m in c.inside}), size=size
    )
    export = None
    local = anchored.receipt.backend == "local" and anchor_db is not None
    if local and anchor_db is not None and await asyncio.to_thread(anchor_db.is_file):
        export = await _local_export(anchor_db)
    return BundleV2(
        asset_id=asset_id,
        asset_kind=selection.kind,
        from_ms=from_ms,
        to_ms=to_ms,
        checkpoint=cosigned_note,
        operator_key=operator_key,
        devices=tuple(_device(index, d, registry, logged) for d in devices),
        chains=tuple(
            RoleChain(
                device=device,
                role=role,
                from_ms=start,
                to_ms=end,
                before=leaf(c.before),
                messages=tuple(logged(m.leaf_index, m.cose) for m in c.inside),
                after=leaf(c.after),
            )
            for device, role, start, end, c in chains
        ),
        anchor=AnchorEvidence(
            size=size,
            root=anchored.root,
            consistency=(),
            receipt=anchored.receipt,
            local_export=export,
        ),
        timeline=timeline or None,
        absent=tuple(AbsentDevice(device=d, proof=index.proof(d)) for d in selection.absent),
    )


async def _timeline(
    store: StoreReader, leaves: list[int], *, size: int
) -> tuple[TimelineEntry, ...]:
    """The cosigned checkpoints that first cover ``leaves`` (ascending), one per distinct one.

    Thinned: a checkpoint enters only when it is the first cosigned one above some probed
    leaf. Up to :data:`TIMELINE_BUDGET` messages every leaf is probed (at most one entry per
    checkpoint interval the messages fall in); above it, the leaves are cut into that many
    consecutive groups and only each group's last leaf is probed. A checkpoint covering a
    group's last leaf covers the whole group, so every message keeps a bound, only coarser by
    the time the group took to be logged (a month of data: a few minutes). A coarser bound
    never hides late data: it can only make a delay look longer.
    """
    if len(leaves) > TIMELINE_BUDGET:
        count = len(leaves)
        leaves = [
            leaves[(group + 1) * count // TIMELINE_BUDGET - 1] for group in range(TIMELINE_BUDGET)
        ]
    entries: list[TimelineEntry] = []
    for leaf in leaves:
        if entries and leaf < entries[-1].size:
            continue  # already covered by the last entry
        try:
            found = await store.cosigned_covering(leaf_from=leaf, leaf_to=leaf + 1, size=size)
        except StoreError as exc:
            raise EvidenceError(f"cannot read cosigned checkpoints from the store: {exc}") from exc
        if not found:
            break  # nothing cosigned covers this leaf, so nothing covers a later one either
        covering = found[0]
        entries.append(
            TimelineEntry(note=covering.note, size=covering.size, consistency=covering.proof)
        )
    return tuple(entries)


def _device(index: DeviceIndex, device: str, registry: list[Any], logged: Any) -> IndexedDevice:
    entry = index.entry(device)
    assert entry is not None  # every chain's device was looked up in the index
    return IndexedDevice(
        device=device,
        entry=entry,
        index_proof=index.proof(device).siblings,
        registry=tuple(logged(r.leaf_index, r.cose) for r in registry if _names(r, device)),
    )


def _names(record: Any, device: str) -> bool:
    """Whether the registry leaf names ``device``: its ``dev`` (the store's device column), or
    the ``new`` of a ``replace`` (a leaf of both devices it links)."""
    if record.device_id == device:
        return True
    try:
        return read_registry_entry(record.cose, index=record.leaf_index).new == device
    except RegistryEntryError:
        return False
