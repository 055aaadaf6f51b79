"""A bundle's witness cosignatures and timeline: the lessor's witness policy and timeliness.

Two things a verifier who names witnesses learns from a bundle (``docs/witness.md``,
"Bundles and verify"; ``docs/protocol.md``, "Witness policy and timeliness"):

- **The policy.** The checkpoint the bundle is proven against must itself carry at least
  ``quorum`` valid cosignatures by the named witnesses, none dated after the verifier's clock
  plus a skew (:func:`check_bundle_witnesses`). Not an earlier cosigned checkpoint that it
  extends: the bundle's completeness (the index heads) is stated as of its own checkpoint,
  and a checkpoint no witness saw may be one branch of a fork shown to this verifier only.
  Met, the checkpoint is independently anchored (the witnesses are parties the operator does
  not control); not met, :class:`WitnessPolicyError` names why each witness does not count.
- **Timeliness.** The bundle's checkpoint and its ``timeline`` entries (earlier cosigned
  checkpoints, each with a consistency proof to it) give every message a proven existence
  time; per chain the delays from ``t`` to that time, and the late count
  (:mod:`ledger.timeliness`).

A timeline entry that is not of this log, is above the bundle's checkpoint or whose
consistency proof does not verify makes the bundle INVALID (:class:`TimelineEntryError`,
:func:`check_timeline`): the operator wrote it. One whose cosignatures the verifier does not
trust proves nothing and is listed, not refused. Pure: the caller passes its clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .bundle import Bundle
from .bundle_v2 import BundleV2, TimelineEntry
from .checkpoint import Checkpoint, CheckpointError, parse_checkpoint
from .cosignature import WitnessKey
from .merkle import MerkleProofError, verify_consistency
from .message import MessageError, decode_message
from .note import NoteError, split_note
from .timeliness import (
    DEFAULT_LATE_MS,
    ChainDelays,
    CosignedCheckpoint,
    MessageTime,
    QuorumError,
    RefusedCheckpoint,
    chain_delays,
    check_witness_quorum,
    proof_times,
)
from .verify import BundleVerificationError, _check_inclusion

__all__ = [
    "TimelineEntryError",
    "WitnessPolicyError",
    "WitnessReport",
    "bundle_checkpoint",
    "bundle_messages",
    "check_bundle_witnesses",
    "check_messages_included",
    "check_timeline",
]


class WitnessPolicyError(BundleVerificationError):
    """The bundle's checkpoint lacks the quorum of valid cosignatures by the named witnesses."""


class TimelineEntryError(BundleVerificationError):
    """A timeline entry is not a checkpoint of this log consistent with the bundle's."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WitnessReport:
    """The witness policy met, and the timeliness of the bundle's messages."""

    quorum: int
    keys: tuple[str, ...]
    counted: Mapping[str, int]
    """vkey -> its cosignature's timestamp on the bundle's checkpoint (POSIX seconds)."""
    refused: Mapping[str, str]
    """vkey -> why it does not count on the bundle's checkpoint."""
    checkpoint_time_s: int
    """The time the quorum proves for the bundle's checkpoint (quorum-th earliest)."""
    timeline_entries: int
    timeline_refused: tuple[RefusedCheckpoint, ...]
    """Timeline entries (position in the bundle's list) that prove nothing to this verifier."""
    delays: Mapping[str, ChainDelays]
    late_ms: int

    @property
    def seen_s(self) -> int:
        """The latest time the quorum proves the bundle's checkpoint was still the witnesses'
        view of the log (quorum-th latest timestamp: ``quorum - 1`` witnesses with clocks set
        ahead cannot make an old checkpoint look current)."""
        return sorted(self.counted.values(), reverse=True)[self.quorum - 1]

    @property
    def late(self) -> int:
        """Messages committed more than ``late_ms`` after their ``t``, over every chain."""
        return sum(chain.late for chain in self.delays.values())

    @property
    def impossible(self) -> int:
        """Messages proven to exist before their own ``t``, over every chain."""
        return sum(chain.impossible for chain in self.delays.values())


def _body(note: str, what: str) -> Checkpoint:
    try:
        body, _ = split_note(note)
        return parse_checkpoint(body)
    except (NoteError, CheckpointError) as exc:
        raise TimelineEntryError(f"{what} is not a checkpoint note: {exc}") from exc


def bundle_checkpoint(bundle: Bundle | BundleV2) -> Checkpoint:
    """The checkpoint a bundle is proven against (its body; the signature is checked by the
    bundle's verifier)."""
    return _body(bundle.checkpoint, "the bundle's checkpoint")


