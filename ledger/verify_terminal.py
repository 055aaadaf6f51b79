"""GB/T 32960 terminal frames in a ``voltproof-bundle/2``: what one frame leaf proves.

A terminal's chain in a bundle holds ``voltproof-gbt32960/1`` leaves (``ledger.gbt32960``)
instead of COSE messages. :func:`check_terminal_leaf` checks one of them against the
terminal's enrolment (read by :func:`terminal_of` from the device's registry entries, which
the device index proves complete, so a swapped enrolment key fails before any frame is
read) and gives the chain facts the v2 verifier links exactly as it links COSE messages:
the gateway's ``seq``/``prev``, the frame's collection time ``t`` and the leaf's SHA-256.

Every frame gets one evidence label (``docs/protocol.md``, "GB/T 32960 frames in a v2
bundle"):

- ``signed-by-terminal``: a 2025 frame whose SM2 signature verifies under the enrolled key;
- ``received-only``: a 2016 frame, signed by no vehicle key; it proves only that the
  gateway logged these bytes (and the checkpoint that includes it, when it did so);
- ``signed-by-device``: a COSE message of a voltproof agent (not made here).

A lessor who will not accept received-only evidence verifies with ``require_signed``: a
received-only frame is then refused with :class:`ReceivedOnlyError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .bundle import LoggedLeaf
from .bundle_v2 import BundleV2
from .errors import VoltproofError
from .gbt32960 import (
    GbtError,
    GbtLeaf,
    GbtSignatureError,
    PublicKeyError,
    Terminal,
    is_envelope,
    read_leaf,
    read_terminal,
    sm2_public_key,
    verify_sm2,
)
from .gbt32960.leaf import RECEIVED_ONLY, SIGNED_BY_TERMINAL
from .message import MessageError, decode_message
from .verify import BundleRegistryError, BundleVerificationError

__all__ = [
    "EVIDENCE_LABELS",
    "RECEIVED_ONLY",
    "SIGNED_BY_DEVICE",
    "SIGNED_BY_TERMINAL",
    "ReceivedOnlyError",
    "TerminalEditionError",
    "TerminalFrame",
    "TerminalFrameError",
    "TerminalMismatchError",
    "TerminalSignatureError",
    "asset_frames",
    "check_terminal_leaf",
    "terminal_of",
]

SIGNED_BY_DEVICE: Final = "signed-by-device"
EVIDENCE_LABELS: Final = (SIGNED_BY_DEVICE, SIGNED_BY_TERMINAL, RECEIVED_ONLY)


class TerminalFrameError(BundleVerificationError):
    """A GB/T 32960 leaf in a chain does not decode as a data frame of its terminal."""


class TerminalMismatchError(TerminalFrameError):
    """The leaf names another device or VIN than its chain, or the device is no terminal."""


class TerminalSignatureError(TerminalFrameError):
    """A 2025 frame whose SM2 signature does not verify under the enrolled key."""


class TerminalEditionError(TerminalFrameError):
    """A frame of an edition the terminal is not enrolled for (a 2016 frame of a 2025
    terminal would be evidence nobody signed, under a VIN whose frames are all signed)."""


class TerminalPinError(BundleVerificationError):
    """A terminal's enrolled SM2 key is not the one the verifier pinned for its VIN."""


class TerminalPinFormatError(VoltproofError, ValueError):
    """A ``VIN=KEY`` pin that is not a VIN and a hex SM2 public key on the curve."""


class ReceivedOnlyError(TerminalFrameError):
    """A received-only (2016) frame, and the verifier was told to require signed evidence."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TerminalFrame:
    """What a checked terminal leaf gives the chain check: link facts, label and payload."""

    seq: int
    prev: bytes
    t_ms: int
    digest: bytes
    evidence: str
    leaf: GbtLeaf
    payload: Mapping[str, Any]
    """A telemetry payload of the frame's one bus sample (what the condition report reads)."""


def asset_frames(bundle: BundleV2) -> list[GbtLeaf]:
    """The decoded frames of the asset's own chain in the period (check the bundle first)."""
    return [
        read_leaf(leaf.data)
        for chain in bundle.chains
        if chain.role == "asset"
        for leaf in chain.messages
        if is_envelope(leaf.data)
    ]


