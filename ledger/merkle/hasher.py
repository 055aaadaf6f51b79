"""The RFC 9162 §2.1 hashes: SHA-256 with a one-byte domain prefix for leaves and nodes.

A leaf hash is ``SHA-256(0x00 ‖ data)``, an interior node ``SHA-256(0x01 ‖ left ‖ right)``
and the root of the empty tree ``SHA-256("")``. The prefixes keep a leaf from ever being
mistaken for a node (second-preimage resistance, RFC 9162 §2.1.1).
"""

from __future__ import annotations

import hashlib
from typing import Final

HASH_SIZE: Final = 32
LEAF_PREFIX: Final = b"\x00"
NODE_PREFIX: Final = b"\x01"
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()


def hash_leaf(data: bytes) -> bytes:
    """The leaf hash of ``data``: SHA-256(0x00 ‖ data)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node from its two children: SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()
