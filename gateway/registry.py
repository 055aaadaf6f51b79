"""The device registry: enrol, rotate, revoke and replace devices, each change a signed leaf.

A change is a COSE registry entry (``ledger.message.sign_registry_entry``, payload as in
``ledger.registry``): enrolments, revocations and replacements are signed by the operator
key, a rotation by the device's current key (the old key vouches for the new one). An
enrolment may carry the device's birth certificate (``ledger.birth``). The entry is appended
to the log and the device table updated in one store transaction, after the registry rules
(``ledger.registry.check_registry``, the verifier's own function) accepted it: the store
raises ``RegistryConflictError`` naming the rule otherwise.
"""

from __future__ import annotations

import base64
import binascii
import csv
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ledger.birth import BirthCertificateError, read_birth_certificate
from ledger.errors import VoltproofError
from ledger.gbt32960.terminal import Terminal
from ledger.keys import SigningKey
from ledger.message import (
    MessageError,
    decode_message,
    sign_registry_entry,
    verify_registry_entry,
)
from ledger.note import NoteError, parse_verifier_key
from ledger.telemetry import KINDS, Kind

from .store import RegistryAction, RegistryChange, Store

KEY_SIZE: Final = 32
SPEC_FIELDS: Final = ("device_id", "kind", "fleet", "public_key")


class RegistryError(VoltproofError):
    """A registry request is invalid (bad device file, wrong key); the message says why."""


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceSpec:
    """A device to enrol."""

    device_id: str
    kind: Kind
    fleet: str
    public_key: bytes
    birth: bytes | None = None
    """The device's birth certificate (COSE bytes), carried in the enrolment entry."""
    terminal: Terminal | None = None
    """A GB/T 32960 terminal (VIN, chip id, SM2 key): enrolled under its VIN with the
    placeholder Ed25519 key (``ledger.gbt32960.terminal``)."""

    def __post_init__(self) -> None:
        for name, value in (("device id", self.device_id), ("fleet", self.fleet)):
            if not value or "/" in value or "+" in value or "#" in value:
                raise RegistryError(f"{name} {value!r} must be non-empty without / + #")
        if self.kind not in KINDS:
            raise RegistryError(f"kind {self.kind!r} is not one of {list(KINDS)}")
        if len(self.public_key) != KEY_SIZE:
            raise RegistryError(
                f"public key of {self.device_id!r} is {len(self.public_key)} bytes, want 32"
            )


def decode_public_key(text: str, *, what: str) -> bytes:
    """An Ed25519 public key as ``voltproof keys new`` / ``keys show`` print it (the C2SP
    verifier key ``name+keyid+base64(0x01 || key)``, key id checked), or as base64 of the
    32 raw bytes."""
    text = text.strip()
    if "+" in text and not text.endswith("="):  # raw base64 of 32 bytes ends with "="
        try:
            return parse_verifier_key(text).public_key
        except NoteError as exc:
            raise RegistryError(f"{what}: not a valid verifier key: {exc}") from exc
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RegistryError(
            f"{what}: public key is neither a verifier key (name+keyid+base64, as "
            "'voltproof keys new' prints it) nor base64"
        ) from exc
    if len(key) != KEY_SIZE:
        raise RegistryError(f"{what}: public key is {len(key)} bytes, want 32")
    return key


def _spec(row: dict[str, Any], what: str) -> DeviceSpec:
    missing = [name for name in SPEC_FIELDS if not isinstance(row.get(name), str)]
    if missing:
        raise RegistryError(f"{what}: missing or non-text {', '.join(missing)}")
    kind = row["kind"]
    if kind not in KINDS:
        raise RegistryError(f"{what}: kind {kind!r} is not one of {list(KINDS)}")
    birth = row.get("birth")
    if birth is not None and not isinstance(birth, str):
        raise RegistryError(f"{what}: birth must be base64 text")
    return DeviceSpec(
        device_id=row["device_id"],
        kind="bus" if kind == "bus" else "pack",
        fleet=row["fleet"],
        public_key=decode_public_key(row["public_key"], what=what),
        birth=decode_birth(birth, what=what) if birth else None,
    )


def decode_birth(text: str, *, what: str) -> bytes:
    """A base64 birth certificate, checked to be one (its claims; not its signature)."""
    try:
        data = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RegistryError(f"{what}: birth certificate is not base64") from exc
    try:
        read_birth_certificate(data)
    except BirthCertificateError as exc:
        raise RegistryError(f"{what}: {exc}") from exc
    return data


