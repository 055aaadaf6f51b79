"""The evidence core: signed messages, keys, the RFC 9162 Merkle log, checkpoints, bundles.

Pure code first: nothing here opens a socket, reads a clock or touches the environment,
except the storage and anchor backends, which say so in their module docstrings.
This package imports nothing of ``gateway``, ``firmware_sim``, ``api`` or ``voltproof``.
"""

from .errors import VerificationError, VoltproofError

__all__ = ["VerificationError", "VoltproofError"]
