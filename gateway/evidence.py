"""Evidence extraction: what the store holds for one asset and period, as a ``BundleInput``.

For a bus: its messages in the period. For a pack: its own messages and, by default, those of
every bus that hosted it in the period (the pack names its host bus in each message, so the
pack id is followed across buses). Per device the bundle also gets the boundary messages that
pin both ends of the period (the last message before it, the first after it), every registry
entry of those devices, and inclusion proofs against a signed checkpoint that an anchor covers.

The checkpoint is the smallest stored one that holds every chosen leaf and is no larger than
the newest checkpoint with a final anchor; when the two differ the bundle carries the
consistency proof between them. Leaves appended after the anchored tree are left out (they
cannot be proven against an anchor yet) and counted in :attr:`Extraction.unanchored`.

Which messages are chosen is decided in one place (``_select``) for both readers:
:func:`extract_evidence` proves them for a bundle, :func:`extract_payloads` only decodes them
for the API's condition report (no proofs, registry or anchor data; its docstring says what
it still checks and why the signatures are not checked again).

Reads go only through :class:`gateway.store.StoreReader` (the inclusion proofs of all chosen
leaves in one batched node read) and, for a local anchor, the anchor table's read-only reader.
Imports no MQTT code.
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

from gateway.collector import gc_paused
from ledger.anchors.base import AnchorReceipt
from ledger.anchors.errors import AnchorFormatError
from ledger.anchors.local_entry import EXPORT_FORMAT
from ledger.bundle import AnchorEvidence, BundleInput, LoggedLeaf
from ledger.chain import Step, step
from ledger.errors import VoltproofError
from ledger.gbt32960 import GbtError, GbtLeaf, is_envelope, read_leaf
from ledger.message import MessageError, SignedMessage, decode_message, message_hash

from .store import MessageLeaf, StoreError, StoreReader
from .store.anchor_table import read_local_anchors

MAX_MESSAGES: Final = 5_000_000
_END: Final = 2**63 - 1
_SEQ: Final = operator.attrgetter("seq")


class EvidenceError(VoltproofError):
    """Evidence cannot be extracted; the message says exactly why."""


class UnknownAssetError(EvidenceError):
    """The asset is not a registered device."""


class NotAnchoredError(EvidenceError):
    """No checkpoint with a final anchor covers the evidence yet."""


class StoredChainError(EvidenceError):
    """The stored messages of a device contradict their index or each other's hash chain."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Extraction:
    """A bundle input and what was left out of it."""

    bundle_input: BundleInput
    devices: tuple[str, ...]
    unanchored: int
    """Messages of the period newer than the anchored tree (not in the bundle)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Anchored:
    size: int
    root: bytes
    receipt: AnchorReceipt


async def _anchored(reader: StoreReader) -> _Anchored:
    found = await reader.latest_anchored()
    if found is None:
        raise NotAnchoredError("no checkpoint has a final anchor yet; retry after the next anchor")
    try:
        receipt = AnchorReceipt.from_json(found.receipt)
    except (AnchorFormatError, ValueError) as exc:
        raise EvidenceError(
            f"the stored receipt of checkpoint {found.size} is unreadable: {exc}"
        ) from exc
    return _Anchored(size=found.size, root=found.root, receipt=receipt)


async def _checkpoint(reader: StoreReader, *, need: int, anchored: int) -> tuple[int, str]:
    found = await reader.checkpoint_between(max(need, 1), anchored)
    if found is None:
        raise NotAnchoredError(f"no stored checkpoint between size {need} and {anchored}")
    # With its witnesses' cosignature lines, for ``verify --witness`` (docs/witness.md).
    lines = "".join(c.line for c in await reader.cosignatures(found.size))
    return found.size, found.note + lines


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredLeaf:
    """A device message as the store indexes it: leaf index, ``seq``, ``t`` and COSE bytes."""

    index: int
    seq: int
    t_ms: int
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceLeaves:
    """One device's messages in the period (seq order) and the boundary messages around them."""

    device: str
    before: StoredLeaf | None
    inside: tuple[StoredLeaf, ...]
    after: StoredLeaf | None

    def ordered(self) -> list[StoredLeaf]:
        """Every chosen leaf in seq order: before, inside, after."""
        before = [] if self.before is None else [self.before]
        after = [] if self.after is None else [self.after]
        return [*before, *self.inside, *after]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Selection:
    """Which message leaves a bundle of one asset and period holds (see :func:`_select`)."""

    asset_kind: str
    anchored: _Anchored
    chains: dict[str, DeviceLeaves]
    unanchored: int
    decoded: dict[int, SignedMessage]
    """Leaves decoded while following the pack's hosts, by leaf index (when asked to keep)."""


