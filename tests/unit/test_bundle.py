"""The voltproof-bundle/1 file: assembly, deterministic writing and strict parsing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.bundle import (
    BUNDLE_FORMAT,
    Bundle,
    BundleFieldError,
    BundleFormatError,
    LoggedLeaf,
    MissingBundleFieldError,
    UnknownBundleVersionError,
    parse_bundle,
)
from tests.support.bundle_world import T0, World, pack_batch, pack_sample


def small_world() -> tuple[World, Bundle]:
    """One pack, enrolled, with one message before, three inside and one after the period."""
    world = World()
    world.enroll("pack-1", "pack")
    for k in range(5):
        world.send("pack-1", pack_batch(T0 + (k - 1) * 10_000, [pack_sample()] * 10))
    bundle = world.bundle(
        asset="pack-1", kind="pack", from_ms=T0, to_ms=T0 + 30_000, messages=range(1, 6)
    )
    return world, bundle


def document(bundle: Bundle) -> dict[str, Any]:
    """The bundle's JSON document as a mutable dict."""
    result: dict[str, Any] = json.loads(bundle.to_bytes())
    return result


def test_round_trip_is_exact() -> None:
    """Parsing a written bundle gives the same bundle, and writing it again the same bytes."""
    _, bundle = small_world()
    data = bundle.to_bytes()
    parsed = parse_bundle(data)
    assert parsed == bundle
    assert parsed.to_bytes() == data


def test_build_splits_boundary_messages() -> None:
    """The messages before and after the period become the chain's boundary evidence."""
    _, bundle = small_world()
    (chain,) = bundle.chains
    assert chain.before is not None
    assert chain.before.index == 1
    assert [leaf.index for leaf in chain.messages] == [2, 3, 4]
    assert chain.after is not None
    assert chain.after.index == 5
    assert bundle.devices[0].device == "pack-1"
    assert bundle.devices[0].kind == "pack"


def test_build_refuses_two_boundary_messages() -> None:
    """Two messages before the period cannot both be the boundary."""
    world = World()
    world.enroll("pack-1", "pack")
    for k in range(3):
        world.send("pack-1", pack_batch(T0 - 30_000 + k * 10_000, [pack_sample()]))
    with pytest.raises(ValueError, match="at most one boundary message"):
        world.bundle(asset="pack-1", kind="pack", from_ms=T0, to_ms=T0 + 1, messages=[1, 2, 3])


def test_build_refuses_a_registry_entry_as_message() -> None:
    """A registry entry offered as a message is refused with its leaf index."""
    world = World()
    world.enroll("pack-1", "pack")
    with pytest.raises(ValueError, match="message at leaf 0"):
        world.bundle(asset="pack-1", kind="pack", from_ms=T0, to_ms=T0 + 1, messages=[0])


def test_unknown_version_is_refused() -> None:
    """A later bundle version is refused by name."""
    _, bundle = small_world()
    doc = document(bundle)
    doc["format"] = "voltproof-bundle/2"
    with pytest.raises(UnknownBundleVersionError, match="'voltproof-bundle/2' is not supported"):
        parse_bundle(json.dumps(doc).encode())


def test_other_format_is_refused() -> None:
    """A JSON file of another format is refused."""
    with pytest.raises(UnknownBundleVersionError, match=f"is not '{BUNDLE_FORMAT}'"):
        parse_bundle(b'{"format": "something-else"}')


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (("checkpoint",), "bundle lacks checkpoint"),
        (("asset", "kind"), "bundle lacks asset.kind"),
        (("chains", 0, "messages", 1, "proof"), r"bundle lacks chains\[0\].messages\[1\].proof"),
        (("registry", 0, "cose"), r"bundle lacks registry\[0\].cose"),
        (("anchor", "receipt"), "bundle lacks anchor.receipt"),
    ],
)
def test_missing_fields_are_named(path: tuple[str | int, ...], message: str) -> None:
    """Removing any required field names its path."""
    _, bundle = small_world()
    doc = document(bundle)
    node: Any = doc
    for step in path[:-1]:
        node = node[step]
    del node[path[-1]]
    with pytest.raises(MissingBundleFieldError, match=message):
        parse_bundle(json.dumps(doc).encode())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(extra=1), r"bundle has unknown fields \['extra'\]"),
        (lambda d: d["period"].update(from_ms=-1), "period.from_ms must be an unsigned integer"),
        (lambda d: d["period"].update(from_ms=d["period"]["to_ms"]), "is not before to_ms"),
        (lambda d: d["asset"].update(kind="tram"), "asset.kind 'tram' is not one of"),
        (lambda d: d.update(operator_key="AAAA"), "operator_key must be 32 bytes, got 3"),
        (lambda d: d["chains"][0]["messages"][0].update(cose="!!"), "is not valid base64"),
        (lambda d: d["chains"][0]["messages"][0]["proof"].append(7), "must be base64 text"),
        (lambda d: d["anchor"]["receipt"].update(state="maybe"), "anchor.receipt: receipt state"),
        (lambda d: d["anchor"].update(local_export=[]), "local_export must be an object"),
        (lambda d: d.update(chains={}), "chains must be list"),
    ],
)
def test_malformed_fields_are_named(mutate: Any, message: str) -> None:
    """Every wrongly typed or unknown field is refused with its path."""
    _, bundle = small_world()
    doc = document(bundle)
    mutate(doc)
    with pytest.raises(BundleFieldError, match=message):
        parse_bundle(json.dumps(doc).encode())


@pytest.mark.parametrize(
    ("data", "message"), [(b"\xff", "not JSON"), (b"[]", "must be a JSON object")]
)
def test_non_json_is_refused(data: bytes, message: str) -> None:
    """Bytes that are not a JSON object are refused."""
    with pytest.raises(BundleFormatError, match=message):
        parse_bundle(data)


def test_negative_leaf_index_is_refused() -> None:
    """A leaf cannot have a negative index."""
    with pytest.raises(BundleFieldError, match="leaf index must be an unsigned integer"):
        LoggedLeaf(index=-1, data=b"x", proof=())


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=200))
def test_parse_never_crashes_on_garbage(data: bytes) -> None:
    """Arbitrary bytes are refused with a BundleFormatError, never another exception."""
    with pytest.raises(BundleFormatError):
        parse_bundle(data)
