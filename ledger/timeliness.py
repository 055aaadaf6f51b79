"""Timeliness: when a message is proven to have existed, and how late it was committed.

A witness cosignature (``cosignature/v1``) carries the witness's clock: the checkpoint it
cosigns, and every leaf below that checkpoint's size, existed no later than that time. Given
the checkpoint a bundle is proven against and a list of cosigned checkpoints, each with a
consistency proof to it, this module computes

- :func:`proof_times`: the cosigned checkpoints that count (trusted witnesses, a quorum of
  them, consistent with the bundle's checkpoint) and the time each one proves;
- :meth:`Timeline.existence_ms`: for a leaf index, the earliest proven existence time (the
  earliest proven time of a checkpoint whose size is above the index);
- :func:`chain_delays`: per chain, the delays from each message's claimed measurement time
  ``t`` to that bound (p50, p99, max, the count beyond a threshold), flagging late data.

A checkpoint proves its time only with ``quorum`` trusted witnesses: the proven time is the
``quorum``-th earliest of their timestamps (so that ``quorum - 1`` lying witnesses cannot
make a message look earlier). :func:`check_witness_quorum` is the same policy for one note.

Pure: no clock. The caller passes ``not_after`` (its own now, plus an allowed skew); a
cosignature after it does not count. Times are POSIX seconds in cosignatures and Unix
milliseconds in messages; results are in milliseconds.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from .checkpoint import Checkpoint, CheckpointError, parse_checkpoint
from .cosignature import (
    CosignatureError,
    FutureCosignatureError,
    MissingCosignatureError,
    WitnessKey,
    parse_witness_key,
    verify_cosignature,
)
from .errors import VerificationError
from .merkle import MerkleProofError, verify_consistency
from .note import NoteError, split_note

__all__ = [
    "DEFAULT_LATE_MS",
    "ChainDelays",
    "CosignedCheckpoint",
    "MessageTime",
    "ProofTime",
    "QuorumError",
    "QuorumResult",
    "RefusedCheckpoint",
    "Timeline",
    "bound_ms",
    "chain_delays",
    "check_witness_quorum",
    "percentile",
    "proof_times",
]

DEFAULT_LATE_MS: Final = 15 * 60 * 1000
"""Data committed more than 15 minutes after its ``t`` is late (issue 16)."""


def bound_ms(timestamp_s: int) -> int:
    """The existence bound in ms that a cosignature timestamp (whole POSIX seconds) proves.

    A witness stamps the second it signed in, truncated: it signed before ``timestamp + 1``
    s. Taking the timestamp itself would claim up to a second more than is proven (and make
    honest, live data look measured after it was committed).
    """
    return (timestamp_s + 1) * 1000


class QuorumError(VerificationError):
    """Fewer than the required number of trusted witnesses validly cosigned a checkpoint."""

    def __init__(self, message: str, *, counted: int, quorum: int) -> None:
        super().__init__(message)
        self.counted = counted
        self.quorum = quorum


@dataclass(frozen=True, slots=True, kw_only=True)
class QuorumResult:
    """Which trusted witnesses count for a note, and why the others do not."""

    counted: Mapping[str, int]
    """vkey -> earliest valid cosignature timestamp (POSIX seconds)."""
    refused: Mapping[str, str]
    """vkey -> why its cosignature does not count (absent, future, does not verify)."""

    def time_s(self, quorum: int) -> int:
        """The time the quorum proves: the ``quorum``-th earliest counted timestamp."""
        return sorted(self.counted.values())[quorum - 1]


def _keys(keys: Iterable[str | WitnessKey]) -> dict[str, WitnessKey]:
    parsed: dict[str, WitnessKey] = {}
    for given in keys:
        key = given if isinstance(given, WitnessKey) else parse_witness_key(given)
        parsed[str(key)] = key  # one witness named twice counts once
    return parsed


def _check_quorum(quorum: int, keys: int) -> None:
    if type(quorum) is not int or quorum < 1:
        raise ValueError(f"a witness quorum must be at least 1, got {quorum!r}")
    if quorum > keys:
        raise ValueError(f"a quorum of {quorum} cannot be met by {keys} witness key(s)")


def _count(note: str, keys: Mapping[str, WitnessKey], not_after: int | None) -> QuorumResult:
    counted: dict[str, int] = {}
    refused: dict[str, str] = {}
    for name, key in keys.items():
        try:
            counted[name] = verify_cosignature(note, witness_key=key, not_after=not_after)
        except MissingCosignatureError:
            refused[name] = "no cosignature"
        except FutureCosignatureError as exc:
            refused[name] = f"timestamp {exc.timestamp} is after {exc.not_after}"
        except CosignatureError as exc:
            refused[name] = str(exc)
    return QuorumResult(counted=counted, refused=refused)


def check_witness_quorum(
    note: str,
    *,
    keys: Iterable[str | WitnessKey],
    quorum: int,
    not_after: int | None,
) -> QuorumResult:
    """Check that at least ``quorum`` of the witness ``keys`` validly cosigned ``note``.

    A cosignature counts only if it is by one of ``keys`` (lines by unknown keys are
    ignored), verifies over this note's body (one over another checkpoint does not), and
    its timestamp is not after ``not_after``. Raises :class:`QuorumError` (naming why each
    missing witness did not count) when fewer than ``quorum`` count; ``ValueError`` for a
    quorum below 1 or above the number of distinct keys.
    """
    parsed = _keys(keys)
    _check_quorum(quorum, len(parsed))
    try:
        split_note(note)
    except NoteError as exc:
        raise QuorumError(f"not a signed note: {exc}", counted=0, quorum=quorum) from exc
    result = _count(note, parsed, not_after)
    if len(result.counted) < quorum:
        reasons = "; ".join(f"{key}: {why}" for key, why in sorted(result.refused.items()))
        raise QuorumError(
            f"{len(result.counted)} of {quorum} required witness cosignature(s) count ({reasons})",
            counted=len(result.counted),
            quorum=quorum,
        )
    return result


@dataclass(frozen=True, slots=True, kw_only=True)
class CosignedCheckpoint:
    """A checkpoint note with cosignatures, and a consistency proof to the bundle's checkpoint."""

    note: str
    proof: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ProofTime:
    """A cosigned checkpoint that counts: every leaf below ``size`` existed by ``time_ms``."""

    size: int
    time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RefusedCheckpoint:
    """A cosigned checkpoint that does not count, and why (position in the input list)."""

    position: int
    reason: str


