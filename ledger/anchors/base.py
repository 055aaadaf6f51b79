"""The anchor interface every backend implements (DESIGN.md contract 3).

An anchor commits ``(log id, tree size, root)`` to a ledger, where the log id is
SHA-256 of the log's origin. Backends are async, idempotent and only ever let tree sizes
grow per log id. This module is pure: value types and the backend protocol.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType, TracebackType
from typing import Final, Protocol, Self, runtime_checkable

from ..checkpoint import LogId
from ..checkpoint import log_id as origin_log_id
from .errors import AnchorFormatError, AnchorRejected

HASH_SIZE = 32
MAX_TREE_SIZE = 2**64 - 1
RECEIPT_FORMAT = "voltproof-anchor-receipt/1"


def log_id_for(origin: str) -> LogId:
    """Return the log id of ``origin`` (``ledger.checkpoint.log_id``); refuse an empty one."""
    if not origin:
        raise ValueError("origin must not be empty")
    return origin_log_id(origin)


def check_anchor_fields(log_id: bytes, tree_size: int, root: bytes | None = None) -> None:
    """Raise ``ValueError`` unless the log id (and root) are 32 bytes and the size fits 64 bits."""
    if len(log_id) != HASH_SIZE:
        raise ValueError(f"log id must be {HASH_SIZE} bytes, got {len(log_id)}")
    if isinstance(tree_size, bool) or not 0 <= tree_size <= MAX_TREE_SIZE:
        raise ValueError(f"tree size {tree_size} is not an unsigned 64-bit integer")
    if root is not None and len(root) != HASH_SIZE:
        raise ValueError(f"root must be {HASH_SIZE} bytes, got {len(root)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class AnchorRequest:
    """What to anchor: a log's tree size and the root hash at that size."""

    log_id: bytes
    tree_size: int
    root: bytes

    def __post_init__(self) -> None:
        check_anchor_fields(self.log_id, self.tree_size, self.root)


class AnchorState(StrEnum):
    """``pending`` until the ledger makes the anchor final (committed, or N confirmations)."""

    PENDING = "pending"
    FINAL = "final"


def _frozen_details(details: Mapping[str, str | int]) -> Mapping[str, str | int]:
    for key, value in details.items():
        if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, str | int):
            raise AnchorFormatError(
                f"receipt detail {key!r} must map a text key to text or an integer"
            )
    return MappingProxyType(dict(sorted(details.items())))


