"""Offline verification of an evidence bundle (contract 4), trusting only the gateway key and
the ledger.

:func:`verify_bundle` checks, in this order: the checkpoint signature (gateway verifier key);
the anchor (the receipt names this log and the anchored size and root, a consistency proof
leads from the checkpoint to it, and the ledger holds it); every registry entry (included in
the log, signed by the operator key or, for a rotation, the device's current key); the
device key list; every message (included in the log, decodes, signed by the device key valid
at its leaf index and seq); every hash-chain link. It raises a precise
:class:`BundleVerificationError` subclass naming exactly what failed, or returns a
:class:`VerificationReport` whose chains list the seq gaps (incompleteness, not forgery).

:func:`check_messages` is the signature-and-chain part alone (no trusted key needed): the
condition report uses it to recompute figures from a bundle. Pure: the ledger is checked by
the anchor checker the caller passes in (``ledger.anchors.checkers``); this module imports no
anchor backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

from .anchors.base import AnchorChecker, AnchorReceipt, AnchorTimeSource
from .anchors.errors import AnchorVerificationError
from .bundle import Bundle, DeviceChain, LoggedLeaf
from .chain import SeqRange, Step, step
from .checkpoint import Checkpoint, CheckpointError, log_id, verify_checkpoint
from .errors import VerificationError
from .merkle import MerkleProofError, hash_leaf, verify_consistency, verify_inclusion
from .message import MessageError, SignedMessage, decode_message, message_hash
from .note import NoteError
from .registry import KeySpan, RegistryEntryError, build_key_history, key_for_message

__all__ = [
    "DEFAULT_WORKERS",
    "AnchorCheck",
    "BundleAnchorError",
    "BundleCheckpointError",
    "BundleRegistryError",
    "BundleVerificationError",
    "ChainLinkError",
    "ChainOrderError",
    "ChainReport",
    "CheckedMessages",
    "ConsistencyProofError",
    "DeviceKeysError",
    "InclusionProofError",
    "MessageSignatureError",
    "PeriodBoundaryError",
    "SeqRange",
    "VerificationReport",
    "check_messages",
    "verify_bundle",
]

ANCHOR_SOURCES: Final = (
    "ledger export", "evm rpc", "evm rpc, not final", "embedded export", "not checked",
)  # fmt: skip
"""How an anchor was checked. ``evm rpc, not final``: the chain holds the anchor as the
receipt says, in a block with fewer confirmations than the verifier asked for (not yet an
independent anchor: it could still be reorganised away)."""
DEFAULT_WORKERS: Final = 2
"""Threads that check message signatures unless the caller says otherwise."""


class BundleVerificationError(VerificationError):
    """A bundle does not check out; the message names the exact item and what failed."""


class BundleCheckpointError(BundleVerificationError):
    """The checkpoint is malformed or not signed by the trusted gateway key."""


class InclusionProofError(BundleVerificationError):
    """A message's or registry entry's inclusion proof does not lead to the checkpoint root."""


class ConsistencyProofError(BundleVerificationError):
    """The bundle's checkpoint is not a prefix of the anchored tree."""


class BundleAnchorError(BundleVerificationError):
    """The anchor receipt does not match the bundle or is not on the ledger."""


class BundleRegistryError(BundleVerificationError):
    """A registry entry is malformed, wrongly signed or out of place."""


class DeviceKeysError(BundleVerificationError):
    """The bundle's device list disagrees with the keys the registry entries establish."""


class MessageSignatureError(BundleVerificationError):
    """A message does not decode, names another device, or its signature or key is not valid."""


class ChainOrderError(BundleVerificationError):
    """Messages of a device are not in strictly increasing seq order (reordered or repeated)."""


class ChainLinkError(BundleVerificationError):
    """A message's ``prev`` is not the hash of the device's previous message."""


class PeriodBoundaryError(BundleVerificationError):
    """A message lies outside the part of the period its place in the bundle claims."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainReport:
    """What the hash chain proves about one device's messages in the period."""

    device: str
    first_seq: int | None
    last_seq: int | None
    received: int
    gaps: tuple[SeqRange, ...]
    start_proven: bool
    end_proven: bool

    @property
    def expected(self) -> int:
        """Messages the device produced between the first and last seq received."""
        return self.received + sum(gap.count for gap in self.gaps)

    @property
    def complete(self) -> bool:
        """No gap, and both ends of the period are pinned by boundary evidence."""
        return not self.gaps and self.start_proven and self.end_proven


