"""Offline verification of a ``voltproof-bundle/2`` (evidence v2), against the operator.

:func:`verify_bundle_v2` makes the checks of ``docs/protocol.md`` ("What a v2 verifier
checks, in order") in that order, and raises the first failure as a named
:class:`~ledger.verify.BundleVerificationError` subclass, or returns a :class:`V2Report`
with per-chain facts (seq range, received/expected, ends proven, gaps as ranges) and where
the anchor was checked. INVALID is an exception; INCOMPLETE and "not independently
anchored" are facts of the report, which the command line turns into exit 3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from .anchors.base import AnchorChecker, LaterAnchor, LaterAnchorSource
from .bundle import LoggedLeaf
from .bundle_v2 import AbsentDevice, BundleV2, IndexedDevice, RoleChain
from .chain import SeqRange, Step, step
from .checkpoint import Checkpoint, CheckpointError, log_id, verify_checkpoint
from .device_index import (
    REGISTRY_CHAIN_START,
    ChainHead,
    IndexLineError,
    extend_registry_chain,
    index_root_from_extensions,
    verify_entry,
    verify_no_entry,
)
from .errors import VerificationError
from .gbt32960 import Terminal, is_envelope
from .merkle import MerkleProofError
from .merkle.index_tree import IndexProof
from .message import MessageError, SignedMessage, decode_message, message_hash
from .note import NoteError
from .registry import (
    KeySpan,
    RegistryEntryError,
    RegistryHistory,
    check_registry,
    key_for_message,
)
from .verify import (
    DEFAULT_WORKERS,
    AnchorCheck,
    BundleCheckpointError,
    BundleRegistryError,
    BundleVerificationError,
    ChainLinkError,
    ChainOrderError,
    MessageSignatureError,
    PeriodBoundaryError,
    _check_anchor,
    _check_inclusion,
    _check_signatures,
    _label,
    _SignatureCheck,
)
from .verify_terminal import SIGNED_BY_DEVICE, check_terminal_leaf, terminal_of

__all__ = [
    "ABSENCE_PROVEN",
    "INDEPENDENT_SOURCES",
    "MAX_PREDECESSORS",
    "AbsenceProofError",
    "AbsentPartner",
    "AssetChainError",
    "AssetKindError",
    "BeyondHeadError",
    "BundleDeviceError",
    "ChainFacts",
    "HostChainError",
    "IndexEntryError",
    "PeriodMismatchError",
    "PredecessorChainError",
    "RegistryCompletenessError",
    "V2Report",
    "check_expected_period",
    "check_messages_v2",
    "hosting_intervals",
    "installed_intervals",
    "partner_intervals",
    "predecessor_lineage",
    "stale_after",
    "verify_bundle_v2",
]

INDEPENDENT_SOURCES: Final = ("ledger export", "evm rpc")
"""Anchor sources the verifier obtained itself (not the copy the operator put in the bundle)."""
ABSENCE_PROVEN: Final = "not enrolled (absence proven)"
"""What the report says of a partner the index proves it does not hold."""
MAX_PREDECESSORS: Final = 16
"""At most this many devices, one replacing the next, carry an asset's history in a bundle."""


class PeriodMismatchError(BundleVerificationError):
    """The bundle covers less than the period the verifier expected (``--from``/``--to``)."""


class IndexEntryError(BundleVerificationError):
    """A device's index entry does not prove against the checkpoint's index root."""


class RegistryCompletenessError(BundleVerificationError):
    """A device's registry entries are not all of them, in log order (``reg_n``/``reg_h``)."""


class BundleDeviceError(BundleVerificationError):
    """A device is missing, repeated or not one the bundle's chains speak of."""


class AssetKindError(BundleVerificationError):
    """``asset.kind`` is not the kind the asset was enrolled with."""


class AssetChainError(BundleVerificationError):
    """The asset's own chain is missing, repeated or does not span the period."""


class AbsenceProofError(BundleVerificationError):
    """A device the bundle claims the index does not hold is not proven absent from it."""


class BeyondHeadError(BundleVerificationError):
    """A chain holds a message past the device's index head."""


class HostChainError(BundleVerificationError):
    """A pack's host chains are not exactly its hosting intervals."""