async def _period_leaves(
    reader: StoreReader,
    device: str,
    *,
    from_ms: int,
    to_ms: int,
    size: int,
    grant: tuple[int, int] | None = None,
) -> tuple[DeviceLeaves, int]:
    """The device's messages in the period and boundary, and how many were left unanchored.

    With ``grant`` (a lessor's ``[from, to)``) a boundary message dated outside it is left
    out: a grant is never widened by the messages that pin the chain's ends.
    """
    inside = await reader.messages_in(device, t_from=from_ms, t_to=to_ms, limit=MAX_MESSAGES + 1)
    if len(inside) > MAX_MESSAGES:
        raise EvidenceError(
            f"{device} has more than {MAX_MESSAGES} messages in the period; ask for a shorter one"
        )
    inside.sort(key=_SEQ)
    kept = tuple(_stored(leaf) for leaf in inside if leaf.leaf_index < size)
    unanchored = len(inside) - len(kept)
    first = kept[0].seq if kept else None
    last = kept[-1].seq if kept else None
    before = await reader.message_before(
        device, seq=_END if first is None else first, t_ms=from_ms, leaf_below=size
    )
    after = await reader.message_after(
        device, seq=-1 if last is None else last, t_ms=to_ms, leaf_below=size
    )
    if grant is not None:
        before = before if before is not None and grant[0] <= before.t_ms < grant[1] else None
        after = after if after is not None and grant[0] <= after.t_ms < grant[1] else None
    chosen = DeviceLeaves(
        device=device,
        before=None if before is None else _stored(before),
        inside=kept,
        after=None if after is None else _stored(after),
    )
    return chosen, unanchored


def _stored(leaf: MessageLeaf) -> StoredLeaf:
    return StoredLeaf(index=leaf.leaf_index, seq=leaf.seq, t_ms=leaf.t_ms, data=leaf.cose)


def _hosts(leaves: Sequence[StoredLeaf], decoded: dict[int, SignedMessage] | None) -> set[str]:
    """The hosts named in ``leaves``; the leaves decoded on the way go to ``decoded`` if given."""
    found: set[str] = set()
    for leaf in leaves:
        if b"host" not in leaf.data:
            continue  # a payload with a "host" key holds its text; skip decoding the others
        message = _decode(leaf)
        if decoded is not None:
            decoded[leaf.index] = message
        host = message.payload.get("host")
        if isinstance(host, str):
            found.add(host)
    return found


def _hosts_paused(
    leaves: Sequence[StoredLeaf], decoded: dict[int, SignedMessage] | None
) -> set[str]:
    """:func:`_hosts` with the cyclic collector paused (it decodes many messages)."""
    with gc_paused():
        return _hosts(leaves, decoded)


def _frame(leaf: StoredLeaf) -> GbtLeaf:
    try:
        return read_leaf(leaf.data)
    except GbtError as exc:
        raise EvidenceError(f"stored leaf {leaf.index} is no GB/T 32960 frame: {exc}") from exc


def frames_in(extraction: PayloadExtraction) -> list[GbtLeaf]:
    """The asset's GB/T 32960 frames in the period (a terminal's report figures)."""
    return [_frame(leaf) for leaf in extraction.asset_frames]


def _decode(leaf: StoredLeaf) -> SignedMessage:
    try:
        return decode_message(leaf.data)
    except MessageError as exc:
        raise EvidenceError(f"stored leaf {leaf.index} does not decode: {exc}") from exc


async def _select(
    store: StoreReader,
    *,
    asset_id: str,
    from_ms: int,
    to_ms: int,
    follow_hosts: bool,
    keep_decoded: bool = False,
    grant: tuple[int, int] | None = None,
) -> _Selection:
    """The message leaves of a bundle of ``asset_id`` over ``[from_ms, to_ms)``.

    The one place that decides which messages evidence holds: :func:`extract_evidence` proves
    them, :func:`extract_payloads` reads them for the condition report (and asks to
    ``keep_decoded`` the pack's messages decoded to find its hosts, not to decode them twice).
    """
    if not from_ms < to_ms:
        raise EvidenceError(f"period start {from_ms} is not before its end {to_ms}")
    device = (await store.devices([asset_id])).get(asset_id)
    if device is None:
        raise UnknownAssetError(f"no device {asset_id!r} is registered")
    anchored = await _anchored(store)
    chains: dict[str, DeviceLeaves] = {}
    decoded: dict[int, SignedMessage] = {}
    unanchored = 0
    queue = [asset_id]
    while queue:
        current = queue.pop()
        leaves, left_out = await _period_leaves(
            store, current, from_ms=from_ms, to_ms=to_ms, size=anchored.size, grant=grant
        )
        chains[current] = leaves
        unanchored += left_out
        if current == asset_id and device.kind == "pack" and follow_hosts:
            hosts = await asyncio.to_thread(
                _hosts_paused, leaves.ordered(), decoded if keep_decoded else None
            )
            known = await store.devices(sorted(hosts))
            queue.extend(sorted(h for h in known if h not in chains))
    return _Selection(
        asset_kind=device.kind, anchored=anchored, chains=chains, unanchored=unanchored,
        decoded=decoded,
    )  # fmt: skip


