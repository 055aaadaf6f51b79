"""``voltproof audit``: replay a whole log from its leaves and recompute every checkpoint.

Unlike ``gateway check`` (which compares the store's derived tables with its leaves), the
replay trusts nothing but the leaves, the signed checkpoints, the gateway's verifier key and
the operator's public key. Fed the leaves in order (from the store or an export file), it
recomputes:

- the RFC 9162 root of every prefix a checkpoint signs (the checkpoint's root must equal it);
- the evidence v2 device index of that prefix (``ledger.device_index``): the checkpoint's
  ``voltproof-index/1`` line must equal its root. A checkpoint without the line is a v1
  checkpoint, accepted only before the log's first v2 checkpoint (a gateway upgraded to v2
  signs every later checkpoint with the line);
- every device's registry history under ``ledger.registry`` (signers, rules, key spans) and
  the key valid for each telemetry message, whose signature must verify under it;
- every device's hash chain (``ledger.chain``): each seq logged once, ``prev`` of seq s equal
  to the hash of seq s - 1 whenever both are logged (in whichever order they arrived).

The first disagreement stops the replay with :class:`AuditDisagreementError`, whose text names the
leaf or checkpoint and both values. Memory: one 32-byte hash per logged message (the chain
check links late messages to earlier ones) plus the index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from ledger import gbt32960 as gbt
from ledger.chain import Step, genesis_problem, step
from ledger.checkpoint import Checkpoint, verify_checkpoint
from ledger.device_index import DeviceIndex, IndexLineError, index_root_from_extensions
from ledger.errors import VerificationError
from ledger.merkle import hash_leaf
from ledger.merkle.compact import LogState
from ledger.merkle.hasher import NODE_PREFIX
from ledger.message import MessageError, decode_message
from ledger.note import VerifierKey
from ledger.registry import KeySpan, build_key_history, key_for_message, read_registry_entry

__all__ = ["AuditDisagreementError", "AuditSummary", "LogReplay"]

_PROGRESS_EVERY: Final = 1000


class AuditDisagreementError(VerificationError):
    """The first place where the log, its checkpoints or its registry do not agree."""


@dataclass(slots=True, kw_only=True)
class AuditSummary:
    """What a clean replay covered."""

    leaves: int = 0
    checkpoints: int = 0
    v1_checkpoints: int = 0
    devices: int = 0
    chains: int = 0
    messages: int = 0
    registry_entries: int = 0
    missing_seqs: int = 0
    """Seqs below a device's head that no leaf holds (gaps: incompleteness, not forgery)."""


@dataclass(slots=True)
class _Chain:
    hashes: dict[int, bytes] = field(default_factory=dict)
    wanted: dict[int, tuple[bytes, int]] = field(default_factory=dict)
    """seq -> (the ``prev`` its successor carries, the successor's leaf), successor first."""