class PredecessorChainError(BundleVerificationError):
    """The predecessor chains are not exactly the devices the asset replaces, over its period."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainFacts:
    """What one chain proves: its seq range, completeness and gaps."""

    device: str
    role: str
    from_ms: int
    to_ms: int
    first_seq: int | None
    last_seq: int | None
    received: int
    gaps: tuple[SeqRange, ...]
    start_proven: bool
    end_proven: bool
    evidence: Mapping[str, int] = field(default_factory=dict)
    """Messages in the interval per evidence label (``ledger.verify_terminal``)."""
    end_by: str | None = None
    """What proves the end: ``"after"`` (the next message), ``"head"`` (the device's index
    head at the checkpoint) or ``None`` (not proven)."""
    end_note: str = ""
    """Why the end is not proven when it would otherwise be (a stale checkpoint)."""

    @property
    def expected(self) -> int:
        """Messages the device produced between the first and last seq received."""
        return self.received + sum(gap.count for gap in self.gaps)

    @property
    def complete(self) -> bool:
        """No gap and both ends proven."""
        return not self.gaps and self.start_proven and self.end_proven


@dataclass(frozen=True, slots=True, kw_only=True)
class AbsentPartner:
    """A partner interval with no chain: the partner is proven absent from the index.

    A pack naming a host bus that was never enrolled: there is no chain of it to give, and
    the absence proof against the checkpoint's index root shows none is hidden.
    """

    device: str
    role: str
    from_ms: int
    to_ms: int
    status: str = ABSENCE_PROVEN


@dataclass(frozen=True, slots=True, kw_only=True)
class V2Report:
    """A v2 bundle that is VALID: what it covers, how complete, how anchored."""

    format: str
    asset_id: str
    asset_kind: str
    from_ms: int
    to_ms: int
    origin: str
    checkpoint_size: int
    anchor: AnchorCheck
    witnesses: tuple[str, ...]
    devices: int
    messages: int
    registry_entries: int
    chains: tuple[ChainFacts, ...]
    payloads: tuple[Mapping[str, Any], ...]
    """The asset chain's payloads in the period (what a condition report is computed from)."""
    later_anchor: LaterAnchor | None = None
    """The first larger tree the verifier's own ledger anchored after the bundle's checkpoint."""
    absent: tuple[AbsentPartner, ...] = ()
    """Partner intervals whose partner the index proves it does not hold (no chain needed)."""

    @property
    def complete(self) -> bool:
        """Every chain is complete."""
        return all(chain.complete for chain in self.chains)

    @property
    def evidence(self) -> dict[str, int]:
        """Messages in the period per evidence label, over every chain (``signed-by-device``,
        ``signed-by-terminal``, ``received-only``)."""
        totals: dict[str, int] = {}
        for chain in self.chains:
            for label, count in chain.evidence.items():
                totals[label] = totals.get(label, 0) + count
        return dict(sorted(totals.items()))

    @property
    def independently_anchored(self) -> bool:
        """The anchor was checked against a source the verifier obtained itself."""
        return self.anchor.source in INDEPENDENT_SOURCES


def _checkpoint(bundle: BundleV2, key: str) -> tuple[Checkpoint, bytes]:
    try:
        checkpoint = verify_checkpoint(bundle.checkpoint, verifier_key=key)
        root = index_root_from_extensions(checkpoint.extensions)
    except (CheckpointError, NoteError, IndexLineError) as exc:
        raise BundleCheckpointError(f"checkpoint: {exc}") from exc
    if root is None:
        raise BundleCheckpointError(
            "checkpoint: no voltproof-index/1 line (a v1 checkpoint cannot back a v2 bundle)"
        )
    return checkpoint, root


def _check_device(device: IndexedDevice, root: bytes, checkpoint: Checkpoint) -> None:
    entry = device.entry
    if entry.device != device.device:
        raise IndexEntryError(
            f"device {device.device!r}: its index entry is that of {entry.device!r}"
        )
    try:
        verify_entry(root=root, entry=entry, proof=IndexProof(siblings=device.index_proof))
    except MerkleProofError as exc:
        raise IndexEntryError(
            f"device {device.device!r}: index entry does not prove against the checkpoint's "
            f"index root ({exc})"
        ) from exc
    chain = REGISTRY_CHAIN_START
    previous = -1
    for leaf in device.registry:
        _check_inclusion(leaf, checkpoint)
        if leaf.index <= previous:
            raise RegistryCompletenessError(
                f"device {device.device!r}: registry entry at leaf {leaf.index} follows leaf "
                f"{previous} (entries out of log order)"
            )
        previous = leaf.index
        _check_names(device.device, leaf)
        chain = extend_registry_chain(chain, leaf.data)
    if (len(device.registry), chain) != (entry.registry_count, entry.registry_hash):
        raise RegistryCompletenessError(
            f"device {device.device!r}: the bundle gives {len(device.registry)} registry "
            f"entr{'y' if len(device.registry) == 1 else 'ies'} whose hash chain "
            f"{'matches' if chain == entry.registry_hash else 'does not match'} the index; "
            f"the index holds {entry.registry_count} (entries left out, added or reordered)"
        )


