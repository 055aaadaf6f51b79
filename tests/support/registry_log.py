"""A registry history written entry by entry, as an operator (honest or not) would log it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger.birth import certify_device
from ledger.keys import public_key_from_seed
from ledger.message import sign_registry_entry
from ledger.note import VerifierKey, parse_verifier_key, verifier_key
from tests.support.bundle_world import seed_of

OPERATOR_SEED = seed_of("operator")
OPERATOR_KEY = public_key_from_seed(OPERATOR_SEED)
MANUFACTURER = "acme-cells"
MANUFACTURER_SEED = seed_of("manufacturer acme-cells")
T0 = 1_767_225_600_000


def manufacturer_key(name: str = MANUFACTURER, seed: bytes = MANUFACTURER_SEED) -> VerifierKey:
    """The verifier key of a test manufacturer."""
    return parse_verifier_key(verifier_key(name, public_key_from_seed(seed)))


def birth(
    device: str,
    *,
    kind: str = "pack",
    key_seed: bytes | None = None,
    manufacturer: str = MANUFACTURER,
    seed: bytes = MANUFACTURER_SEED,
) -> bytes:
    """A birth certificate of ``device`` (its key from ``seed_of(device)`` by default)."""
    key = public_key_from_seed(key_seed or seed_of(device))
    return certify_device(
        seed=seed, manufacturer=manufacturer, device=device, serial=f"SN-{device}", kind=kind,
        key=key, made_at_ms=T0,
    )  # fmt: skip


@dataclass
class RegistryLog:
    """Registry entries at consecutive leaf indexes (telemetry leaves may be skipped over)."""

    entries: list[tuple[int, bytes]] = field(default_factory=list)
    size: int = 0

    def add(self, fields: dict[str, Any], *, seed: bytes = OPERATOR_SEED, kid: str = "op") -> int:
        """Append an entry signed by ``seed``; returns its leaf index."""
        index = self.size
        self.entries.append((index, sign_registry_entry(fields, seed=seed, kid=kid)))
        self.size += 1
        return index

    def skip(self, leaves: int = 1) -> None:
        """Leave room for telemetry leaves."""
        self.size += leaves

    def enroll(
        self, device: str, *, kind: str = "pack", key_seed: bytes | None = None,
        certificate: bytes | None = None,
    ) -> int:  # fmt: skip
        """The operator enrols ``device`` (key from ``seed_of(device)`` by default)."""
        fields: dict[str, Any] = {
            "type": "enroll", "dev": device, "t": T0, "kind": kind, "fleet": "f",
            "key": public_key_from_seed(key_seed or seed_of(device)),
        }  # fmt: skip
        if certificate is not None:
            fields["birth"] = certificate
        return self.add(fields)

    def rotate(self, device: str, *, signer: bytes, new_seed: bytes, seq: int) -> int:
        """A rotation of ``device`` to ``new_seed``'s key, signed by ``signer``."""
        fields = {"type": "rotate", "dev": device, "t": T0, "key": public_key_from_seed(new_seed),
                  "seq": seq}  # fmt: skip
        return self.add(fields, seed=signer, kid=device)

    def revoke(self, device: str) -> int:
        """The operator revokes ``device``."""
        return self.add({"type": "revoke", "dev": device, "t": T0, "reason": "test"})

    def replace(self, old: str, new: str, *, kind: str = "pack") -> int:
        """The operator links revoked ``old`` to ``new``."""
        return self.add({"type": "replace", "dev": old, "new": new, "kind": kind, "t": T0})