@dataclass(frozen=True, slots=True, kw_only=True)
class AnchorReceipt:
    """Where and how an anchor was recorded; goes into evidence bundles.

    ``details`` depend on the backend: ``evm`` gives chain_id, contract, tx_hash,
    block_number, block_hash, log_index and confirmations; ``local`` gives sequence,
    entry_hash, prev_hash, signature and anchored_at_ms.
    """

    backend: str
    log_id: bytes
    tree_size: int
    root: bytes
    state: AnchorState
    details: Mapping[str, str | int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.backend:
            raise AnchorFormatError("receipt backend must not be empty")
        check_anchor_fields(self.log_id, self.tree_size, self.root)
        object.__setattr__(self, "state", AnchorState(self.state))
        object.__setattr__(self, "details", _frozen_details(self.details))

    @property
    def request(self) -> AnchorRequest:
        """The anchored ``(log id, tree size, root)``."""
        return AnchorRequest(log_id=self.log_id, tree_size=self.tree_size, root=self.root)

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict (hashes in lower-case hex)."""
        return {
            "format": RECEIPT_FORMAT,
            "backend": self.backend,
            "log_id": self.log_id.hex(),
            "tree_size": self.tree_size,
            "root": self.root.hex(),
            "state": self.state.value,
            "details": dict(self.details),
        }

    def to_json(self) -> str:
        """Return the receipt as canonical JSON text (sorted keys, no spaces)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Self:
        """Parse what ``to_dict`` returns; raise ``ValueError`` naming the bad field."""
        if data.get("format") != RECEIPT_FORMAT:
            raise AnchorFormatError(
                f"receipt format must be {RECEIPT_FORMAT!r}, got {data.get('format')!r}"
            )
        backend = data.get("backend")
        tree_size = data.get("tree_size")
        state = data.get("state")
        details = data.get("details")
        if not isinstance(backend, str):
            raise AnchorFormatError("receipt backend must be text")
        if not isinstance(tree_size, int) or isinstance(tree_size, bool):
            raise AnchorFormatError("receipt tree_size must be an integer")
        if state not in {s.value for s in AnchorState}:
            raise AnchorFormatError(f"receipt state must be pending or final, got {state!r}")
        if not isinstance(details, dict):
            raise AnchorFormatError("receipt details must be an object")
        return cls(
            backend=backend,
            log_id=_hex_field(data, "log_id"),
            tree_size=tree_size,
            root=_hex_field(data, "root"),
            state=AnchorState(str(state)),
            details=details,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Self:
        """Parse what ``to_json`` returns; raise ``ValueError`` naming the bad field."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise AnchorFormatError("receipt JSON must be an object")
        return cls.from_dict(data)


def _hex_field(data: Mapping[str, object], name: str) -> bytes:
    value = data.get(name)
    if not isinstance(value, str):
        raise AnchorFormatError(f"receipt {name} must be hex text")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise AnchorFormatError(f"receipt {name} is not hex: {value!r}") from exc


@runtime_checkable
class AnchorBackend(Protocol):
    """One ledger that anchors checkpoints.

    ``submit`` is idempotent: the same ``(log id, size, root)`` returns the existing receipt
    and never anchors twice; a size below one already anchored raises ``AnchorRejected``; a
    different root for an anchored size raises ``AnchorConflict``. Transient failures raise
    ``AnchorUnavailable``.
    """

    name: str

    async def submit(self, request: AnchorRequest) -> AnchorReceipt:
        """Anchor ``request`` (or return the receipt of the identical anchor already made)."""
        ...

    async def refresh(self, log_id: bytes, tree_size: int) -> AnchorReceipt | None:
        """Re-check an anchor (confirmations, reorgs, dropped transactions) and return it."""
        ...

    async def latest(self, log_id: bytes) -> AnchorReceipt | None:
        """Return the receipt of the largest tree size anchored (or pending) for ``log_id``."""
        ...

    async def get(self, log_id: bytes, tree_size: int) -> AnchorReceipt | None:
        """Return the receipt for ``tree_size`` without changing anything, or ``None``."""
        ...

    async def aclose(self) -> None:
        """Release connections and files; the backend is unusable afterwards."""
        ...


LOCAL_LATER_ANCHOR_GRACE_MS: Final = 5_000
"""The local table: an anchor's time is read before its row commits (milliseconds), so a
builder taking "now" in between saw the older checkpoint as the newest; 5 s leaves room."""

EVM_LATER_ANCHOR_GRACE_MS: Final = 60_000
"""An EVM chain: an anchor is dated by the block that mined it, but the gateway builds on it
only once it has its confirmations and the anchorer's next refresh has seen them (two
confirmations and a 2 s refresh by default; seconds on a dev node, about half a minute on a
12 s chain). A deployment asking for many more confirmations on a slow chain needs more."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LaterAnchor:
    """The first anchor of a larger tree than a bundle's checkpoint, as an independent ledger
    holds it: from ``anchored_at_ms`` on, the log was provably larger than that checkpoint."""

    tree_size: int
    anchored_at_ms: int
    grace_ms: int = LOCAL_LATER_ANCHOR_GRACE_MS
    """How long after ``anchored_at_ms`` an honest builder may not yet have taken this anchor
    as final, so a bundle ending within it is not stale (see the constants' docstrings)."""


@runtime_checkable
class LaterAnchorSource(Protocol):
    """An anchor checker that can also say what its ledger anchored after a given size.

    The offline verifier asks it whether a bundle's checkpoint was already stale before the
    end of the bundle's period (an operator hiding recent messages behind an older, validly
    anchored checkpoint).
    """

    def first_anchor_after(self, log_id: bytes, *, size: int) -> LaterAnchor | None:
        """The first anchor of ``log_id`` with a tree larger than ``size``, or ``None``."""
        ...


@runtime_checkable
class AnchorTimeSource(Protocol):
    """An anchor checker that can also say when the ledger recorded a receipt it checked.

    The verifier prints it as the checkpoint's time: the local table's ``anchored_at_ms``
    (as the checked table holds it), or the timestamp of the EVM block holding the anchor.
    """

    def anchored_at_ms(self, receipt: AnchorReceipt) -> int | None:
        """When the checked ledger recorded ``receipt`` (Unix ms), or ``None`` if it cannot
        say. Call after the checker has verified ``receipt``."""
        ...


class AnchorChecker(Protocol):
    """Checks a receipt against a ledger for the offline verifier (``ledger.verify``).

    Called with the receipt and the local anchor export embedded in the bundle (or ``None``);
    returns how it checked (one of ``ledger.verify.ANCHOR_SOURCES``) and raises an
    ``AnchorVerificationError`` subclass if the ledger does not hold the anchor. The
    implementations (``ledger.anchors.checkers``) keep backend I/O out of the verifier.
    """

    def __call__(self, receipt: AnchorReceipt, *, embedded: Mapping[str, object] | None) -> str:
        """Check ``receipt``; return the source checked against."""
        ...


class AnchorBackendContext:
    """Mixin giving a backend the ``async with backend:`` form (closes on exit)."""

    async def aclose(self) -> None:
        """Release what the backend holds."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def refuse_empty_tree(request: AnchorRequest) -> None:
    """Every backend refuses size 0: an empty tree commits to nothing (the contract agrees)."""
    if request.tree_size == 0:
        raise AnchorRejected("tree size 0 is not anchored: an empty tree commits to nothing")