def _check_absent(
    claims: Sequence[AbsentDevice], devices: Mapping[str, IndexedDevice], root: bytes
) -> frozenset[str]:
    """Each claimed absence proves against the index root; the ids proven absent.

    An operator who drops a real host's chain and claims the host absent cannot make the
    proof: the key's path in the index ends at the host's own entry (the tree's shape
    admits one position per key), so the claim fails here by name.
    """
    proven: set[str] = set()
    for claim in claims:
        if claim.device in proven:
            raise BundleDeviceError(f"device {claim.device!r} is claimed absent twice")
        if claim.device in devices:
            raise AbsenceProofError(
                f"device {claim.device!r} is claimed absent from the index, and the bundle "
                "gives its index entry"
            )
        try:
            verify_no_entry(root=root, device=claim.device, proof=claim.proof)
        except MerkleProofError as exc:
            raise AbsenceProofError(
                f"device {claim.device!r} is claimed absent from the index, and its absence "
                f"proof does not prove against the checkpoint's index root ({exc})"
            ) from exc
        proven.add(claim.device)
    return frozenset(proven)


def _check_names(device: str, leaf: LoggedLeaf) -> None:
    """A registry entry listed under ``device`` names it (as ``dev``, or ``new`` of a replace)."""
    try:
        payload = decode_message(leaf.data).payload
    except MessageError as exc:
        raise BundleRegistryError(f"registry entry at leaf {leaf.index}: {exc}") from exc
    if device not in (payload.get("dev"), payload.get("new")):
        raise BundleRegistryError(
            f"registry entry at leaf {leaf.index} is listed under {device!r} but names "
            f"{payload.get('dev')!r}"
        )


def _registry(bundle: BundleV2) -> RegistryHistory:
    """Registry rules over every device's entries: signers, one enrolment ever, kinds.

    A ``replace`` of two devices of the bundle is listed under both: it counts once (the
    same leaf index with other bytes is refused as given twice).
    """
    leaves = sorted({(leaf.index, leaf.data) for d in bundle.devices for leaf in d.registry})
    enrolments: dict[str, int] = {}
    for index, data in sorted(leaves):
        try:
            payload = decode_message(data).payload
        except MessageError as exc:
            raise BundleRegistryError(f"registry entry at leaf {index}: {exc}") from exc
        if payload.get("type") == "enroll":
            device = payload.get("dev")
            if isinstance(device, str) and device in enrolments:
                raise BundleRegistryError(
                    f"enroll entry at leaf {index}: {device!r} was enrolled at leaf "
                    f"{enrolments[device]} already (one enrolment per device id, ever)"
                )
            enrolments[str(device)] = index
    try:
        # Only the bundle's devices have all their entries here: the other side of a
        # ``replace`` (a successor or predecessor outside the bundle) is not checked.
        registry = check_registry(
            leaves, operator_key=bundle.operator_key, scope=[d.device for d in bundle.devices]
        )
    except RegistryEntryError as exc:
        raise BundleRegistryError(str(exc)) from exc
    for device in bundle.devices:
        state = registry.devices.get(device.device)
        if state is None:
            raise BundleRegistryError(f"device {device.device!r}: no enrolment in its registry")
        if state.kind != device.entry.kind:
            raise BundleRegistryError(
                f"device {device.device!r}: enrolled as {state.kind!r}, the index says "
                f"{device.entry.kind!r}"
            )
    for device_id in registry.devices:
        if device_id not in {d.device for d in bundle.devices}:
            raise BundleRegistryError(
                f"registry entry of {device_id!r} under another device of the bundle"
            )
    return registry


def _key_history(bundle: BundleV2) -> dict[str, tuple[KeySpan, ...]]:
    """Each device's keys, after :func:`_registry`."""
    return {device: state.keys for device, state in _registry(bundle).devices.items()}


def predecessor_lineage(links: Mapping[str, str], *, asset_id: str) -> list[str]:
    """The devices whose history the asset carries on, newest first.

    ``links`` maps a successor's id to the id its ``replace`` entry names as replaced. The
    lineage is the asset's predecessor, that device's own predecessor, and so on back to a
    device that replaces none. Each gets a chain over the bundle's whole period: a
    predecessor is revoked before it is replaced and nothing of a revoked device is logged,
    so its chain is final, and the ``t`` of a ``replace`` (the operator's word, which it can
    backdate) decides nothing. More than :data:`MAX_PREDECESSORS`, or a line that comes back
    to a device of it, is refused (:class:`PredecessorChainError`).
    """
    lineage: list[str] = []
    current = asset_id
    while current in links:
        current = links[current]
        if current == asset_id or current in lineage:
            raise PredecessorChainError(
                f"the replace entries back from {asset_id!r} come back to {current!r} (the "
                "registry rules allow no such line)"
            )
        if len(lineage) == MAX_PREDECESSORS:
            raise PredecessorChainError(
                f"{asset_id!r} has more than {MAX_PREDECESSORS} predecessors; a v2 bundle "
                f"carries at most {MAX_PREDECESSORS}, so its history across them cannot be "
                "given in one (ask for the predecessors' own bundles)"
            )
        lineage.append(current)
    return lineage


@dataclass(frozen=True, slots=True, kw_only=True)
class _Link:
    """A ``replace`` entry of the bundle: who replaces whom, at which leaf."""

    successor: str
    predecessor: str
    leaf: int