async def _local_export(path: Path) -> dict[str, object]:
    try:
        _, entries = await read_local_anchors(path)
    except StoreError as exc:
        raise EvidenceError(str(exc)) from exc
    return {"format": EXPORT_FORMAT, "entries": [entry.to_dict() for entry in entries]}


async def extract_evidence(
    store: StoreReader,
    *,
    asset_id: str,
    from_ms: int,
    to_ms: int,
    operator_key: bytes,
    anchor_db: Path | None = None,
    follow_hosts: bool = True,
    grant: tuple[int, int] | None = None,
) -> Extraction:
    """Everything a bundle of ``asset_id`` over ``[from_ms, to_ms)`` needs, with real proofs.

    ``anchor_db`` is the local anchor table (for a ``local`` receipt its export is embedded so
    the bundle checks offline); ``follow_hosts`` adds the buses that hosted a pack; ``grant``
    keeps boundary messages inside a lessor's grant (see :func:`_period_leaves`).
    """
    selection = await _select(
        store, asset_id=asset_id, from_ms=from_ms, to_ms=to_ms, follow_hosts=follow_hosts,
        grant=grant,
    )  # fmt: skip
    anchored = selection.anchored
    chosen = [
        (leaf.index, leaf.data) for chain in selection.chains.values() for leaf in chain.ordered()
    ]
    registry = await store.registry_leaves(sorted(selection.chains), leaf_below=anchored.size)
    need = 1 + max([i for i, _ in chosen] + [r.leaf_index for r in registry], default=0)
    size, note = await _checkpoint(store, need=need, anchored=anchored.size)
    leaves = [*chosen, *((r.leaf_index, r.cose) for r in registry)]
    try:
        proofs = await store.inclusion_proofs([i for i, _ in leaves], size)
        logged = [
            LoggedLeaf(index=i, data=c, proof=tuple(proof))
            for (i, c), proof in zip(leaves, proofs, strict=True)
        ]
        messages, registry_leaves = logged[: len(chosen)], logged[len(chosen) :]
        consistency = (
            await store.consistency_proof(size, anchored.size) if size != anchored.size else []
        )
    except StoreError as exc:
        raise EvidenceError(f"cannot read proofs from the store: {exc}") from exc
    export = None
    if (
        anchored.receipt.backend == "local"
        and anchor_db is not None
        and await asyncio.to_thread(anchor_db.is_file)
    ):
        export = await _local_export(anchor_db)
    evidence = AnchorEvidence(
        size=anchored.size,
        root=anchored.root,
        consistency=tuple(consistency),
        receipt=anchored.receipt,
        local_export=export,
    )
    bundle_input = BundleInput(
        asset_id=asset_id,
        asset_kind=selection.asset_kind,
        from_ms=from_ms,
        to_ms=to_ms,
        checkpoint=note,
        operator_key=operator_key,
        registry=registry_leaves,
        messages=messages,
        anchor=evidence,
    )
    return Extraction(
        bundle_input=bundle_input,
        devices=tuple(sorted(selection.chains)),
        unanchored=selection.unanchored,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PayloadExtraction:
    """The payloads a bundle's condition report is computed from, read without any proof."""

    asset_id: str
    asset_kind: str
    from_ms: int
    to_ms: int
    payloads: tuple[Mapping[str, Any], ...]
    """The period's messages of every chosen device: devices sorted, each in seq order."""
    devices: tuple[str, ...]
    unanchored: int
    """Messages of the period newer than the anchored tree (not used, as in the bundle)."""
    asset_frames: tuple[StoredLeaf, ...] = ()
    """The asset's GB/T 32960 frame leaves in the period (:func:`frames_in` decodes them)."""
    predecessors: tuple[str, ...] = ()
    """The devices whose history the asset carries on (v2 ``predecessor`` chains)."""


async def extract_payloads(
    store: StoreReader,
    *,
    asset_id: str,
    from_ms: int,
    to_ms: int,
    follow_hosts: bool = True,
    grant: tuple[int, int] | None = None,
) -> PayloadExtraction:
    """The payloads of the messages a bundle of ``asset_id`` over ``[from_ms, to_ms)`` holds.

    Exactly the messages :func:`extract_evidence` would put in the bundle's chains (the same
    selection: period, boundaries, followed hosts, anchored tree only), each decoded once,
    without inclusion proofs, registry entries or anchor data; the payloads are those that
    ``ledger.verify.check_messages`` gives for that bundle, in the same order, so
    ``compute_report`` makes the identical report from them. It refuses what the bundle path
    refuses (unknown asset, empty period, no final anchor) with the same errors.

    Checks made here, on every chosen message including the boundary ones: it decodes
    (strict COSE and payload); it is telemetry of its device with the ``seq`` and ``t`` the
    store indexes it under (so the period and boundary roles are the ones the bundle gets);
    seqs strictly increase; and each ``prev`` is the hash of the stored message before it when
    the seqs are consecutive. A failure raises :class:`EvidenceError` (a
    :class:`StoredChainError` for an inconsistent chain), never a report.

    Not checked again: signatures and key validity. The gateway verified each signature under
    the device key valid at that point of the log before appending the message, and this
    reads the operator's own store; re-checking 17,520 Ed25519 signatures for a year report
    would cost more than everything else together. Whoever does not trust the operator
    downloads the bundle and recomputes the report offline (``voltproof report``), which
    checks every signature, key and link and gives the identical report.
    """
    selection = await _select(
        store, asset_id=asset_id, from_ms=from_ms, to_ms=to_ms, follow_hosts=follow_hosts,
        keep_decoded=True, grant=grant,
    )  # fmt: skip
    # Seconds of CPU for a long period: off the event loop, so a server stays responsive.
    payloads = await asyncio.to_thread(_all_payloads, selection)
    return PayloadExtraction(
        asset_id=asset_id, asset_kind=selection.asset_kind, from_ms=from_ms, to_ms=to_ms,
        payloads=tuple(payloads), devices=tuple(sorted(selection.chains)),
        unanchored=selection.unanchored,
        asset_frames=tuple(
            leaf for leaf in selection.chains[asset_id].inside if is_envelope(leaf.data)
        ),
    )  # fmt: skip


def _all_payloads(selection: _Selection) -> list[Mapping[str, Any]]:
    """The checked payloads of every chain of ``selection``, devices in sorted order."""
    payloads: list[Mapping[str, Any]] = []
    with gc_paused():
        for device in sorted(selection.chains):
            payloads += _inside_payloads(selection.chains[device], selection.decoded)
    return payloads


def _inside_payloads(
    chain: DeviceLeaves,
    decoded: Mapping[int, SignedMessage],
    frames: Mapping[int, Mapping[str, Any]] | None = None,
) -> list[Mapping[str, Any]]:
    """The payloads of the chain's messages in the period, after checking the whole chain.

    ``decoded`` and ``frames`` hold the COSE messages and GB/T 32960 frame payloads already
    decoded (by leaf index); any other leaf is decoded here.
    """
    payloads: list[Mapping[str, Any]] = []
    previous: StoredLeaf | None = None
    previous_hash = b""
    for leaf in chain.ordered():
        terminal = is_envelope(leaf.data)
        if terminal:  # a GB/T 32960 frame: its bus sample, its envelope's seq and prev
            found = None if frames is None else frames.get(leaf.index)
            payload = _frame(leaf).payload() if found is None else found
        else:
            message = decoded.get(leaf.index) or _decode(leaf)
            payload = message.payload
        if (not terminal and message.content_type is not None) or (
            payload["dev"], payload["seq"], payload["t"]
        ) != (chain.device, leaf.seq, leaf.t_ms):  # fmt: skip
            raise StoredChainError(
                f"stored leaf {leaf.index} is not the telemetry message of {chain.device!r} "
                f"seq {leaf.seq} at t = {leaf.t_ms} that the store indexes it as"
            )
        if previous is not None:
            link = step(
                previous_seq=previous.seq,
                previous_hash=previous_hash,
                seq=leaf.seq,
                prev=cast("bytes", payload["prev"]),  # 32 bytes: the codec checked it
            )
            if link is Step.BACKWARDS:
                raise StoredChainError(
                    f"stored leaf {leaf.index} ({chain.device} seq {leaf.seq}) follows seq "
                    f"{previous.seq} (messages reordered or repeated)"
                )
            if link is Step.BROKEN:
                raise StoredChainError(
                    f"stored leaf {leaf.index} ({chain.device} seq {leaf.seq}): prev is not the "
                    f"hash of seq {previous.seq} (leaf {previous.index})"
                )
        previous, previous_hash = leaf, message_hash(leaf.data)
        payloads.append(payload)
    start = 0 if chain.before is None else 1
    return payloads[start : start + len(chain.inside)]
