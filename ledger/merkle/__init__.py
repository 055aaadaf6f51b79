"""The RFC 9162 Merkle log: hashing, O(log n) append state, proof plans and verifiers.

Pure code: storage lives in adapters (``gateway.store.merkle_nodes``) or in :class:`MemoryLog`.
"""

from .compact import AppendPlan, LogState, append, plan_append
from .errors import (
    MerkleProofError,
    MissingNodeError,
    OutOfRangeError,
    ProofShapeError,
    RootMismatchError,
)
from .hasher import EMPTY_ROOT, HASH_SIZE, hash_children, hash_leaf
from .memory_log import MemoryLog
from .nodes import Node, NodeId, range_nodes, state_nodes
from .proof import ProofPlan, consistency_proof_plan, inclusion_proof_plan
from .verify import root_from_inclusion_proof, verify_consistency, verify_inclusion

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "AppendPlan",
    "LogState",
    "MemoryLog",
    "MerkleProofError",
    "MissingNodeError",
    "Node",
    "NodeId",
    "OutOfRangeError",
    "ProofPlan",
    "ProofShapeError",
    "RootMismatchError",
    "append",
    "consistency_proof_plan",
    "hash_children",
    "hash_leaf",
    "inclusion_proof_plan",
    "plan_append",
    "range_nodes",
    "root_from_inclusion_proof",
    "state_nodes",
    "verify_consistency",
    "verify_inclusion",
]