def _links(registry: RegistryHistory) -> dict[str, _Link]:
    """The ``replace`` entries naming a device of the bundle as ``new``, by successor.

    Each device's registry is complete (step 3), so a device of the bundle that replaces
    another has its ``replace`` entry here, whatever the operator left out.
    """
    return {
        successor: _Link(successor=successor, predecessor=state.replaces, leaf=state.replaces_index)
        for successor, state in registry.devices.items()
        if state.replaces is not None and state.replaces_index is not None
    }


def _check_predecessors(bundle: BundleV2, registry: RegistryHistory) -> frozenset[str]:
    """The predecessor chains are exactly the asset's lineage, each over the whole period.

    The lineage (:func:`predecessor_lineage`) is walked from the asset's complete registry:
    each predecessor must be a device of the bundle (its registry, complete by its index
    entry, shows whether it replaces another in turn) with one chain over exactly the
    bundle's period, completeness judged like any chain (an empty one proven by the index
    head); every leaf of it logged before its ``replace`` entry (leaf order is the log's,
    not the operator's word; anything the log holds of the device later is refused by name).
    Returns the predecessors' ids.
    """
    links = _links(registry)
    lineage = predecessor_lineage(
        {successor: link.predecessor for successor, link in links.items()},
        asset_id=bundle.asset_id,
    )
    by_predecessor = {link.predecessor: link for link in links.values()}
    given = {d.device for d in bundle.devices}
    period = (bundle.from_ms, bundle.to_ms)
    for device in lineage:
        if device not in given:
            link = by_predecessor[device]
            raise PredecessorChainError(
                f"{link.successor!r} replaces {device!r} (replace entry at leaf {link.leaf}), "
                f"and the bundle does not give the device {device!r} (its index entry and "
                "registry, which show what it sent and whether it replaces another in turn)"
            )
    chains = [c for c in bundle.chains if c.role == "predecessor"]
    seen: set[str] = set()
    for chain in sorted(chains, key=lambda c: (c.device, c.from_ms, c.to_ms)):
        device, span = chain.device, (chain.from_ms, chain.to_ms)
        where = f"predecessor chain of {device!r} over {span[0]}..{span[1]}"
        if device not in lineage:
            raise PredecessorChainError(
                f"{where}: the asset's registry links no replace of it to the asset"
            )
        if device in seen:
            raise PredecessorChainError(f"{where}: a second chain of it")
        seen.add(device)
        if span != period:
            raise PredecessorChainError(
                f"{where}: a predecessor's chain covers the period {period[0]}..{period[1]}, "
                "like the asset's (its log ends at its revocation; the replace entry's t "
                "decides nothing)"
            )
    for device in lineage:
        if device not in seen:
            link = by_predecessor[device]
            raise PredecessorChainError(
                f"{link.successor!r} replaces {device!r} (replace entry at leaf {link.leaf}), "
                f"and the bundle has no predecessor chain of {device!r} over "
                f"{period[0]}..{period[1]}"
            )
    for chain in chains:
        link = by_predecessor[chain.device]
        late = [leaf.index for leaf in chain.leaves() if leaf.index > link.leaf]
        if late:
            raise PredecessorChainError(
                f"predecessor chain of {chain.device!r}: the message at leaf {late[0]} is "
                f"logged after the replace entry at leaf {link.leaf} (a predecessor's history "
                "ends at its replacement)"
            )
    return frozenset(lineage)


def _check_chain(
    chain: RoleChain,
    device: IndexedDevice,
    spans: Sequence[KeySpan],
    checkpoint: Checkpoint | None,
    signatures: list[_SignatureCheck],
    *,
    require_signed: bool = False,
) -> tuple[ChainFacts, list[Mapping[str, Any]]]:
    head = device.entry.head
    terminal = terminal_of(device.registry)
    labels: dict[str, int] = {}
    placed = [("before", chain.before)] if chain.before is not None else []
    placed += [("in", leaf) for leaf in chain.messages]
    placed += [("after", chain.after)] if chain.after is not None else []
    previous: tuple[int, bytes] | None = None
    gaps: list[SeqRange] = []
    inside: list[Mapping[str, Any]] = []
    hashes: dict[str, tuple[int, bytes]] = {}
    for place, leaf in placed:
        if checkpoint is not None:
            _check_inclusion(leaf, checkpoint)
        read = _read_leaf(leaf, chain.device, terminal, require_signed=require_signed)
        payload, label, message = read.payload, read.label, read.message
        seq, t_ms = payload["seq"], payload["t"]
        _check_place(label, place, t_ms, chain)
        if head is None or seq > head.seq:
            raise BeyondHeadError(
                f"{label}: beyond the index head of {chain.device!r} "
                f"({'no telemetry' if head is None else f'seq {head.seq}'})"
            )
        try:
            key = key_for_message(spans, device=chain.device, index=leaf.index, seq=seq)
        except VerificationError as exc:
            raise MessageSignatureError(f"{label}: {exc}") from exc
        if message is not None:
            signatures.append(_SignatureCheck(label=label, message=message, key=key))
        digest = message_hash(leaf.data)
        if previous is not None:
            link = step(
                previous_seq=previous[0], previous_hash=previous[1], seq=seq, prev=payload["prev"]
            )
            if link is Step.BACKWARDS:
                raise ChainOrderError(
                    f"{label}: seq {seq} follows seq {previous[0]} (messages reordered or repeated)"
                )
            if link is Step.BROKEN:
                raise ChainLinkError(
                    f"{label}: prev is not the hash of {chain.device} seq {previous[0]}"
                )
            if link is Step.GAP:
                gaps.append(SeqRange.between(previous[0], seq))
        hashes[place if place != "in" else "last_in"] = (seq, digest)
        if place == "in":
            hashes.setdefault("first_in", (seq, digest))
            inside.append(payload)
            labels[read.evidence] = labels.get(read.evidence, 0) + 1
        previous = (seq, digest)
    facts = _facts(chain, head, hashes, gaps, inside, labels=labels)
    return facts, inside


