"""The witness: check an add-checkpoint request against the stored state, cosign, persist.

Synchronous and free of HTTP: :meth:`Witness.add_checkpoint` takes the request body and
returns the cosignature line, or raises the :mod:`~voltproof.witness.errors` refusal the
HTTP layer answers. The checks follow C2SP tlog-witness in its order: syntax (400), known
origin (404), a signature by a configured log key (403), old size not above the size (400),
old size equal to the stored size (409), same size same root (409), consistency proof (422).
The cosignature is returned only after the compare-and-swap of the stored state committed.

Two callers: :meth:`Witness.add_checkpoint` (blocking, group commit among threads) and
:meth:`Witness.add_checkpoint_async` (the HTTP service: the checks run on the event loop, the
swap goes to a :class:`~.committer.GroupCommitter`). Both run the same checks in the same order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from ledger.checkpoint import Checkpoint, CheckpointError, parse_checkpoint
from ledger.cosignature import Cosigner, WitnessKey
from ledger.keys import SigningKey
from ledger.merkle import EMPTY_ROOT, MerkleProofError, verify_consistency
from ledger.note import (
    NoteError,
    NoteSignatureError,
    UnverifiedNoteError,
    VerifierKey,
    split_note,
    verify_note,
)
from ledger.witness_protocol import (
    AddCheckpoint,
    MalformedWitnessRequestError,
    parse_add_checkpoint,
)

from .committer import GroupCommitter
from .errors import (
    InvalidProofError,
    MalformedRequestError,
    RootConflictError,
    SizeConflictError,
    UnknownLogError,
    UntrustedCheckpointError,
)
from .state import CosignedCheckpoint, WitnessState

__all__ = ["LogPolicy", "Witness"]

log = logging.getLogger(__name__)

_ATTEMPTS: Final = 8
"""Times a request is re-checked when a concurrent request changed the state under it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LogPolicy:
    """A log the witness accepts: its origin and the verifier keys trusted for it."""

    origin: str
    keys: tuple[VerifierKey, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError(f"log {self.origin!r} has no verifier key")


@dataclass(slots=True, kw_only=True)
class Witness:
    """One witness key cosigning checkpoints of the configured logs."""

    key: SigningKey
    logs: Mapping[str, LogPolicy]
    state: WitnessState
    clock: Callable[[], float] = time.time
    _vkey: WitnessKey = field(init=False)
    _cosigner: Cosigner = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._vkey = WitnessKey.from_public_key(self.key.name, self.key.public_key)
        self._cosigner = Cosigner.from_seed(name=self.key.name, seed=self.key.seed)

    @classmethod
    def from_policies(
        cls,
        *,
        key: SigningKey,
        logs: Iterable[LogPolicy],
        state: WitnessState,
        clock: Callable[[], float] = time.time,
    ) -> Witness:
        """A witness for ``logs`` (origins must be distinct)."""
        by_origin: dict[str, LogPolicy] = {}
        for policy in logs:
            if policy.origin in by_origin:
                raise ValueError(f"log {policy.origin!r} is configured twice")
            by_origin[policy.origin] = policy
        return cls(key=key, logs=by_origin, state=state, clock=clock)

    @property
    def verifier_key(self) -> WitnessKey:
        """The cosignature/v1 vkey (type 0x04) that checks this witness's cosignatures."""
        return self._vkey

    def add_checkpoint(self, body: bytes) -> str:
        """Cosign the checkpoint in an add-checkpoint request body; return the signature line."""
        request, checkpoint, text = self._check_request(body)
        for _ in range(_ATTEMPTS):
            stored = self.state.latest(checkpoint.origin)
            line, new = self._cosign(request, checkpoint, text, stored)
            if self.state.advance(checkpoint.origin, expected=stored, new=new):
                return self._cosigned(request, checkpoint.origin, new, line)
        raise self._kept_changing(checkpoint.origin)

    async def add_checkpoint_async(self, body: bytes, committer: GroupCommitter) -> str:
        """:meth:`add_checkpoint` on an event loop: the swap is group-committed by ``committer``.

        The checks and the signature (a few hundred microseconds) run on the loop; only the
        commit leaves it, in a batch with every swap queued meanwhile. The read of the stored
        state uses the state's reader connection, which never waits for a commit.
        """
        request, checkpoint, text = self._check_request(body)
        for _ in range(_ATTEMPTS):
            stored = self.state.latest(checkpoint.origin)
            line, new = self._cosign(request, checkpoint, text, stored)
            if await committer.advance(checkpoint.origin, expected=stored, new=new):
                return self._cosigned(request, checkpoint.origin, new, line)
        raise self._kept_changing(checkpoint.origin)

    def _check_request(self, body: bytes) -> tuple[AddCheckpoint, Checkpoint, str]:
        """The checks that do not depend on the stored state: syntax, origin, signature."""
        request, checkpoint, text = self._parse(body)
        self._authenticate(request.checkpoint, checkpoint)
        if request.old_size > checkpoint.size:
            raise MalformedRequestError(
                f"old size {request.old_size} is greater than the checkpoint size {checkpoint.size}"
            )
        return request, checkpoint, text

    def _cosign(
        self,
        request: AddCheckpoint,
        checkpoint: Checkpoint,
        text: str,
        stored: CosignedCheckpoint | None,
    ) -> tuple[str, CosignedCheckpoint]:
        """Check against ``stored``, then the cosignature line and the state it commits to."""
        self._check_consistency(request, checkpoint, stored)
        timestamp = max(int(self.clock()), stored.timestamp if stored else 0)
        line = self._cosigner.line(text, timestamp=timestamp)
        new = CosignedCheckpoint(
            size=checkpoint.size, root=checkpoint.root, timestamp=timestamp, body=text
        )
        return line, new

    @staticmethod
    def _cosigned(request: AddCheckpoint, origin: str, new: CosignedCheckpoint, line: str) -> str:
        log.info(
            "checkpoint_cosigned",
            extra={
                "origin": origin,
                "old_size": request.old_size,
                "size": new.size,
                "timestamp": new.timestamp,
            },
        )
        return line

    def _kept_changing(self, origin: str) -> SizeConflictError:
        current = self.state.latest(origin)
        size = current.size if current else 0
        return SizeConflictError(
            f"the state of {origin!r} kept changing; latest cosigned size {size}", size=size
        )

    def _parse(self, body: bytes) -> tuple[AddCheckpoint, Checkpoint, str]:
        try:
            request = parse_add_checkpoint(body)
            text, _ = split_note(request.checkpoint)
            checkpoint = parse_checkpoint(text)
        except (MalformedWitnessRequestError, NoteError, CheckpointError) as exc:
            raise MalformedRequestError(str(exc)) from exc
        return request, checkpoint, text

    def _authenticate(self, note: str, checkpoint: Checkpoint) -> None:
        policy = self.logs.get(checkpoint.origin)
        if policy is None:
            raise UnknownLogError(f"unknown log origin {checkpoint.origin!r}")
        verified = False
        for key in policy.keys:
            try:
                verify_note(note, verifier_key=key)
            except UnverifiedNoteError:
                continue
            except NoteSignatureError as exc:
                raise UntrustedCheckpointError(str(exc)) from exc
            verified = True
        if not verified:
            raise UntrustedCheckpointError(
                f"no signature on the checkpoint verifies against a key trusted for "
                f"{checkpoint.origin!r}"
            )

    def _check_consistency(
        self, request: AddCheckpoint, checkpoint: Checkpoint, stored: CosignedCheckpoint | None
    ) -> None:
        stored_size = stored.size if stored else 0
        stored_root = stored.root if stored else EMPTY_ROOT
        if request.old_size != stored_size:
            raise SizeConflictError(
                f"old size {request.old_size} is not the latest cosigned size {stored_size} "
                f"of {checkpoint.origin!r}",
                size=stored_size,
            )
        if checkpoint.size == stored_size:
            if checkpoint.root != stored_root:
                raise RootConflictError(
                    f"checkpoint of size {checkpoint.size} has root "
                    f"{checkpoint.root.hex()}, the cosigned one has {stored_root.hex()}",
                    size=stored_size,
                )
            if request.proof:
                raise InvalidProofError(
                    f"sizes are equal ({stored_size}) but the proof has "
                    f"{len(request.proof)} hashes, want 0"
                )
            return
        if stored_size == 0:
            if request.proof:
                raise InvalidProofError(
                    f"old size is 0 but the proof has {len(request.proof)} hashes, want 0"
                )
            return
        try:
            verify_consistency(
                size1=stored_size,
                size2=checkpoint.size,
                proof=request.proof,
                root1=stored_root,
                root2=checkpoint.root,
            )
        except MerkleProofError as exc:
            raise InvalidProofError(
                f"consistency proof from size {stored_size} to {checkpoint.size} does not "
                f"verify: {exc}"
            ) from exc
