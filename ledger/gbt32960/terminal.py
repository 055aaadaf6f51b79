"""A GB/T 32960 terminal in the registry: VIN, security-chip id and SM2 public key.

A terminal is enrolled like any device (``ledger.registry``: one enrolment per id, ever;
revocation final), under its VIN as device id, with one more enrolment field::

    "gbt": {"vin": VIN text, "chip": security-chip id text, "sm2": 64-byte X || Y,
            "edition": 2016 or 2025 (optional)}

``edition``, when enrolled, is the only edition of GB/T 32960.3 the terminal's frames may
use: a terminal enrolled as 2025 signs every data frame, so an unsigned (2016) frame under
its VIN is refused by the gateway and by an offline verifier. Without it, frames of either
edition are accepted and 2016 frames count as received-only evidence (docs/protocol.md).

The registry entry format requires a 32-byte Ed25519 ``key``. A terminal has none, so its
enrolment carries :func:`placeholder_key`: SHA-256 of a fixed label and the VIN, a value
nobody knows a private key for, so no COSE message can ever be accepted for the terminal's
id; its frames are checked against ``gbt.sm2`` instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from .errors import FrameStructureError
from .signature import PublicKeyError, sm2_public_key

PLACEHOLDER_LABEL: Final = b"voltproof-gbt32960/1 terminal without an Ed25519 key\n"
MAX_CHIP_ID: Final = 64
EDITIONS: Final = (2016, 2025)


class TerminalEntryError(FrameStructureError):
    """An enrolment's ``gbt`` field is malformed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Terminal:
    """What the registry says about one GB/T 32960 terminal."""

    vin: str
    chip: str
    sm2: bytes
    edition: int | None = None
    """The one edition the terminal's frames may use, or None (either)."""

    def __post_init__(self) -> None:
        if self.edition is not None and self.edition not in EDITIONS:
            raise TerminalEntryError(f"edition {self.edition!r} is not one of {list(EDITIONS)}")
        if len(self.vin) != 17 or not self.vin.isascii() or not self.vin.isalnum():
            raise TerminalEntryError(f"VIN {self.vin!r} is not 17 ASCII letters and digits")
        if not 1 <= len(self.chip) <= MAX_CHIP_ID or not self.chip.isprintable():
            raise TerminalEntryError(f"chip id {self.chip!r} must be 1..64 printable characters")
        try:
            object.__setattr__(self, "sm2", sm2_public_key(self.sm2))
        except PublicKeyError as exc:
            raise TerminalEntryError(str(exc)) from exc

    def fields(self) -> dict[str, object]:
        """The enrolment's ``gbt`` value."""
        fields: dict[str, object] = {"vin": self.vin, "chip": self.chip, "sm2": self.sm2}
        if self.edition is not None:
            fields["edition"] = self.edition
        return fields

    def allows(self, edition: int) -> bool:
        """Whether a frame of ``edition`` may be the terminal's (its enrolled edition, if any)."""
        return self.edition is None or self.edition == edition


def placeholder_key(vin: str) -> bytes:
    """The enrolment ``key`` of a terminal: no one holds its private key."""
    return hashlib.sha256(PLACEHOLDER_LABEL + vin.encode("ascii")).digest()


def read_terminal(payload: Mapping[str, object]) -> Terminal | None:
    """The terminal an enrolment payload describes, or None for an ordinary device."""
    raw = payload.get("gbt")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise TerminalEntryError("enrolment field 'gbt' must be a map")
    vin, chip, sm2 = raw.get("vin"), raw.get("chip"), raw.get("sm2")
    if not (isinstance(vin, str) and isinstance(chip, str) and isinstance(sm2, bytes)):
        raise TerminalEntryError("enrolment field 'gbt' needs text vin, text chip, bytes sm2")
    edition = raw.get("edition")
    if edition is not None and (type(edition) is not int or edition not in EDITIONS):
        raise TerminalEntryError(f"enrolment field 'gbt.edition' {edition!r} is not 2016 or 2025")
    unknown = set(raw) - {"vin", "chip", "sm2", "edition"}
    if unknown:
        raise TerminalEntryError(
            f"enrolment field 'gbt' has unknown keys {sorted(map(str, unknown))}"
        )
    return Terminal(vin=vin, chip=chip, sm2=sm2, edition=edition)