@dataclass(frozen=True, slots=True, kw_only=True)
class _Read:
    """One chain leaf, decoded: its payload, how to name it, what signs it."""

    payload: Mapping[str, Any]
    label: str
    message: SignedMessage | None
    """The COSE message whose signature is still to check (None: a terminal frame, checked)."""
    evidence: str


def _read_leaf(
    leaf: LoggedLeaf, device: str, terminal: Terminal | None, *, require_signed: bool
) -> _Read:
    """A COSE telemetry message of ``device``, or a GB/T 32960 frame of its terminal."""
    if is_envelope(leaf.data):
        frame = check_terminal_leaf(
            leaf, device=device, terminal=terminal, require_signed=require_signed
        )
        label = f"frame at leaf {leaf.index} ({device} seq {frame.seq})"
        return _Read(payload=frame.payload, label=label, message=None, evidence=frame.evidence)
    try:
        message = decode_message(leaf.data)
    except MessageError as exc:
        raise MessageSignatureError(f"message at leaf {leaf.index}: {exc}") from exc
    payload = message.payload
    label = _label(leaf.index, payload)
    if message.content_type is not None or payload.get("dev") != device:
        raise MessageSignatureError(f"{label}: is not a telemetry message of {device!r}")
    return _Read(payload=payload, label=label, message=message, evidence=SIGNED_BY_DEVICE)


def _facts(
    chain: RoleChain,
    head: ChainHead | None,
    hashes: Mapping[str, tuple[int, bytes]],
    gaps: list[SeqRange],
    inside: list[Mapping[str, Any]],
    *,
    labels: Mapping[str, int],
) -> ChainFacts:
    """Which ends the chain proves (``docs/protocol.md``, step 6); links were checked."""
    first, last = hashes.get("first_in"), hashes.get("last_in")
    before, after = hashes.get("before"), hashes.get("after")
    newest = last if last is not None else before
    follows = after is not None and (after[0] == 0 if newest is None else after[0] == newest[0] + 1)
    at_head = newest is not None and _is_head(newest, head)
    # An interval after the device's newest message: the head alone proves it is empty.
    past_head = newest is None and after is None and head is not None and head.t < chain.from_ms
    if first is not None:
        start = first[0] == 0 or (before is not None and first[0] == before[0] + 1)
    else:  # nothing in the interval: the device's newest message before it decides
        start = head is None or at_head or follows or past_head
    by_head = (
        past_head
        or (head is None and newest is None)
        or (at_head and head is not None and chain.to_ms > head.t)
    )
    end = follows or by_head
    return ChainFacts(
        device=chain.device,
        role=chain.role,
        from_ms=chain.from_ms,
        to_ms=chain.to_ms,
        first_seq=None if first is None else first[0],
        last_seq=None if last is None else last[0],
        received=len(inside),
        gaps=tuple(gaps),
        start_proven=start,
        end_proven=end,
        end_by="after" if follows else "head" if by_head else None,
        evidence=dict(sorted(labels.items())),
    )


def _stale(facts: ChainFacts, later: LaterAnchor | None) -> ChainFacts:
    """``facts`` without a head-proven end when the log had provably grown past the
    checkpoint before the chain's interval ended.

    The index head proves a chain's end only as of the checkpoint. An operator can hand out
    an older, validly anchored checkpoint to hide what the device sent since; the verifier's
    own ledger shows that a larger tree was anchored before the interval's end.

    An anchor stamped up to :data:`LATER_ANCHOR_GRACE_MS` before the end does not count: its
    time is read before its row commits, so an honest builder that took "now" in between saw
    the older checkpoint as the newest.
    """
    if (
        later is None
        or facts.end_by != "head"
        or later.anchored_at_ms + later.grace_ms >= facts.to_ms
    ):
        return facts
    return replace(
        facts,
        end_proven=False,
        end_by=None,
        end_note=(
            f"stale checkpoint: the ledger anchored a larger tree (size {later.tree_size}) at "
            f"{later.anchored_at_ms} ms, before this chain's end {facts.to_ms} ms; what the "
            "device sent after the bundle's checkpoint is not accounted for"
        ),
    )