def parse_terminal_pin(text: str) -> tuple[str, bytes]:
    """``VIN=HEX`` (the SM2 public key X || Y, 128 hex digits, or 130 with ``04``)."""
    vin, sep, encoded = text.partition("=")
    if not sep or not vin:
        raise TerminalPinFormatError(f"pin {text!r} is not VIN=HEXKEY")
    try:
        raw = bytes.fromhex(encoded.strip())
    except ValueError as exc:
        raise TerminalPinFormatError(f"pin of {vin!r}: the key is not hex") from exc
    try:
        return vin, sm2_public_key(raw)
    except PublicKeyError as exc:
        raise TerminalPinFormatError(f"pin of {vin!r}: {exc}") from exc


def check_terminal_pins(bundle: BundleV2, pins: Mapping[str, bytes]) -> None:
    """Every terminal of the bundle whose VIN is pinned was enrolled with the pinned SM2 key.

    The operator signs enrolments: one that enrols its own SM2 key under a bus's VIN can sign
    "terminal" frames itself. A lessor who obtained the terminal's key from the vehicle's
    maker pins it; a pinned VIN the bundle does not hold is not checked here.
    """
    for device in bundle.devices:
        terminal = terminal_of(device.registry)
        pinned = None if terminal is None else pins.get(terminal.vin)
        if terminal is not None and pinned is not None and pinned != terminal.sm2:
            raise TerminalPinError(
                f"terminal {terminal.vin} was enrolled with SM2 key {terminal.sm2.hex()}, the "
                f"pinned key is {pinned.hex()}"
            )


def terminal_of(registry: Iterable[LoggedLeaf]) -> Terminal | None:
    """The terminal a device's registry entries enrol (its ``enroll`` entry's ``gbt`` field)."""
    for leaf in registry:
        try:
            payload = decode_message(leaf.data).payload
        except MessageError as exc:
            raise BundleRegistryError(f"registry entry at leaf {leaf.index}: {exc}") from exc
        if payload.get("type") != "enroll":
            continue
        try:
            return read_terminal(payload)
        except GbtError as exc:
            raise BundleRegistryError(
                f"enroll entry at leaf {leaf.index} ({payload.get('dev')}): {exc}"
            ) from exc
    return None


def check_terminal_leaf(
    leaf: LoggedLeaf, *, device: str, terminal: Terminal | None, require_signed: bool = False
) -> TerminalFrame:
    """Check one ``voltproof-gbt32960/1`` leaf of ``device``'s chain; raise a named error.

    Order: the leaf decodes as a real-time or reissued data frame; its envelope and the
    frame's VIN name ``device``, enrolled as a terminal; the frame's edition is one the
    enrolment allows; a 2025 frame's SM2 signature verifies under the enrolled key; a 2016
    frame is refused only when ``require_signed``.
    """
    where = f"frame at leaf {leaf.index}"
    try:
        facts = read_leaf(leaf.data)
    except GbtError as exc:
        raise TerminalFrameError(f"{where}: {type(exc).__name__}: {exc}") from exc
    envelope = facts.envelope
    frame = envelope.frame
    where = f"frame at leaf {leaf.index} ({envelope.device_id} seq {envelope.seq})"
    if terminal is None:
        raise TerminalMismatchError(f"{where}: {device!r} is not enrolled as a GB/T 32960 terminal")
    if not envelope.device_id == frame.vin == terminal.vin == device:
        raise TerminalMismatchError(
            f"{where}: the leaf names device {envelope.device_id!r} and holds a frame of VIN "
            f"{frame.vin}; it is in the chain of {device!r}, enrolled as VIN {terminal.vin}"
        )
    if not terminal.allows(frame.edition):
        raise TerminalEditionError(
            f"{where}: a {frame.edition} frame; terminal {terminal.vin} is enrolled as "
            f"edition {terminal.edition}"
        )
    if frame.edition == 2016:
        if require_signed:
            raise ReceivedOnlyError(
                f"{where}: an unsigned 2016 frame (received-only evidence) and signed "
                "evidence is required"
            )
    else:
        signature = facts.record.signature
        if signature is None:  # decode_realtime requires one in 2025; kept as a named refusal
            raise TerminalSignatureError(f"{where}: a 2025 frame without a signature")
        try:
            verify_sm2(signature=signature, signed=facts.record.signed, public_key=terminal.sm2)
        except GbtSignatureError as exc:
            raise TerminalSignatureError(f"{where}: {exc} (chip {terminal.chip})") from exc
    return TerminalFrame(
        seq=envelope.seq,
        prev=envelope.prev,
        t_ms=facts.t_ms,
        digest=hashlib.sha256(leaf.data).digest(),
        evidence=facts.evidence,
        leaf=facts,
        payload=facts.payload(),
    )
