"""``voltproof-bundle/2`` files: read back exactly, strict on every key, clear on bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from ledger.bundle import (
    BundleFieldError,
    BundleFormatError,
    MissingBundleFieldError,
    UnknownBundleVersionError,
)
from ledger.bundle_v2 import BundleV2, parse_bundle_v2, read_bundle
from tests.support.bundle_world import pack_world
from tests.support.evidence_world import EvidenceWorld, build_world


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An honest pack bundle (with host chains) as its JSON document."""
    world: EvidenceWorld = build_world(tmp_path_factory.mktemp("format") / "gw")
    data: dict[str, Any] = json.loads(world.bundle("pack-0001").to_bytes())
    return data


def _bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def test_round_trip_is_byte_exact(document: dict[str, Any]) -> None:
    """Parsing and writing again gives the same file."""
    bundle = parse_bundle_v2(_bytes(document))
    assert json.loads(bundle.to_bytes()) == document
    assert read_bundle(bundle.to_bytes()) == bundle


def test_read_bundle_reads_v1_too() -> None:
    """read_bundle dispatches on format; v1 stays readable."""
    _, v1 = pack_world()
    assert read_bundle(v1.to_bytes()).format == "voltproof-bundle/1"
    with pytest.raises(UnknownBundleVersionError, match="is not 'voltproof-bundle/1' or"):
        read_bundle(b'{"format": "voltproof-bundle/3"}')
    with pytest.raises(BundleFormatError, match="not JSON"):
        read_bundle(b"\xff")
    with pytest.raises(BundleFormatError, match="must be a JSON object"):
        read_bundle(b"[]")


def _edit(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    keys = path.split(".")

    def change(document: dict[str, Any]) -> None:
        target: Any = document
        for key in keys[:-1]:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if value is KeyError:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (_edit("extra", 1), BundleFieldError, r"bundle has unknown fields \['extra'\]"),
        (_edit("chains", KeyError), MissingBundleFieldError, "bundle lacks chains"),
        (_edit("devices.0.entry.reg_h", "!!"), BundleFieldError, "reg_h is not valid base64"),
        (_edit("devices.0.entry.head", {"seq": 1}), MissingBundleFieldError, "lacks"),
        (_edit("devices.0.entry.kind", "tram"), BundleFieldError, "kind 'tram'"),
        (_edit("devices.0.index_proof", ["AA=="]), BundleFieldError, "must be 32 bytes"),
        (_edit("devices.0.registry.0.index", -1), BundleFieldError, "unsigned integer"),
        (_edit("chains.0.role", "owner"), BundleFieldError, "chain role 'owner'"),
        (_edit("chains.0.to_ms", 0), BundleFieldError, "is not before to_ms"),
        (_edit("chains.0.before", 5), BundleFieldError, "must be an object"),
        (_edit("period.to_ms", 0), BundleFieldError, "is not before to_ms"),
        (_edit("asset.kind", "tram"), BundleFieldError, "asset.kind 'tram'"),
        (_edit("operator_key", "AAAA"), BundleFieldError, "must be 32 bytes"),
        (_edit("format", "voltproof-bundle/1"), UnknownBundleVersionError, "is not"),
    ],
)
def test_strict_parsing(
    document: dict[str, Any],
    change: Callable[[dict[str, Any]], None],
    error: type[Exception],
    message: str,
) -> None:
    """Every key required, no others, each type and size checked, the path named."""
    edited = json.loads(json.dumps(document))
    change(edited)
    with pytest.raises(error, match=message):
        parse_bundle_v2(_bytes(edited))


def test_parsed_bundle_is_v2(document: dict[str, Any]) -> None:
    """The parsed object says its version."""
    assert isinstance(read_bundle(_bytes(document)), BundleV2)