def stale_after(facts: ChainFacts, *, seen_ms: int, tolerance_ms: int, by: str) -> ChainFacts:
    """``facts`` without a head-proven end when the checkpoint is proven current only up to
    ``seen_ms`` and the chain's interval ends more than ``tolerance_ms`` after that.

    The witnesses' side of the stale-checkpoint rule (``docs/protocol.md``, step 8): an end
    proven by the index head holds as of the checkpoint; a quorum of cosignatures dated
    ``seen_ms`` shows the checkpoint was still current then, and nothing later. ``by`` names
    who saw it (for the reason).
    """
    if facts.end_by != "head" or facts.to_ms - seen_ms <= tolerance_ms:
        return facts
    return replace(
        facts,
        end_proven=False,
        end_by=None,
        end_note=(
            f"stale checkpoint: {by} last saw it as the log's newest at {seen_ms} ms, "
            f"{(facts.to_ms - seen_ms) // 1000} s before this chain's end {facts.to_ms} ms; "
            "what the device sent after it is not accounted for"
        ),
    )


def _later_anchor(
    anchors: AnchorChecker | None, anchor: AnchorCheck, checkpoint: Checkpoint
) -> LaterAnchor | None:
    """What the verifier's own ledger anchored after ``checkpoint`` (``None``: nothing, or no
    independent ledger to ask)."""
    source: object = anchors  # a checker may or may not also be a LaterAnchorSource
    if anchor.source not in INDEPENDENT_SOURCES or not isinstance(source, LaterAnchorSource):
        return None
    return source.first_anchor_after(log_id(checkpoint.origin), size=checkpoint.size)


def _is_head(found: tuple[int, bytes], head: ChainHead | None) -> bool:
    return head is not None and found == (head.seq, head.hash)


def _check_place(label: str, place: str, t_ms: int, chain: RoleChain) -> None:
    wrong = (
        (place == "before" and t_ms >= chain.from_ms)
        or (place == "after" and t_ms < chain.to_ms)
        or (place == "in" and not chain.from_ms <= t_ms < chain.to_ms)
    )
    if wrong:
        raise PeriodBoundaryError(
            f"{label}: t = {t_ms} does not fit its place ({place}) in the {chain.role} chain's "
            f"interval {chain.from_ms}..{chain.to_ms}"
        )


def hosting_intervals(
    payloads: Sequence[Mapping[str, Any]], *, to_ms: int
) -> list[tuple[str, int, int]]:
    """``(host, from_ms, to_ms)`` per maximal run of a pack's messages naming one host.

    A run starts at its first message's ``t`` and ends at the ``t`` of the next message not
    naming that host, or at ``to_ms`` (the period's end). Messages without a host start none.
    """
    runs: list[tuple[str, int, int]] = []
    current: tuple[str, int] | None = None
    for payload in payloads:
        host = payload.get("host")
        host = host if isinstance(host, str) else None
        if current is not None and host != current[0]:
            runs.append((current[0], current[1], payload["t"]))
            current = None
        if host is not None and current is None:
            current = (host, payload["t"])
    if current is not None:
        runs.append((current[0], current[1], to_ms))
    return [run for run in runs if run[1] < run[2]]


def installed_intervals(
    payloads: Sequence[Mapping[str, Any]], *, to_ms: int
) -> list[tuple[str, int, int]]:
    """``(pack, from_ms, to_ms)`` per maximal run of a bus's messages naming one pack.

    The mirror of :func:`hosting_intervals`: a bus names every pack installed in it
    (``pack``), so a run of a pack starts at the first message naming it and ends at the
    ``t`` of the next message not naming it, or at ``to_ms`` (the period's end).
    """
    runs: list[tuple[str, int, int]] = []
    current: dict[str, int] = {}
    for payload in payloads:
        named = payload.get("pack")
        packs = {p for p in named if isinstance(p, str)} if isinstance(named, list) else set()
        runs.extend(
            (pack, current.pop(pack), payload["t"]) for pack in sorted(set(current) - packs)
        )
        for pack in sorted(packs - set(current)):
            current[pack] = payload["t"]
    runs += [(pack, start, to_ms) for pack, start in sorted(current.items())]
    return sorted(run for run in runs if run[1] < run[2])


def partner_intervals(
    kind: str, payloads: Sequence[Mapping[str, Any]], *, to_ms: int
) -> tuple[str, list[tuple[str, int, int]]]:
    """The role and intervals of the partner chains an asset's own messages require.

    A pack's ``host`` chains (:func:`hosting_intervals`), a bus's ``installed`` chains
    (:func:`installed_intervals`).
    """
    if kind == "pack":
        return "host", hosting_intervals(payloads, to_ms=to_ms)
    return "installed", installed_intervals(payloads, to_ms=to_ms)


