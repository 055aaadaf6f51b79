"""One Ed25519 key per simulated device, kept in a keys directory, and the exports.

The simulated fleet has one manufacturer: a key ``manufacturer.key`` beside the keys
directory (made once) certifies each device key when it is made; the birth certificate
(``ledger.birth``) is kept as ``<device>.birth`` next to the device's key, and the
enrolment file carries it so every enrolment is certified.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ledger.birth import BirthCertificateError, certify_device, check_birth_certificate
from ledger.errors import VoltproofError
from ledger.keys import KeyFileError, SigningKey, create_key_file, load_key_file

MANUFACTURER_FILE: Final = "manufacturer.key"
MANUFACTURER_NAME: Final = "voltproof-sim-manufacturer"


class FleetKeyError(VoltproofError, RuntimeError):
    """A device key cannot be created, loaded or exported."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceKey:
    """A device's id, kind, seed and public key."""

    dev: str
    kind: str
    seed: bytes
    public_key: bytes
    birth: bytes
    """The device's birth certificate by the fleet's manufacturer."""


def manufacturer_key(keys_dir: Path) -> SigningKey:
    """The fleet's manufacturer key (``manufacturer.key`` beside ``keys_dir``), made once."""
    path = keys_dir.parent / MANUFACTURER_FILE
    try:
        if not path.exists():
            keys_dir.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            create_key_file(path, name=MANUFACTURER_NAME)
        return load_key_file(path)
    except KeyFileError as exc:
        raise FleetKeyError(str(exc)) from exc


def load_or_create(keys_dir: Path, devices: Mapping[str, str]) -> dict[str, DeviceKey]:
    """The key and birth certificate of every ``{device id: kind}``, made on first use
    (keys mode 0600; the certificate signed by :func:`manufacturer_key` then)."""
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    maker = manufacturer_key(keys_dir)
    result = {}
    for dev, kind in devices.items():
        path = keys_dir / f"{dev}.key"
        try:
            if not path.exists():
                create_key_file(path, name=dev)
            key = load_key_file(path)
        except KeyFileError as exc:
            raise FleetKeyError(str(exc)) from exc
        birth = _birth_certificate(keys_dir / f"{dev}.birth", maker, dev, kind, key.public_key)
        result[dev] = DeviceKey(
            dev=dev, kind=kind, seed=key.seed, public_key=key.public_key, birth=birth
        )
    return result


def _birth_certificate(
    path: Path, maker: SigningKey, dev: str, kind: str, public_key: bytes
) -> bytes:
    """The certificate at ``path``, made now if absent; refused if it names something else."""
    try:
        if path.exists():
            data = path.read_bytes()
            check_birth_certificate(data, device=dev, kind=kind, key=public_key, where=str(path))
            return data
        data = certify_device(
            seed=maker.seed, manufacturer=maker.name, device=dev, serial=f"SIM-{dev}",
            kind=kind, key=public_key, made_at_ms=time.time_ns() // 1_000_000,
        )  # fmt: skip
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_bytes(data)
        temporary.replace(path)
    except OSError as exc:
        raise FleetKeyError(f"cannot keep the birth certificate {path}: {exc.strerror}") from exc
    except BirthCertificateError as exc:
        raise FleetKeyError(str(exc)) from exc
    return data


def export_keys(path: Path, keys: Mapping[str, DeviceKey], *, fleet: str) -> Path:
    """Write ``{device id: base64 public key}`` to ``path`` and the enrolment file beside it.

    The enrolment file (``<path stem>.enroll.json``) is a JSON array of ``{"device_id",
    "kind", "fleet", "public_key", "birth"}`` (``birth``: the base64 birth certificate), as
    ``voltproof devices enroll --file`` reads it. Returns its path.
    """
    simple = {dev: base64.b64encode(k.public_key).decode("ascii") for dev, k in keys.items()}
    enroll = [
        {"device_id": dev, "kind": k.kind, "fleet": fleet, "public_key": simple[dev],
         "birth": base64.b64encode(k.birth).decode("ascii")}
        for dev, k in keys.items()
    ]  # fmt: skip
    enroll_path = path.with_name(f"{path.stem}.enroll.json")
    try:
        path.write_text(json.dumps(simple, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        enroll_path.write_text(json.dumps(enroll, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise FleetKeyError(f"cannot write {path}: {exc.strerror}") from exc
    return enroll_path
