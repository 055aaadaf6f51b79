"""One Ed25519 key per simulated device, kept in a keys directory, and the exports."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ledger.errors import VoltproofError
from ledger.keys import KeyFileError, create_key_file, load_key_file


class FleetKeyError(VoltproofError, RuntimeError):
    """A device key cannot be created, loaded or exported."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceKey:
    """A device's id, kind, seed and public key."""

    dev: str
    kind: str
    seed: bytes
    public_key: bytes


def load_or_create(keys_dir: Path, devices: Mapping[str, str]) -> dict[str, DeviceKey]:
    """The key of every ``{device id: kind}``, created (mode 0600) on first use."""
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    result = {}
    for dev, kind in devices.items():
        path = keys_dir / f"{dev}.key"
        try:
            if not path.exists():
                create_key_file(path, name=dev)
            key = load_key_file(path)
        except KeyFileError as exc:
            raise FleetKeyError(str(exc)) from exc
        result[dev] = DeviceKey(dev=dev, kind=kind, seed=key.seed, public_key=key.public_key)
    return result


def export_keys(path: Path, keys: Mapping[str, DeviceKey], *, fleet: str) -> Path:
    """Write ``{device id: base64 public key}`` to ``path`` and the enrolment file beside it.

    The enrolment file (``<path stem>.enroll.json``) is a JSON array of ``{"device_id",
    "kind", "fleet", "public_key"}``, as ``voltproof devices enroll --file`` reads it.
    Returns its path.
    """
    simple = {dev: base64.b64encode(k.public_key).decode("ascii") for dev, k in keys.items()}
    enroll = [
        {"device_id": dev, "kind": k.kind, "fleet": fleet, "public_key": simple[dev]}
        for dev, k in keys.items()
    ]
    enroll_path = path.with_name(f"{path.stem}.enroll.json")
    try:
        path.write_text(json.dumps(simple, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        enroll_path.write_text(json.dumps(enroll, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise FleetKeyError(f"cannot write {path}: {exc.strerror}") from exc
    return enroll_path