def verify_bundle_v2(
    bundle: BundleV2,
    *,
    gateway_verifier_key: str,
    anchors: AnchorChecker | None = None,
    expected_from_ms: int | None = None,
    expected_to_ms: int | None = None,
    workers: int = DEFAULT_WORKERS,
    require_signed: bool = False,
) -> V2Report:
    """Verify a v2 bundle; raise the first failure (INVALID) or report the facts.

    ``expected_from_ms``/``expected_to_ms`` are the period the verifier expects (a lessor
    knows the lease): a bundle covering less is refused (:class:`PeriodMismatchError`).
    ``require_signed`` refuses received-only evidence (an unsigned GB/T 32960 2016 frame,
    :class:`~ledger.verify_terminal.ReceivedOnlyError`).
    """
    check_expected_period(
        from_ms=bundle.from_ms,
        to_ms=bundle.to_ms,
        expected_from_ms=expected_from_ms,
        expected_to_ms=expected_to_ms,
    )
    checkpoint, index_root = _checkpoint(bundle, gateway_verifier_key)
    anchor = _check_anchor(bundle, checkpoint, anchors=anchors)  # type: ignore[arg-type]
    devices: dict[str, IndexedDevice] = {}
    for device in bundle.devices:
        if device.device in devices:
            raise BundleDeviceError(f"device {device.device!r} appears twice")
        _check_device(device, index_root, checkpoint)
        devices[device.device] = device
    absent = _check_absent(bundle.absent, devices, index_root)
    registry = _registry(bundle)
    history = {device: state.keys for device, state in registry.devices.items()}
    asset = devices.get(bundle.asset_id)
    if asset is None:
        raise BundleDeviceError(f"the asset {bundle.asset_id!r} is not among the bundle's devices")
    if asset.entry.kind != bundle.asset_kind:
        raise AssetKindError(
            f"asset {bundle.asset_id!r} is labelled {bundle.asset_kind!r}, enrolled as "
            f"{asset.entry.kind!r}"
        )
    own = [c for c in bundle.chains if c.role == "asset"]
    if len(own) != 1 or own[0].device != bundle.asset_id:
        raise AssetChainError(
            f"the bundle has {len(own)} asset chain(s) "
            f"{[c.device for c in own]}; exactly one, of {bundle.asset_id!r}, is required"
        )
    if (own[0].from_ms, own[0].to_ms) != (bundle.from_ms, bundle.to_ms):
        raise AssetChainError(
            f"the asset chain covers {own[0].from_ms}..{own[0].to_ms}, not the period "
            f"{bundle.from_ms}..{bundle.to_ms}"
        )
    predecessors = _check_predecessors(bundle, registry)
    signatures: list[_SignatureCheck] = []
    facts: list[ChainFacts] = []
    payloads: dict[tuple[str, int, int], list[Mapping[str, Any]]] = {}
    for chain in bundle.chains:
        owner = devices.get(chain.device)
        if owner is None:
            raise BundleDeviceError(f"chain of {chain.device!r}: no such device in the bundle")
        found, inside = _check_chain(
            chain, owner, history.get(chain.device, ()), checkpoint, signatures,
            require_signed=require_signed,
        )  # fmt: skip
        facts.append(found)
        payloads[(chain.device, chain.from_ms, chain.to_ms)] = inside
    _check_signatures(signatures, workers=workers)
    own_payloads = payloads[(bundle.asset_id, bundle.from_ms, bundle.to_ms)]
    # Partner chains are checked against the chain as of the bundle's checkpoint (what the
    # builder derived them from), before a stale checkpoint withdraws a head-proven end.
    own_complete = next(f.complete for f in facts if f.role == "asset")
    proven_absent = _check_hosts(
        bundle, own_payloads, devices, own_complete=own_complete, absent=absent,
        predecessors=predecessors,
    )  # fmt: skip
    later = _later_anchor(anchors, anchor, checkpoint)
    facts = [_stale(found, later) for found in facts]
    return V2Report(
        format=bundle.format,
        asset_id=bundle.asset_id,
        asset_kind=bundle.asset_kind,
        from_ms=bundle.from_ms,
        to_ms=bundle.to_ms,
        origin=checkpoint.origin,
        checkpoint_size=checkpoint.size,
        anchor=anchor,
        witnesses=(),
        devices=len(devices),
        messages=sum(f.received for f in facts),
        registry_entries=len({leaf.index for d in bundle.devices for leaf in d.registry}),
        chains=tuple(facts),
        payloads=tuple(own_payloads),
        later_anchor=later,
        absent=proven_absent,
    )