def check_timeline(checkpoint: Checkpoint, timeline: Sequence[TimelineEntry]) -> None:
    """Every entry is a checkpoint of this log, not above ``checkpoint``, consistent with it."""
    for position, entry in enumerate(timeline):
        what = f"timeline entry {position} (size {entry.size})"
        found = _body(entry.note, what)
        if found.origin != checkpoint.origin:
            raise TimelineEntryError(
                f"{what} is of log {found.origin!r}, not {checkpoint.origin!r}"
            )
        if found.size > checkpoint.size:
            raise TimelineEntryError(
                f"{what} is above the bundle's checkpoint size {checkpoint.size}"
            )
        try:
            verify_consistency(
                size1=found.size, size2=checkpoint.size, proof=list(entry.consistency),
                root1=found.root, root2=checkpoint.root,
            )  # fmt: skip
        except MerkleProofError as exc:
            raise TimelineEntryError(
                f"{what}: its consistency proof to the bundle's checkpoint size "
                f"{checkpoint.size} does not verify ({exc})"
            ) from exc


def check_messages_included(bundle: Bundle | BundleV2) -> None:
    """Every chain message's inclusion proof against the bundle's checkpoint.

    What ``voltproof report --witness`` adds to its message checks: its leaf indexes are
    then those of the log the witnesses cosigned (they checked the gateway's signature), so
    the delays computed from them are proven. Raises ``InclusionProofError``.
    """
    checkpoint = bundle_checkpoint(bundle)
    for chain in bundle.chains:
        for leaf in chain.messages:
            _check_inclusion(leaf, checkpoint)


def bundle_messages(bundle: Bundle | BundleV2) -> list[MessageTime]:
    """The messages inside the period of every chain, each with its chain (device) and ``t``.

    The chains were verified before (signatures, links, inclusion): only decoded here.
    """
    found: list[MessageTime] = []
    for chain in bundle.chains:
        for leaf in chain.messages:
            try:
                payload = decode_message(leaf.data).payload
            except MessageError as exc:  # pragma: no cover - verified before
                raise BundleVerificationError(f"message at leaf {leaf.index}: {exc}") from exc
            found.append(
                MessageTime(
                    chain=chain.device, seq=payload["seq"], leaf_index=leaf.index,
                    t_ms=payload["t"],
                )
            )  # fmt: skip
    return found


def check_bundle_witnesses(
    bundle: Bundle | BundleV2,
    *,
    keys: Iterable[str | WitnessKey],
    quorum: int,
    not_after: int,
    late_ms: int = DEFAULT_LATE_MS,
) -> WitnessReport:
    """Apply the witness policy to an already verified bundle and compute its timeliness.

    Raises :class:`WitnessPolicyError` when the bundle's checkpoint does not carry ``quorum``
    valid cosignatures by ``keys`` dated no later than ``not_after`` (POSIX seconds), and
    :class:`TimelineEntryError` for a timeline entry that is not consistent with it.
    ``ValueError`` for a quorum below 1 or above the number of distinct keys.
    """
    keys = list(keys)
    checkpoint = bundle_checkpoint(bundle)
    timeline = bundle.timeline if isinstance(bundle, BundleV2) else None
    check_timeline(checkpoint, timeline or ())
    try:
        result = check_witness_quorum(
            bundle.checkpoint, keys=keys, quorum=quorum, not_after=not_after
        )
    except QuorumError as exc:
        raise WitnessPolicyError(
            f"the bundle's checkpoint (size {checkpoint.size}) is not witnessed: {exc}"
        ) from exc
    cosigned = [CosignedCheckpoint(note=bundle.checkpoint)]
    cosigned += [CosignedCheckpoint(note=e.note, proof=e.consistency) for e in timeline or ()]
    proven = proof_times(
        checkpoint=checkpoint, cosigned=cosigned, keys=keys, quorum=quorum, not_after=not_after
    )
    refused = tuple(  # position 0 is the bundle's own checkpoint, which met the quorum above
        RefusedCheckpoint(position=item.position - 1, reason=item.reason)
        for item in proven.refused
        if item.position > 0
    )
    return WitnessReport(
        quorum=quorum,
        keys=tuple(sorted({str(k) for k in result.counted} | set(result.refused))),
        counted=dict(result.counted),
        refused=dict(result.refused),
        checkpoint_time_s=result.time_s(quorum),
        timeline_entries=len(timeline or ()),
        timeline_refused=refused,
        delays=chain_delays(bundle_messages(bundle), proven, late_ms=late_ms),
        late_ms=late_ms,
    )
