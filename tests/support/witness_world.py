"""A log and a witness for the witness tests: checkpoints, proofs and request bodies."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.keys import SigningKey, public_key_from_seed
from ledger.merkle import MemoryLog
from ledger.note import verifier_key
from ledger.witness_protocol import format_add_checkpoint
from voltproof.witness import LogPolicy, Witness, WitnessState
from voltproof.witness.settings import LogSettings

ORIGIN = "voltproof.example/gw-1"
LOG_NAME = "voltproof.example/gw-1"
LOG_SEED = hashlib.sha256(b"voltproof witness tests: log").digest()
OTHER_SEED = hashlib.sha256(b"voltproof witness tests: impostor").digest()
WITNESS_NAME = "lessor.example/witness-1"
WITNESS_SEED = hashlib.sha256(b"voltproof witness tests: witness").digest()
LOG_KEY = verifier_key(LOG_NAME, public_key_from_seed(LOG_SEED))


def witness_key() -> SigningKey:
    """The test witness's signing key."""
    return SigningKey(
        name=WITNESS_NAME, seed=WITNESS_SEED, public_key=public_key_from_seed(WITNESS_SEED)
    )


def log_policy() -> LogPolicy:
    """The policy accepting :data:`ORIGIN` signed by :data:`LOG_KEY`."""
    return LogSettings(origin=ORIGIN, keys=[LOG_KEY]).policy()


@dataclass
class Log:
    """An in-memory log that signs checkpoints as the gateway would."""

    origin: str = ORIGIN
    name: str = LOG_NAME
    seed: bytes = LOG_SEED
    tree: MemoryLog = field(default_factory=MemoryLog)
    label: bytes = b"leaf"

    def grow(self, count: int) -> None:
        """Append ``count`` leaves."""
        start = self.tree.size
        self.tree.append(self.label + b" %d" % index for index in range(start, start + count))

    def checkpoint(self, size: int | None = None, *, seed: bytes | None = None) -> str:
        """The signed checkpoint at ``size`` (default: the whole tree)."""
        size = self.tree.size if size is None else size
        body = Checkpoint(origin=self.origin, size=size, root=self.tree.root_at(size))
        return sign_checkpoint(body, name=self.name, seed=seed or self.seed)

    def request(self, old: int, new: int | None = None, *, seed: bytes | None = None) -> bytes:
        """An add-checkpoint body for ``new`` (default: the whole tree) from ``old``."""
        new = self.tree.size if new is None else new
        proof = self.tree.consistency_proof(size1=old, size2=new) if 0 < old < new else []
        return format_add_checkpoint(
            old_size=old, proof=proof, checkpoint=self.checkpoint(new, seed=seed)
        )


def open_witness(path: Path, *, now: float = 1_700_000_000) -> Witness:
    """A witness over the state file ``path`` with a fixed clock."""
    return Witness.from_policies(
        key=witness_key(), logs=[log_policy()], state=WitnessState.open(path), clock=lambda: now
    )