def _check_hosts(
    bundle: BundleV2,
    own: Sequence[Mapping[str, Any]],
    devices: Mapping[str, IndexedDevice],
    *,
    own_complete: bool,
    absent: frozenset[str] = frozenset(),
    predecessors: frozenset[str] = frozenset(),
) -> tuple[AbsentPartner, ...]:
    """The partner chains are exactly those the asset's own messages require.

    A pack's ``host`` chains cover its hosting intervals, a bus's ``installed`` chains the
    intervals its messages name each pack over; no other partner chain, no other device.
    An interval whose partner is proven ``absent`` from the index needs no chain (there is
    none to give); an absence claimed of a device the asset's messages never name is
    refused like an unrelated device (nothing beyond the bundle's partners is disclosed).
    Returns the intervals covered by a proven absence.
    A bus's intervals are only checked when its own chain is complete: with messages of its
    own missing they cannot be derived, and the bundle is INCOMPLETE for that hole already
    (the installed packs' data is a supplement of a bus bundle, checked like any chain).
    """
    role, named = partner_intervals(bundle.asset_kind, own, to_ms=bundle.to_ms)
    what = "host" if role == "host" else "installed-pack"
    unnamed = sorted(absent - {partner for partner, _, _ in named})
    if unnamed:
        raise BundleDeviceError(
            f"device {unnamed[0]!r} is claimed absent from the index, and the "
            f"{bundle.asset_kind}'s messages never name it as {role} in the period"
        )
    covered = tuple(
        AbsentPartner(device=partner, role=role, from_ms=start, to_ms=end)
        for partner, start, end in named
        if partner in absent
    )
    required = [run for run in named if run[0] not in absent]
    if role == "installed" and not own_complete:
        known = (
            {bundle.asset_id} | predecessors | {c.device for c in bundle.chains if c.role == role}
        )
        for device in devices:
            if device not in known:
                raise BundleDeviceError(f"device {device!r} has no chain in the bundle")
        if any(c.role == "host" for c in bundle.chains):
            raise HostChainError("a bus bundle has no host chains")
        return covered
    partners = {"host", "installed"}
    given = sorted((c.device, c.from_ms, c.to_ms) for c in bundle.chains if c.role == role)
    wrong = sorted(c.role for c in bundle.chains if c.role in partners - {role})
    missing = sorted(set(required) - set(given))
    extra = sorted(set(given) - set(required))
    if wrong:
        raise HostChainError(f"a {bundle.asset_kind} bundle has no {wrong[0]} chains")
    if missing:
        partner, start, end = missing[0]
        says = (f"the pack's messages put it in {partner!r}" if role == "host"
                else f"the bus's messages name {partner!r} as installed")  # fmt: skip
        raise HostChainError(
            f"{says} over {start}..{end}, and the bundle has no {what} chain for that interval"
        )
    if extra or len(given) != len(set(given)):
        partner, start, end = (extra or given)[0]
        owner = "pack" if role == "host" else "bus"
        raise HostChainError(
            f"{what} chain of {partner!r} over {start}..{end} is not an interval of the "
            f"{owner}'s messages ({what} data outside the intervals)"
        )
    needed = {bundle.asset_id} | predecessors | {partner for partner, _, _ in required}
    for device in devices:
        if device not in needed:
            raise BundleDeviceError(
                f"device {device!r} is neither the asset, nor a predecessor of it, nor a "
                f"{what} of it in the period"
            )
    return covered


def check_expected_period(
    *, from_ms: int, to_ms: int, expected_from_ms: int | None, expected_to_ms: int | None
) -> None:
    """Refuse a bundle period ``[from_ms, to_ms)`` that covers less than the expected one."""
    if expected_from_ms is not None and from_ms > expected_from_ms:
        raise PeriodMismatchError(
            f"the bundle starts at {from_ms}, after the expected start {expected_from_ms}"
        )
    if expected_to_ms is not None and to_ms < expected_to_ms:
        raise PeriodMismatchError(
            f"the bundle ends at {to_ms}, before the expected end {expected_to_ms}"
        )


def check_messages_v2(
    bundle: BundleV2, *, workers: int = DEFAULT_WORKERS, require_signed: bool = False
) -> tuple[Mapping[str, Any], ...]:
    """The checked payloads in the period of every chain, in bundle order (no proofs).

    Registry rules, key validity, signatures and links, trusting the operator key in the
    bundle; :func:`verify_bundle_v2` adds the checkpoint, index, proofs and anchor. What
    ``voltproof report`` computes a condition report from.
    """
    history = _key_history(bundle)
    devices = {d.device: d for d in bundle.devices}
    signatures: list[_SignatureCheck] = []
    payloads: list[Mapping[str, Any]] = []
    for chain in bundle.chains:
        owner = devices.get(chain.device)
        if owner is None:
            raise BundleDeviceError(f"chain of {chain.device!r}: no such device in the bundle")
        _, inside = _check_chain(
            chain, owner, history.get(chain.device, ()), None, signatures,
            require_signed=require_signed,
        )  # fmt: skip
        payloads.extend(inside)
    _check_signatures(signatures, workers=workers)
    return tuple(payloads)