class LogReplay:
    """Feed every leaf in log order with :meth:`feed`, then call :meth:`finish`."""

    def __init__(
        self,
        *,
        checkpoints: Iterable[str],
        gateway_key: str | VerifierKey,
        operator_key: bytes,
        origin: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self._operator_key = operator_key
        self._progress = progress
        self._pending = sorted(
            (self._read_checkpoint(note, gateway_key, origin) for note in checkpoints),
            key=lambda checkpoint: checkpoint.size,
            reverse=True,
        )
        origins = {checkpoint.origin for checkpoint in self._pending}
        if len(origins) > 1:
            raise AuditDisagreementError(f"the checkpoints name several logs: {sorted(origins)}")
        self._border: list[bytes] = []
        self._size = 0
        self._index = DeviceIndex()
        self._registry: dict[str, list[tuple[int, bytes]]] = {}
        self._spans: dict[str, tuple[KeySpan, ...]] = {}
        self._chains: dict[str, _Chain] = {}
        self._last_v2: int | None = None
        self.summary = AuditSummary()
        self._check_due()

    @staticmethod
    def _read_checkpoint(
        note: str, gateway_key: str | VerifierKey, origin: str | None
    ) -> Checkpoint:
        try:
            return verify_checkpoint(note, verifier_key=gateway_key, origin=origin)
        except VerificationError as exc:
            first = note.split("\n", 3)[:2]
            raise AuditDisagreementError(f"checkpoint {' '.join(first)!r}: {exc}") from exc

    # -- leaves --------------------------------------------------------------------------

    def feed(self, index: int, data: bytes) -> None:
        """Take the leaf at ``index`` (its COSE bytes); leaves must come in log order."""
        if index != self._size:
            what = "missing" if index > self._size else "repeated or out of order"
            raise AuditDisagreementError(
                f"leaf {self._size} is {what}: the next leaf given is {index}"
            )
        if gbt.is_envelope(data):
            self._gbt_frame(index, data)
            self._append(hash_leaf(data))
            if self._progress is not None and self._size % _PROGRESS_EVERY == 0:
                self._progress(self._size)
            self._check_due()
            return
        try:
            message = decode_message(data)
        except MessageError as exc:
            raise AuditDisagreementError(f"leaf {index} is not a valid message: {exc}") from exc
        if message.content_type is None:
            self._telemetry(index, data, message.payload)
        else:
            self._registry_entry(index, data, message.payload)
        self._append(hash_leaf(data))
        if self._progress is not None and self._size % _PROGRESS_EVERY == 0:
            self._progress(self._size)
        self._check_due()

    def _append(self, leaf_hash: bytes) -> None:
        node, position = leaf_hash, self._size
        border = self._border
        while position & 1:
            node = hashlib.sha256(NODE_PREFIX + border.pop() + node).digest()
            position >>= 1
        border.append(node)
        self._size += 1

    def _registry_entry(self, index: int, data: bytes, payload: dict[str, object]) -> None:
        try:
            fact = read_registry_entry(data, index=index)
        except VerificationError as exc:
            raise AuditDisagreementError(str(exc)) from exc
        named = [fact.device]
        new = payload.get("new")
        if isinstance(new, str) and new != fact.device:
            named.append(new)
        for device in named:
            self._registry.setdefault(device, []).append((index, data))
        # The rules are checked over every entry of every device this one names (a
        # ``replace`` names two): the same entries, in log order, as a verifier would see.
        entries = sorted({item for device in named for item in self._registry[device]})
        try:
            spans = build_key_history(entries, operator_key=self._operator_key)
        except VerificationError as exc:
            raise AuditDisagreementError(
                f"registry of {' and '.join(map(repr, named))}: {exc}"
            ) from exc
        for device in named:
            self._spans[device] = spans.get(device, ())
            kind = fact.kind if fact.type == "enroll" and device == fact.device else None
            try:
                self._index.add_registry_entry(device=device, kind=kind, entry=data)
            except ValueError as exc:
                raise AuditDisagreementError(f"registry entry at leaf {index}: {exc}") from exc
        self.summary.registry_entries += 1

    def _telemetry(self, index: int, data: bytes, payload: dict[str, object]) -> None:
        device, seq, prev, t = (payload.get(name) for name in ("dev", "seq", "prev", "t"))
        if not (
            isinstance(device, str)
            and isinstance(seq, int)
            and isinstance(prev, bytes)
            and isinstance(t, int)
        ):
            raise AuditDisagreementError(f"leaf {index}: telemetry without dev, seq, prev and t")
        try:
            key = key_for_message(self._spans.get(device, ()), device=device, index=index, seq=seq)
            decode_message(data).verify_signature(key)
        except VerificationError as exc:
            raise AuditDisagreementError(f"leaf {index} ({device} seq {seq}): {exc}") from exc
        digest = hashlib.sha256(data).digest()
        self._link(index, device, seq, prev, digest)
        try:
            self._index.add_message(device=device, seq=seq, leaf=index, message_hash=digest, t=t)
        except ValueError as exc:
            raise AuditDisagreementError(f"leaf {index}: {exc}") from exc
        self.summary.messages += 1

    def _gbt_frame(self, index: int, data: bytes) -> None:
        """A GB/T 32960 leaf: the gateway's seq/prev chain and the device index, as for
        telemetry (the frame's own signature, 2025, was checked on intake)."""
        try:
            leaf = gbt.read_leaf(data)
        except gbt.GbtError as exc:
            raise AuditDisagreementError(f"leaf {index} is not a GB/T 32960 leaf: {exc}") from exc
        envelope = leaf.envelope
        device, seq = envelope.device_id, envelope.seq
        if device not in self._spans:
            raise AuditDisagreementError(
                f"leaf {index}: GB/T 32960 device {device!r} is not enrolled"
            )
        digest = hashlib.sha256(data).digest()
        self._link(index, device, seq, envelope.prev, digest)
        try:
            self._index.add_message(
                device=device, seq=seq, leaf=index, message_hash=digest, t=leaf.t_ms
            )
        except ValueError as exc:
            raise AuditDisagreementError(f"leaf {index}: {exc}") from exc
        self.summary.messages += 1

    def _link(self, index: int, device: str, seq: int, prev: bytes, digest: bytes) -> None:
        where = f"leaf {index} ({device} seq {seq})"
        chain = self._chains.setdefault(device, _Chain())
        if seq in chain.hashes:
            raise AuditDisagreementError(f"{where}: seq {seq} of {device} is logged twice")
        problem = genesis_problem(seq, prev)
        if problem is not None:
            raise AuditDisagreementError(f"{where}: {problem}")
        before = chain.hashes.get(seq - 1)
        if (
            before is not None
            and step(previous_seq=seq - 1, previous_hash=before, seq=seq, prev=prev) is Step.BROKEN
        ):
            raise AuditDisagreementError(
                f"{where}: prev {prev.hex()} is not the hash {before.hex()} of seq {seq - 1}"
            )
        if before is None and seq > 0:
            chain.wanted[seq - 1] = (prev, index)
        successor = chain.wanted.pop(seq, None)
        if (
            successor is not None
            and step(previous_seq=seq, previous_hash=digest, seq=seq + 1, prev=successor[0])
            is Step.BROKEN
        ):
            raise AuditDisagreementError(
                f"{where}: its hash {digest.hex()} is not the prev {successor[0].hex()} of "
                f"seq {seq + 1} at leaf {successor[1]}"
            )
        chain.hashes[seq] = digest

    # -- checkpoints ---------------------------------------------------------------------

    def _check_due(self) -> None:
        while self._pending and self._pending[-1].size == self._size:
            self._check(self._pending.pop())

    def _check(self, checkpoint: Checkpoint) -> None:
        where = f"checkpoint of size {checkpoint.size}"
        root = LogState.from_nodes(self._size, self._border).root()
        if checkpoint.root != root:
            raise AuditDisagreementError(
                f"{where} signs root {checkpoint.root.hex()}, the leaves 0..{self._size - 1} "
                f"give {root.hex()}"
            )
        try:
            signed_index = index_root_from_extensions(checkpoint.extensions)
        except IndexLineError as exc:
            raise AuditDisagreementError(f"{where}: {exc}") from exc
        self.summary.checkpoints += 1
        if signed_index is None:
            if self._last_v2 is not None:
                raise AuditDisagreementError(
                    f"{where} carries no device index line, but the checkpoint of size "
                    f"{self._last_v2} before it did"
                )
            self.summary.v1_checkpoints += 1
            return
        index_root = self._index.root()
        if signed_index != index_root:
            raise AuditDisagreementError(
                f"{where} signs device index root {signed_index.hex()}, the replayed index "
                f"of its {len(self._index)} devices gives {index_root.hex()}"
            )
        self._last_v2 = checkpoint.size

    def finish(self) -> AuditSummary:
        """Check that no checkpoint lies beyond the log; return the summary."""
        if self._pending:
            beyond = self._pending[-1]
            raise AuditDisagreementError(
                f"checkpoint of size {beyond.size} lies beyond the log's {self._size} leaves"
            )
        summary = self.summary
        summary.leaves = self._size
        summary.devices = len(self._index)
        summary.chains = len(self._chains)
        summary.missing_seqs = sum(
            max(chain.hashes) + 1 - len(chain.hashes) for chain in self._chains.values()
        )
        return summary
