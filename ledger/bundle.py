"""Evidence bundles (contract 4): one self-contained ``voltproof-bundle/1`` JSON file.

A bundle holds everything a lessor needs to check an asset's history offline: the device
messages (exact COSE bytes) with their leaf indexes and inclusion proofs, the boundary
messages that prove completeness at both ends of the period, the registry entries that make
the device keys valid, the signed checkpoint, and the anchor (receipt, anchored size and
root, consistency proof). ``docs/protocol.md`` ("Evidence bundles") documents every field.

:func:`build_bundle` assembles a :class:`Bundle` from data the store extracted;
:func:`parse_bundle` reads the file strictly; :meth:`Bundle.to_bytes` writes it. Nothing
here checks a signature or a proof: that is :mod:`ledger.verify`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .anchors.base import AnchorReceipt
from .anchors.errors import AnchorFormatError
from .errors import VerificationError
from .gbt32960.envelope import is_envelope
from .message import MessageError, decode_message
from .registry import read_registry_entry

__all__ = [
    "BUNDLE_FORMAT",
    "AnchorEvidence",
    "Bundle",
    "BundleFieldError",
    "BundleFormatError",
    "BundleInput",
    "DeviceChain",
    "DeviceKeys",
    "LoggedLeaf",
    "MissingBundleFieldError",
    "UnknownBundleVersionError",
    "build_bundle",
    "parse_bundle",
]

BUNDLE_FORMAT: Final = "voltproof-bundle/1"
_FORMAT_FAMILY: Final = "voltproof-bundle/"
_KINDS: Final = ("bus", "pack")


class BundleFormatError(VerificationError):
    """A bundle file is not a well-formed ``voltproof-bundle/1`` document."""


class UnknownBundleVersionError(BundleFormatError):
    """The file is another format or a bundle version this verifier does not know."""


class MissingBundleFieldError(BundleFormatError):
    """A required field is absent; the message names its path."""


class BundleFieldError(BundleFormatError):
    """A field has the wrong type or value, or an unknown field is present."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedLeaf:
    """A log leaf (message or registry entry): its bytes, index and inclusion proof."""

    index: int
    data: bytes
    proof: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if type(self.index) is not int or self.index < 0:
            raise BundleFieldError(f"leaf index must be an unsigned integer, got {self.index!r}")
        if not self.data:
            raise BundleFieldError(f"leaf {self.index} has no bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceChain:
    """One device's messages in the period (seq order) and the boundary messages around them."""

    device: str
    before: LoggedLeaf | None
    messages: tuple[LoggedLeaf, ...]
    after: LoggedLeaf | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceKeys:
    """A device named in the bundle, its kind and every public key it had, oldest first."""

    device: str
    kind: str
    keys: tuple[bytes, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AnchorEvidence:
    """The anchored tree (size, root), a consistency proof to it and the ledger's receipt."""

    size: int
    root: bytes
    consistency: tuple[bytes, ...]
    receipt: AnchorReceipt
    local_export: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Bundle:
    """A parsed evidence bundle (nothing verified yet)."""

    asset_id: str
    asset_kind: str
    from_ms: int
    to_ms: int
    checkpoint: str
    operator_key: bytes
    devices: tuple[DeviceKeys, ...]
    registry: tuple[LoggedLeaf, ...]
    chains: tuple[DeviceChain, ...]
    anchor: AnchorEvidence
    format: str = field(default=BUNDLE_FORMAT)

    def __post_init__(self) -> None:
        if self.asset_kind not in _KINDS:
            raise BundleFieldError(f"asset.kind {self.asset_kind!r} is not one of {list(_KINDS)}")
        if not self.from_ms < self.to_ms:
            raise BundleFieldError(
                f"period from_ms {self.from_ms} is not before to_ms {self.to_ms}"
            )
        if len(self.operator_key) != 32:
            raise BundleFieldError(f"operator_key must be 32 bytes, got {len(self.operator_key)}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (bytes in standard base64)."""
        anchor: dict[str, Any] = {
            "size": self.anchor.size,
            "root": _b64(self.anchor.root),
            "consistency": [_b64(h) for h in self.anchor.consistency],
            "receipt": self.anchor.receipt.to_dict(),
        }
        if self.anchor.local_export is not None:
            anchor["local_export"] = dict(self.anchor.local_export)
        return {
            "format": self.format,
            "asset": {"id": self.asset_id, "kind": self.asset_kind},
            "period": {"from_ms": self.from_ms, "to_ms": self.to_ms},
            "checkpoint": self.checkpoint,
            "operator_key": _b64(self.operator_key),
            "devices": [
                {"id": d.device, "kind": d.kind, "keys": [_b64(k) for k in d.keys]}
                for d in self.devices
            ],
            "registry": [_leaf_dict(leaf) for leaf in self.registry],
            "chains": [
                {
                    "device": c.device,
                    "before": None if c.before is None else _leaf_dict(c.before),
                    "messages": [_leaf_dict(leaf) for leaf in c.messages],
                    "after": None if c.after is None else _leaf_dict(c.after),
                }
                for c in self.chains
            ],
            "anchor": anchor,
        }

    def to_bytes(self) -> bytes:
        """The bundle file: deterministic JSON (sorted keys, two-space indent, final newline)."""
        return (json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n").encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _leaf_dict(leaf: LoggedLeaf) -> dict[str, Any]:
    return {"index": leaf.index, "cose": _b64(leaf.data), "proof": [_b64(h) for h in leaf.proof]}


# --- building -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleInput:
    """What the store extracts for one asset and period; :func:`build_bundle` assembles it.

    ``messages`` are every device message to include, of any device and in any order,
    *including* the boundary messages: per device at most one whose ``t`` is before
    ``from_ms`` (the last one before the period) and at most one whose ``t`` is at or after
    ``to_ms`` (the first one after). ``registry`` holds the registry entries of those devices.
    Every leaf's proof is an inclusion proof against ``checkpoint``.
    """

    asset_id: str
    asset_kind: str
    from_ms: int
    to_ms: int
    checkpoint: str
    operator_key: bytes
    registry: Sequence[LoggedLeaf]
    messages: Sequence[LoggedLeaf]
    anchor: AnchorEvidence


def _device_chain(
    device: str, leaves: list[tuple[int, int, LoggedLeaf]], inp: BundleInput
) -> DeviceChain:
    leaves.sort(key=lambda item: item[0])
    before = [leaf for _, t, leaf in leaves if t < inp.from_ms]
    after = [leaf for _, t, leaf in leaves if t >= inp.to_ms]
    inside = [leaf for _, t, leaf in leaves if inp.from_ms <= t < inp.to_ms]
    if len(before) > 1 or len(after) > 1:
        raise ValueError(
            f"{device}: give at most one boundary message on each side of the period, "
            f"got {len(before)} before and {len(after)} after"
        )
    return DeviceChain(
        device=device,
        before=before[0] if before else None,
        messages=tuple(inside),
        after=after[0] if after else None,
    )


def build_bundle(inp: BundleInput) -> Bundle:
    """Assemble a bundle: group messages per device in seq order and list the device keys.

    Pure: decodes the messages and registry entries (to read ``dev``, ``seq``, ``t`` and the
    keys) but checks no signature or proof. Raises ``ValueError`` on input that cannot make a
    coherent bundle (a message that is not telemetry, two boundary messages on one side).
    """
    per_device: dict[str, list[tuple[int, int, LoggedLeaf]]] = {}
    for leaf in inp.messages:
        if is_envelope(leaf.data):
            raise ValueError(
                f"message at leaf {leaf.index} is a GB/T 32960 frame (voltproof-gbt32960/1): "
                "bundles do not carry terminal frames yet"
            )
        try:
            message = decode_message(leaf.data)
        except MessageError as exc:
            raise ValueError(f"message at leaf {leaf.index}: {exc}") from exc
        if message.content_type is not None:
            raise ValueError(f"message at leaf {leaf.index} is a registry entry, not telemetry")
        payload = message.payload
        per_device.setdefault(payload["dev"], []).append((payload["seq"], payload["t"], leaf))
    chains = tuple(_device_chain(dev, per_device[dev], inp) for dev in sorted(per_device))
    keys: dict[str, list[bytes]] = {}
    kinds: dict[str, str] = {}
    registry = tuple(sorted(inp.registry, key=lambda leaf: leaf.index))
    for leaf in registry:
        fact = read_registry_entry(leaf.data, index=leaf.index)
        if fact.kind is not None:
            kinds[fact.device] = fact.kind
        if fact.key is not None:
            keys.setdefault(fact.device, []).append(fact.key)
    devices = tuple(
        DeviceKeys(device=dev, kind=kinds.get(dev, ""), keys=tuple(keys[dev]))
        for dev in sorted(keys)
    )
    return Bundle(
        asset_id=inp.asset_id,
        asset_kind=inp.asset_kind,
        from_ms=inp.from_ms,
        to_ms=inp.to_ms,
        checkpoint=inp.checkpoint,
        operator_key=inp.operator_key,
        devices=devices,
        registry=registry,
        chains=chains,
        anchor=inp.anchor,
    )


# --- parsing --------------------------------------------------------------------------------


class _Reader:
    """Typed, path-naming access to a JSON object; refuses unknown keys."""

    def __init__(
        self, data: object, path: str, keys: set[str], optional: frozenset[str] = frozenset()
    ) -> None:
        if not isinstance(data, dict):
            raise BundleFieldError(
                f"{path or 'bundle'} must be an object, got {type(data).__name__}"
            )
        unknown = sorted(set(data) - keys - optional)
        if unknown:
            raise BundleFieldError(f"{path or 'bundle'} has unknown fields {unknown}")
        missing = sorted(keys - set(data))
        if missing:
            prefix = f"{path}." if path else ""
            raise MissingBundleFieldError(f"bundle lacks {prefix}{missing[0]}")
        self.data: dict[str, Any] = data
        self.path = path

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, kind: type) -> Any:
        value = self.data[key]
        where = self.where(key)
        if kind is int and (type(value) is not int or value < 0):
            raise BundleFieldError(f"{where} must be an unsigned integer, got {value!r}")
        if kind is not int and not isinstance(value, kind):
            raise BundleFieldError(f"{where} must be {kind.__name__}, got {value!r}")
        return value

    def raw(self, key: str, size: int | None = None) -> bytes:
        return _unb64(self.get(key, str), self.where(key), size)

    def hashes(self, key: str) -> tuple[bytes, ...]:
        items = self.get(key, list)
        return tuple(
            _unb64(item, f"{self.where(key)}[{i}]", 32)
            if isinstance(item, str)
            else _not_text(f"{self.where(key)}[{i}]", item)
            for i, item in enumerate(items)
        )


def _not_text(path: str, value: object) -> bytes:
    raise BundleFieldError(f"{path} must be base64 text, got {value!r}")


def _unb64(text: str, path: str, size: int | None) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise BundleFieldError(f"{path} is not valid base64") from exc
    if size is not None and len(raw) != size:
        raise BundleFieldError(f"{path} must be {size} bytes, got {len(raw)}")
    return raw


def _leaf(data: object, path: str) -> LoggedLeaf:
    reader = _Reader(data, path, {"index", "cose", "proof"})
    return LoggedLeaf(
        index=reader.get("index", int), data=reader.raw("cose"), proof=reader.hashes("proof")
    )


def _chain(data: object, path: str) -> DeviceChain:
    reader = _Reader(data, path, {"device", "before", "messages", "after"})
    before, after = reader.data["before"], reader.data["after"]
    return DeviceChain(
        device=reader.get("device", str),
        before=None if before is None else _leaf(before, f"{path}.before"),
        messages=tuple(
            _leaf(item, f"{path}.messages[{i}]")
            for i, item in enumerate(reader.get("messages", list))
        ),
        after=None if after is None else _leaf(after, f"{path}.after"),
    )


def _device(data: object, path: str) -> DeviceKeys:
    reader = _Reader(data, path, {"id", "kind", "keys"})
    return DeviceKeys(
        device=reader.get("id", str),
        kind=reader.get("kind", str),
        keys=tuple(
            _unb64(key, f"{path}.keys[{i}]", 32)
            if isinstance(key, str)
            else _not_text(f"{path}.keys[{i}]", key)
            for i, key in enumerate(reader.get("keys", list))
        ),
    )


def _anchor(data: object) -> AnchorEvidence:
    reader = _Reader(
        data, "anchor", {"size", "root", "consistency", "receipt"}, frozenset({"local_export"})
    )
    try:
        receipt = AnchorReceipt.from_dict(reader.get("receipt", dict))
    except (AnchorFormatError, ValueError) as exc:
        raise BundleFieldError(f"anchor.receipt: {exc}") from exc
    export = reader.data.get("local_export")
    if export is not None and not isinstance(export, dict):
        raise BundleFieldError("anchor.local_export must be an object")
    return AnchorEvidence(
        size=reader.get("size", int),
        root=reader.raw("root", 32),
        consistency=reader.hashes("consistency"),
        receipt=receipt,
        local_export=export,
    )


_TOP: Final = {
    "format", "asset", "period", "checkpoint", "operator_key", "devices", "registry", "chains",
    "anchor",
}  # fmt: skip


def parse_bundle(data: bytes) -> Bundle:
    """Read a bundle file strictly: unknown versions and fields are refused, missing ones named."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleFormatError(f"bundle is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise BundleFormatError("bundle must be a JSON object")
    found = document.get("format")
    if found != BUNDLE_FORMAT:
        if isinstance(found, str) and found.startswith(_FORMAT_FAMILY):
            raise UnknownBundleVersionError(
                f"bundle version {found!r} is not supported (this verifier reads {BUNDLE_FORMAT!r})"
            )
        raise UnknownBundleVersionError(f"file format {found!r} is not {BUNDLE_FORMAT!r}")
    top = _Reader(document, "", _TOP)
    asset = _Reader(top.get("asset", dict), "asset", {"id", "kind"})
    period = _Reader(top.get("period", dict), "period", {"from_ms", "to_ms"})
    return Bundle(
        asset_id=asset.get("id", str),
        asset_kind=asset.get("kind", str),
        from_ms=period.get("from_ms", int),
        to_ms=period.get("to_ms", int),
        checkpoint=top.get("checkpoint", str),
        operator_key=top.raw("operator_key", 32),
        devices=tuple(_device(d, f"devices[{i}]") for i, d in enumerate(top.get("devices", list))),
        registry=tuple(_leaf(r, f"registry[{i}]") for i, r in enumerate(top.get("registry", list))),
        chains=tuple(_chain(c, f"chains[{i}]") for i, c in enumerate(top.get("chains", list))),
        anchor=_anchor(top.get("anchor", dict)),
    )
