"""A C2SP tlog-witness for voltproof logs (or any C2SP checkpoint log).

The pure rules live in :mod:`ledger.cosignature` (what is signed) and
:mod:`ledger.witness_protocol` (the request syntax); here are the witness itself
(:class:`Witness`: checks, cosign, compare-and-swap), its SQLite state, the group committer
(:mod:`.committer`), the ASGI app,
the settings, ``run(settings)`` and the ``voltproof witness`` command (:mod:`.command`).
"""

from .app import create_app
from .errors import (
    InvalidProofError,
    MalformedRequestError,
    RootConflictError,
    SizeConflictError,
    UnknownLogError,
    UntrustedCheckpointError,
    WitnessRefusalError,
)
from .service import build_witness, run
from .settings import LogSettings, WitnessConfigError, WitnessSettings, load_settings
from .state import CosignedCheckpoint, WitnessState, WitnessStateError
from .witness import LogPolicy, Witness

__all__ = [
    "CosignedCheckpoint",
    "InvalidProofError",
    "LogPolicy",
    "LogSettings",
    "MalformedRequestError",
    "RootConflictError",
    "SizeConflictError",
    "UnknownLogError",
    "UntrustedCheckpointError",
    "Witness",
    "WitnessConfigError",
    "WitnessRefusalError",
    "WitnessSettings",
    "WitnessState",
    "WitnessStateError",
    "build_witness",
    "create_app",
    "load_settings",
    "run",
]