def load_device_specs(path: Path) -> list[DeviceSpec]:
    """Devices from a JSON array of objects or a CSV file with a header, both with the
    fields ``device_id``, ``kind``, ``fleet`` and ``public_key`` (base64), and optionally
    ``birth`` (the base64 birth certificate; empty in a CSV row for none)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise RegistryError(f"{path} is not UTF-8 text (JSON or CSV): {exc}") from exc
    if path.suffix.lower() == ".csv":
        rows: list[Any] = list(csv.DictReader(text.splitlines()))
    else:
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RegistryError(f"{path} is not JSON: {exc}") from exc
        if not isinstance(rows, list):
            raise RegistryError(f"{path} must hold a JSON array of devices")
    specs = []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise RegistryError(f"{path} device {number} is not an object")
        specs.append(_spec(row, f"{path} device {number}"))
    ids = [spec.device_id for spec in specs]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise RegistryError(f"{path} lists {repeated} more than once")
    return specs


class Registry:
    """Registry changes signed and logged through a :class:`~gateway.store.Store`."""

    def __init__(
        self,
        *,
        store: Store,
        operator: SigningKey,
        clock_ms: Callable[[], int] = _wall_clock_ms,
    ) -> None:
        self.store = store
        self.operator = operator
        self._clock_ms = clock_ms

    async def enroll(self, specs: Sequence[DeviceSpec]) -> list[int]:
        """Enrol devices (all or none); returns their registry leaf indexes."""
        now = self._clock_ms()
        changes = [
            RegistryChange(
                action=RegistryAction.ENROLL,
                device_id=spec.device_id,
                cose=sign_registry_entry(
                    _enrolment(spec, now), seed=self.operator.seed, kid=self.operator.name
                ),
                recorded_at_ms=now,
                kind=spec.kind,
                fleet=spec.fleet,
                public_key=spec.public_key,
                birth=spec.birth,
            )
            for spec in specs
        ]
        return await self._apply(changes)

    async def _apply(self, changes: Sequence[RegistryChange]) -> list[int]:
        return await self.store.apply_registry(changes, operator_key=self.operator.public_key)

    async def rotate(
        self, device_id: str, *, old_seed: bytes, new_public_key: bytes, seq: int
    ) -> int:
        """Rotate to ``new_public_key`` from message ``seq`` on, signed by the old key."""
        if len(new_public_key) != KEY_SIZE:
            raise RegistryError(f"new public key is {len(new_public_key)} bytes, want 32")
        if seq < 0:
            raise RegistryError(f"first seq of the new key must be >= 0, got {seq}")
        now = self._clock_ms()
        entry = sign_registry_entry(
            {"type": "rotate", "dev": device_id, "t": now, "key": new_public_key, "seq": seq},
            seed=old_seed,
            kid=device_id,
        )
        return await self.submit_rotation(entry)

    async def submit_rotation(self, entry: bytes) -> int:
        """Log a rotation entry signed by the device's current key (made anywhere)."""
        try:
            payload = decode_message(entry).payload
        except MessageError as exc:
            raise RegistryError(f"the rotation entry is malformed: {exc}") from exc
        device_id, key, seq = _rotation_fields(payload)
        current = (await self.store.devices([device_id])).get(device_id)
        if current is None:
            raise RegistryError(f"device {device_id!r} is not enrolled")
        try:
            verify_registry_entry(entry, public_key=current.public_key)
        except MessageError as exc:
            raise RegistryError(
                f"the rotation entry of {device_id!r} is not signed by its current key"
            ) from exc
        change = RegistryChange(
            action=RegistryAction.ROTATE,
            device_id=device_id,
            cose=entry,
            recorded_at_ms=self._clock_ms(),
            public_key=key,
            seq=seq,
        )
        (leaf,) = await self._apply([change])
        return leaf

    async def revoke(self, device_id: str, *, reason: str | None = None) -> int:
        """Revoke a device: its messages are refused from now on."""
        now = self._clock_ms()
        fields: dict[str, Any] = {"type": "revoke", "dev": device_id, "t": now}
        if reason:
            fields["reason"] = reason
        change = RegistryChange(
            action=RegistryAction.REVOKE,
            device_id=device_id,
            cose=sign_registry_entry(fields, seed=self.operator.seed, kid=self.operator.name),
            recorded_at_ms=now,
        )
        (leaf,) = await self._apply([change])
        return leaf

    async def replace(self, device_id: str, *, new_device_id: str) -> int:
        """Link the revoked ``device_id`` to its enrolled successor ``new_device_id``.

        The entry carries the kind both share; the store refuses it unless ``device_id`` is
        revoked, ``new_device_id`` enrolled and live, both of that kind, and neither has been
        linked in that role before.
        """
        known = await self.store.devices([device_id, new_device_id])
        for device in (device_id, new_device_id):
            if device not in known:
                raise RegistryError(f"device {device!r} is not enrolled")
        now = self._clock_ms()
        fields = {"type": "replace", "dev": device_id, "new": new_device_id,
                  "kind": known[device_id].kind, "t": now}  # fmt: skip
        change = RegistryChange(
            action=RegistryAction.REPLACE,
            device_id=device_id,
            cose=sign_registry_entry(fields, seed=self.operator.seed, kid=self.operator.name),
            recorded_at_ms=now,
            new_device=new_device_id,
        )
        (leaf,) = await self._apply([change])
        return leaf


def _enrolment(spec: DeviceSpec, now: int) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "type": "enroll",
        "dev": spec.device_id,
        "t": now,
        "kind": spec.kind,
        "fleet": spec.fleet,
        "key": spec.public_key,
    }
    if spec.birth is not None:
        fields["birth"] = spec.birth
    if spec.terminal is not None:
        fields["gbt"] = spec.terminal.fields()
    return fields


def _rotation_fields(payload: dict[str, Any]) -> tuple[str, bytes, int]:
    device_id, key, seq = payload.get("dev"), payload.get("key"), payload.get("seq")
    if payload.get("type") != "rotate" or not isinstance(device_id, str):
        raise RegistryError("the entry is not a rotation of a named device")
    if not isinstance(key, bytes) or len(key) != KEY_SIZE:
        raise RegistryError("the rotation entry has no 32-byte key")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise RegistryError("the rotation entry has no first seq")
    return device_id, key, seq