@dataclass(frozen=True, slots=True)
class Timeline:
    """Proven times of checkpoints, smallest size first; answers per leaf index."""

    points: tuple[ProofTime, ...]
    refused: tuple[RefusedCheckpoint, ...] = ()
    _sizes: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _earliest: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        points = sorted(self.points, key=lambda point: point.size)
        object.__setattr__(self, "points", tuple(points))
        object.__setattr__(self, "_sizes", tuple(point.size for point in points))
        earliest: list[int] = []
        for point in reversed(points):  # suffix minimum: the larger checkpoints also cover
            earliest.append(min(point.time_ms, earliest[-1]) if earliest else point.time_ms)
        object.__setattr__(self, "_earliest", tuple(reversed(earliest)))

    def existence_ms(self, leaf_index: int) -> int | None:
        """The earliest proven time of a checkpoint covering ``leaf_index``; ``None`` if none."""
        if leaf_index < 0:
            raise ValueError(f"leaf index {leaf_index} is negative")
        position = bisect_right(self._sizes, leaf_index)  # first size > leaf_index
        return self._earliest[position] if position < len(self._earliest) else None


def _judge(
    cosigned: CosignedCheckpoint,
    anchor: Checkpoint,
    keys: Mapping[str, WitnessKey],
    quorum: int,
    not_after: int | None,
) -> tuple[ProofTime | None, str]:
    try:
        body, _ = split_note(cosigned.note)
        checkpoint = parse_checkpoint(body)
    except (NoteError, CheckpointError) as exc:
        return None, f"not a checkpoint note: {exc}"
    if checkpoint.origin != anchor.origin:
        return None, f"origin {checkpoint.origin!r} is not {anchor.origin!r}"
    if checkpoint.size > anchor.size:
        return None, f"size {checkpoint.size} is above the bundle's checkpoint {anchor.size}"
    try:
        verify_consistency(
            size1=checkpoint.size,
            size2=anchor.size,
            proof=list(cosigned.proof),
            root1=checkpoint.root,
            root2=anchor.root,
        )
    except MerkleProofError as exc:
        return None, f"not consistent with the bundle's checkpoint: {exc}"
    result = _count(cosigned.note, keys, not_after)
    if len(result.counted) < quorum:
        return None, f"{len(result.counted)} of {quorum} required witness cosignature(s) count"
    return ProofTime(size=checkpoint.size, time_ms=bound_ms(result.time_s(quorum))), ""