@dataclass(frozen=True, slots=True, kw_only=True)
class AnchorCheck:
    """How the anchor was checked: ``source`` is one of :data:`ANCHOR_SOURCES`."""

    source: str
    backend: str
    tree_size: int
    anchored_at_ms: int | None = None
    """When the checked ledger recorded the anchor (the local table's entry time, an EVM
    block's timestamp); ``None`` when the anchor was not checked or the checker cannot say."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckedMessages:
    """Messages whose signatures, keys and chain links were checked, with the chain reports."""

    payloads: tuple[Mapping[str, Any], ...]
    chains: tuple[ChainReport, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class VerificationReport:
    """A bundle that verified: what it covers and how complete it is."""

    asset_id: str
    asset_kind: str
    origin: str
    checkpoint_size: int
    messages: int
    registry_entries: int
    chains: tuple[ChainReport, ...]
    anchor: AnchorCheck

    @property
    def complete(self) -> bool:
        """Every chain is complete over the period."""
        return all(chain.complete for chain in self.chains)


def _describe(leaf: LoggedLeaf) -> str:
    try:
        payload = decode_message(leaf.data).payload
    except MessageError:
        return f"message at leaf {leaf.index}"
    return _label(leaf.index, payload)


def _label(index: int, payload: Mapping[str, Any]) -> str:
    """What :func:`_describe` says of the leaf at ``index`` whose payload is ``payload``."""
    if "seq" in payload:
        return f"message at leaf {index} ({payload['dev']} seq {payload['seq']})"
    return f"registry entry at leaf {index} ({payload.get('type')} {payload.get('dev')})"


def _check_inclusion(leaf: LoggedLeaf, checkpoint: Checkpoint) -> None:
    try:
        verify_inclusion(
            leaf_hash=hash_leaf(leaf.data),
            index=leaf.index,
            size=checkpoint.size,
            proof=list(leaf.proof),
            root=checkpoint.root,
        )
    except MerkleProofError as exc:
        raise InclusionProofError(
            f"{_describe(leaf)}: inclusion proof does not match checkpoint root ({exc})"
        ) from exc


def _check_anchor(
    bundle: Bundle,
    checkpoint: Checkpoint,
    *,
    anchors: AnchorChecker | None,
) -> AnchorCheck:
    anchor = bundle.anchor
    receipt = anchor.receipt
    if receipt.log_id != log_id(checkpoint.origin):
        raise BundleAnchorError(
            f"anchor receipt is for log id {receipt.log_id.hex()}, not this log "
            f"({checkpoint.origin!r}, {log_id(checkpoint.origin).hex()})"
        )
    if (receipt.tree_size, receipt.root) != (anchor.size, anchor.root):
        raise BundleAnchorError(
            f"anchor receipt commits size {receipt.tree_size} root {receipt.root.hex()}, the "
            f"bundle's anchored tree is size {anchor.size} root {anchor.root.hex()}"
        )
    if anchor.size < checkpoint.size:
        raise BundleAnchorError(
            f"anchored tree size {anchor.size} is smaller than the checkpoint size "
            f"{checkpoint.size}: the checkpoint is not anchored yet"
        )
    try:
        verify_consistency(
            size1=checkpoint.size,
            size2=anchor.size,
            proof=list(anchor.consistency),
            root1=checkpoint.root,
            root2=anchor.root,
        )
    except MerkleProofError as exc:
        raise ConsistencyProofError(
            f"consistency proof from checkpoint size {checkpoint.size} to anchored size "
            f"{anchor.size} does not verify ({exc})"
        ) from exc
    return _check_ledger(receipt, anchors=anchors, embedded=anchor.local_export)


def _check_ledger(
    receipt: AnchorReceipt,
    *,
    anchors: AnchorChecker | None,
    embedded: Mapping[str, Any] | None,
) -> AnchorCheck:
    source = "not checked"
    anchored_at_ms = None
    try:
        if anchors is not None:
            source = anchors(receipt, embedded=embedded)
            if source != "not checked" and isinstance(anchors, AnchorTimeSource):
                anchored_at_ms = anchors.anchored_at_ms(receipt)
    except AnchorVerificationError as exc:
        raise BundleAnchorError(
            f"anchor of size {receipt.tree_size} ({receipt.backend}): {exc}"
        ) from exc
    return AnchorCheck(source=source, backend=receipt.backend, tree_size=receipt.tree_size,
                       anchored_at_ms=anchored_at_ms)  # fmt: skip


def _key_history(bundle: Bundle) -> dict[str, tuple[KeySpan, ...]]:
    try:
        # The other side of a ``replace`` whose device the bundle does not hold is not checked.
        history = build_key_history(
            ((leaf.index, leaf.data) for leaf in bundle.registry),
            operator_key=bundle.operator_key,
            scope=[device.device for device in bundle.devices],
        )
    except RegistryEntryError as exc:
        raise BundleRegistryError(str(exc)) from exc
    for device in bundle.devices:
        spans = history.get(device.device, ())
        keys = tuple(span.key for span in spans)
        if keys != device.keys:
            raise DeviceKeysError(
                f"device {device.device!r}: the bundle lists {len(device.keys)} key(s) "
                f"{[k.hex()[:16] for k in device.keys]}, the registry entries establish "
                f"{[k.hex()[:16] for k in keys]}"
            )
        if spans and spans[0].kind != device.kind:
            raise DeviceKeysError(
                f"device {device.device!r}: the bundle says kind {device.kind!r}, "
                f"the enrolment says {spans[0].kind!r}"
            )
    return history


@dataclass(frozen=True, slots=True, kw_only=True)
class _SignatureCheck:
    """A message whose signature is still to check under ``key``; ``label`` names it."""

    label: str
    message: SignedMessage
    key: bytes


def _check_chain(
    chain: DeviceChain,
    history: Mapping[str, tuple[KeySpan, ...]],
    bundle: Bundle,
    signatures: list[_SignatureCheck],
) -> tuple[ChainReport, list[Mapping[str, Any]]]:
    """Check ``chain`` except its signatures, which go to ``signatures`` in bundle order."""
    ordered: list[tuple[str, LoggedLeaf]] = []
    if chain.before is not None:
        ordered.append(("before", chain.before))
    ordered.extend(("in", leaf) for leaf in chain.messages)
    if chain.after is not None:
        ordered.append(("after", chain.after))
    spans = history.get(chain.device, ())
    previous: tuple[int, bytes] | None = None
    gaps: list[SeqRange] = []
    inside: list[Mapping[str, Any]] = []
    for role, leaf in ordered:
        try:
            message = decode_message(leaf.data)
        except MessageError as exc:
            raise MessageSignatureError(f"message at leaf {leaf.index}: {exc}") from exc
        payload = message.payload
        label = _label(leaf.index, payload)  # what _describe says, without decoding again
        if message.content_type is not None or payload["dev"] != chain.device:
            raise MessageSignatureError(f"{label}: is not a telemetry message of {chain.device!r}")
        seq, t_ms = payload["seq"], payload["t"]
        _check_period(label, role, t_ms, bundle)
        try:
            key = key_for_message(spans, device=chain.device, index=leaf.index, seq=seq)
        except VerificationError as exc:
            raise MessageSignatureError(f"{label}: {exc}") from exc
        signatures.append(_SignatureCheck(label=label, message=message, key=key))
        if previous is not None:
            prev_seq, prev_hash = previous
            link = step(
                previous_seq=prev_seq, previous_hash=prev_hash, seq=seq, prev=payload["prev"]
            )
            if link is Step.BACKWARDS:
                raise ChainOrderError(
                    f"{label}: seq {seq} follows seq {prev_seq} (messages reordered or repeated)"
                )
            if link is Step.BROKEN:
                raise ChainLinkError(
                    f"{label}: prev {payload['prev'].hex()[:16]}... is not the hash of "
                    f"{chain.device} seq {prev_seq} ({prev_hash.hex()[:16]}...)"
                )
            if link is Step.GAP:
                gaps.append(SeqRange.between(prev_seq, seq))
        previous = (seq, message_hash(leaf.data))
        if role == "in":
            inside.append(payload)
    seqs = [p["seq"] for p in inside]
    first_in = seqs[0] if seqs else None
    report = ChainReport(
        device=chain.device,
        first_seq=first_in,
        last_seq=seqs[-1] if seqs else None,
        received=len(inside),
        gaps=tuple(gaps),
        start_proven=chain.before is not None or first_in == 0,
        end_proven=chain.after is not None,
    )
    return report, inside


def _check_period(label: str, role: str, t_ms: int, bundle: Bundle) -> None:
    inside = bundle.from_ms <= t_ms < bundle.to_ms
    wrong = (
        (role == "before" and t_ms >= bundle.from_ms)
        or (role == "after" and t_ms < bundle.to_ms)
        or (role == "in" and not inside)
    )
    if wrong:
        raise PeriodBoundaryError(
            f"{label}: t = {t_ms} does not fit its place ({role}) in the period "
            f"{bundle.from_ms}..{bundle.to_ms}"
        )


def _signature_failures(
    checks: Sequence[_SignatureCheck],
) -> list[tuple[_SignatureCheck, VerificationError]]:
    """The checks of ``checks`` whose signature does not verify, in order."""
    failures: list[tuple[_SignatureCheck, VerificationError]] = []
    for check in checks:
        try:
            check.message.verify_signature(check.key)
        except VerificationError as exc:
            failures.append((check, exc))
    return failures


def _check_signatures(checks: Sequence[_SignatureCheck], *, workers: int) -> None:
    """Verify every signature, ``workers`` contiguous slices in parallel; raise the first failure.

    Ed25519 verification releases the GIL, so threads share the work; the failures are
    collected per slice and the one earliest in bundle order is raised.
    """
    if workers == 1 or len(checks) < 2 * workers:
        failures = _signature_failures(checks)
    else:
        step = -(-len(checks) // workers)
        slices = [checks[i : i + step] for i in range(0, len(checks), step)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            failures = [f for found in pool.map(_signature_failures, slices) for f in found]
    if failures:
        check, exc = failures[0]
        raise MessageSignatureError(f"{check.label}: {exc}") from exc


def check_messages(bundle: Bundle, *, workers: int = DEFAULT_WORKERS) -> CheckedMessages:
    """Check registry signers, device keys, message signatures and hash-chain links.

    Trusts the operator key named in the bundle and checks no proof: :func:`verify_bundle`
    adds the checkpoint, the inclusion proofs and the anchor. ``workers`` threads check the
    message signatures; whatever their number, the error raised is the one of the first
    failing message in bundle order.
    """
    if type(workers) is not int or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    history = _key_history(bundle)
    seen: set[str] = set()
    payloads: list[Mapping[str, Any]] = []
    reports: list[ChainReport] = []
    signatures: list[_SignatureCheck] = []
    failure: BundleVerificationError | None = None
    try:
        for chain in bundle.chains:
            if chain.device in seen:
                raise ChainOrderError(f"device {chain.device!r} has two chains in the bundle")
            seen.add(chain.device)
            report, inside = _check_chain(chain, history, bundle, signatures)
            reports.append(report)
            payloads.extend(inside)
    except BundleVerificationError as exc:
        # Every signature queued so far comes before this failure in bundle order.
        failure = exc
    _check_signatures(signatures, workers=workers)
    if failure is not None:
        raise failure
    return CheckedMessages(payloads=tuple(payloads), chains=tuple(reports))


def verify_bundle(
    bundle: Bundle,
    *,
    gateway_verifier_key: str,
    anchors: AnchorChecker | None = None,
    workers: int = DEFAULT_WORKERS,
) -> VerificationReport:
    """Verify everything in ``bundle``; raise a :class:`BundleVerificationError` or report.

    ``gateway_verifier_key`` (C2SP verifier key text) is the one trusted key. The anchor's
    receipt, size, root and consistency proof are always checked; the ledger itself is
    checked by ``anchors`` (e.g. ``ledger.anchors.evm_checker.anchor_checker(...)``: a local
    export the caller obtained independently, an EVM node, or the export embedded in the
    bundle), or not at all when ``anchors`` is ``None`` (``AnchorCheck.source``).
    ``workers`` threads check the message signatures (see :func:`check_messages`).
    """
    try:
        checkpoint = verify_checkpoint(bundle.checkpoint, verifier_key=gateway_verifier_key)
    except (CheckpointError, NoteError) as exc:
        raise BundleCheckpointError(f"checkpoint: {exc}") from exc
    anchor = _check_anchor(bundle, checkpoint, anchors=anchors)
    for leaf in bundle.registry:
        _check_inclusion(leaf, checkpoint)
    leaves = [
        leaf
        for chain in bundle.chains
        for leaf in (chain.before, *chain.messages, chain.after)
        if leaf is not None
    ]
    for leaf in leaves:
        _check_inclusion(leaf, checkpoint)
    checked = check_messages(bundle, workers=workers)
    return VerificationReport(
        asset_id=bundle.asset_id,
        asset_kind=bundle.asset_kind,
        origin=checkpoint.origin,
        checkpoint_size=checkpoint.size,
        messages=len(checked.payloads),
        registry_entries=len(bundle.registry),
        chains=checked.chains,
        anchor=anchor,
    )
