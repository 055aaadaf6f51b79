"""A log whose checkpoints real witnesses cosign at chosen times, for the timeliness tests."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.cosignature import add_cosignature, witness_verifier_key
from ledger.keys import public_key_from_seed
from ledger.merkle import MemoryLog
from ledger.timeliness import CosignedCheckpoint, MessageTime

ORIGIN = "voltproof.example/gw-timeliness"
LOG_SEED = hashlib.sha256(b"timeliness tests: log").digest()


@dataclass(frozen=True, slots=True)
class Cosigner:
    """A witness signing key and its vkey."""

    name: str
    seed: bytes

    @classmethod
    def named(cls, name: str) -> Cosigner:
        """A witness whose seed is derived from its name."""
        return cls(name, hashlib.sha256(b"timeliness tests: " + name.encode()).digest())

    @property
    def vkey(self) -> str:
        """The cosignature/v1 verifier key."""
        return witness_verifier_key(self.name, public_key_from_seed(self.seed))

    def cosign(self, note: str, timestamp: int) -> str:
        """``note`` with this witness's cosignature at ``timestamp`` (POSIX seconds)."""
        return add_cosignature(note, name=self.name, seed=self.seed, timestamp=timestamp)


@dataclass
class TimedLog:
    """A log of device messages; each message leaf is recorded with its chain, seq and t."""

    origin: str = ORIGIN
    tree: MemoryLog = field(default_factory=MemoryLog)
    messages: list[MessageTime] = field(default_factory=list)
    seqs: dict[str, int] = field(default_factory=dict)

    def append(self, chain: str, t_ms: int) -> None:
        """Append the next message of ``chain``, measured at ``t_ms``."""
        seq = self.seqs.get(chain, 0)
        self.seqs[chain] = seq + 1
        index = self.tree.size
        self.tree.append([f"{chain}/{seq}/{t_ms}".encode()])
        self.messages.append(MessageTime(chain=chain, seq=seq, leaf_index=index, t_ms=t_ms))

    def checkpoint(self, size: int | None = None) -> Checkpoint:
        """The checkpoint of ``size`` leaves (default: all)."""
        size = self.tree.size if size is None else size
        return Checkpoint(origin=self.origin, size=size, root=self.tree.root_at(size))

    def note(self, size: int | None = None) -> str:
        """The gateway-signed note of the checkpoint of ``size`` leaves."""
        return sign_checkpoint(self.checkpoint(size), name=self.origin, seed=LOG_SEED)

    def cosigned(
        self, size: int, cosigners: list[tuple[Cosigner, int]], *, to: int | None = None
    ) -> CosignedCheckpoint:
        """Checkpoint ``size`` cosigned by each (witness, time), with a proof to size ``to``."""
        note = self.note(size)
        for witness, timestamp in cosigners:
            note = witness.cosign(note, timestamp)
        to = self.tree.size if to is None else to
        proof = self.tree.consistency_proof(size1=size, size2=to) if 0 < size < to else []
        return CosignedCheckpoint(note=note, proof=tuple(proof))