def proof_times(
    *,
    checkpoint: Checkpoint,
    cosigned: Sequence[CosignedCheckpoint],
    keys: Iterable[str | WitnessKey],
    quorum: int = 1,
    not_after: int | None,
) -> Timeline:
    """The proven times of the ``cosigned`` checkpoints that count against ``checkpoint``.

    One counts when its body parses, has the bundle's origin and a size not above it, its
    consistency proof to ``checkpoint`` verifies, and ``quorum`` of ``keys`` cosigned it
    (see :func:`check_witness_quorum`). The others are listed in ``Timeline.refused``: a
    refused checkpoint proves nothing, it does not make the bundle invalid.
    """
    parsed = _keys(keys)
    _check_quorum(quorum, len(parsed))
    points: list[ProofTime] = []
    refused: list[RefusedCheckpoint] = []
    for position, item in enumerate(cosigned):
        point, reason = _judge(item, checkpoint, parsed, quorum, not_after)
        if point is None:
            refused.append(RefusedCheckpoint(position=position, reason=reason))
        else:
            points.append(point)
    return Timeline(tuple(points), tuple(refused))


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageTime:
    """A message of a chain: where it is in the log and when it claims to be measured."""

    chain: str
    seq: int
    leaf_index: int
    t_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainDelays:
    """Per chain: delays from a message's ``t`` to its proven existence time, in ms."""

    chain: str
    count: int
    """Messages of the chain given."""
    unproven: int
    """Messages no counted checkpoint covers (no timeliness claim for them)."""
    p50_ms: int | None
    p99_ms: int | None
    max_ms: int | None
    late: int
    """Messages whose delay is above the threshold."""
    late_ms: int
    """The threshold."""
    first_late_seq: int | None
    """The lowest seq of a late message (where to look first)."""
    impossible: int
    """Messages proven to exist before their claimed ``t`` (a clock ahead, or a lie)."""

    @property
    def flagged(self) -> bool:
        """True when some data was committed later than the threshold after its ``t``."""
        return self.late > 0


def percentile(sorted_values: Sequence[int], fraction: float) -> int:
    """The nearest-rank percentile of non-empty ascending values (``fraction`` in (0, 1])."""
    if not sorted_values:
        raise ValueError("a percentile of no values")
    if not 0 < fraction <= 1:
        raise ValueError(f"percentile fraction {fraction} is not in (0, 1]")
    rank = math.ceil(len(sorted_values) * fraction)
    return sorted_values[max(rank, 1) - 1]


def chain_delays(
    messages: Iterable[MessageTime], timeline: Timeline, *, late_ms: int = DEFAULT_LATE_MS
) -> dict[str, ChainDelays]:
    """Per chain, the delays ``existence_ms(leaf) - t`` of its messages, with late data flagged."""
    if late_ms < 0:
        raise ValueError(f"the late threshold must not be negative, got {late_ms}")
    by_chain: dict[str, list[MessageTime]] = {}
    for message in messages:
        by_chain.setdefault(message.chain, []).append(message)
    result: dict[str, ChainDelays] = {}
    for chain, items in sorted(by_chain.items()):
        delays: list[tuple[int, int]] = []
        unproven = 0
        for message in items:
            proven = timeline.existence_ms(message.leaf_index)
            if proven is None:
                unproven += 1
            else:
                delays.append((proven - message.t_ms, message.seq))
        values = sorted(delay for delay, _ in delays)
        late_seqs = [seq for delay, seq in delays if delay > late_ms]
        result[chain] = ChainDelays(
            chain=chain,
            count=len(items),
            unproven=unproven,
            p50_ms=percentile(values, 0.5) if values else None,
            p99_ms=percentile(values, 0.99) if values else None,
            max_ms=values[-1] if values else None,
            late=len(late_seqs),
            late_ms=late_ms,
            first_late_seq=min(late_seqs) if late_seqs else None,
            impossible=sum(1 for value in values if value < 0),
        )
    return result
