"""Registry facts in bundles: enrolment, rotation and revocation decide which key is valid."""

from __future__ import annotations

import pytest

from ledger.keys import public_key_from_seed
from ledger.message import sign_registry_entry
from ledger.registry import (
    KeyNotValidError,
    RegistryEntryError,
    build_key_history,
    key_for_message,
    read_registry_entry,
)
from ledger.verify import BundleRegistryError, MessageSignatureError, verify_bundle
from tests.support.bundle_world import T0, DeviceState, World, pack_batch, pack_sample, seed_of


def rotated_world(*, backfill: bool) -> tuple[World, list[int]]:
    """pack-1 sends seq 0, rotates from seq 2 on; seq 1 (old key) is logged after the rotation
    when ``backfill`` is true, before it otherwise."""
    world = World()
    world.enroll("pack-1", "pack")
    world.send("pack-1", pack_batch(T0, [pack_sample()]))
    late = world.send("pack-1", pack_batch(T0 + 1000, [pack_sample()]), log=not backfill)
    world.rotate("pack-1")
    if backfill:
        world.append_leaf(late)
    world.send("pack-1", pack_batch(T0 + 2000, [pack_sample()]))
    messages = [i for i in range(world.log.size) if i not in world.registry_leaves]
    return world, messages


@pytest.mark.parametrize("backfill", [False, True])
def test_rotation_keeps_earlier_messages_valid(backfill: bool) -> None:
    """Messages before the rotation's seq verify under the old key, later ones under the new."""
    world, messages = rotated_world(backfill=backfill)
    bundle = world.bundle(asset="pack-1", kind="pack", from_ms=T0, to_ms=T0 + 3000,
                          messages=messages)  # fmt: skip
    report = verify_bundle(bundle, gateway_verifier_key=world.gateway_key)
    assert report.messages == 3
    assert len(bundle.devices[0].keys) == 2


def test_old_key_after_rotation_is_refused() -> None:
    """A message signed with the old key at a seq the new key covers is refused."""
    world, _ = rotated_world(backfill=False)
    old_seed = seed_of("pack-1")
    world.devices["pack-1"].seed = old_seed
    world.send("pack-1", pack_batch(T0 + 3000, [pack_sample()]))
    messages = [i for i in range(world.log.size) if i not in world.registry_leaves]
    bundle = world.bundle(asset="pack-1", kind="pack", from_ms=T0, to_ms=T0 + 4000,
                          messages=messages)  # fmt: skip
    with pytest.raises(MessageSignatureError, match=r"\(pack-1 seq 3\).*does not verify"):
        verify_bundle(bundle, gateway_verifier_key=world.gateway_key)


def test_message_logged_after_revocation_is_refused() -> None:
    """Once revoked, a key validates nothing logged after the revocation."""
    world = World()
    world.enroll("pack-1", "pack")
    world.send("pack-1", pack_batch(T0, [pack_sample()]))
    revoked = world.revoke("pack-1")
    world.send("pack-1", pack_batch(T0 + 1000, [pack_sample()]))
    bundle = world.bundle(asset="pack-1", kind="pack", from_ms=T0, to_ms=T0 + 2000,
                          messages=[1, 3])  # fmt: skip
    with pytest.raises(
        MessageSignatureError, match=f"seq 1\\): its key was revoked at leaf {revoked}"
    ):
        verify_bundle(bundle, gateway_verifier_key=world.gateway_key)


def test_reenrolment_after_revocation_is_refused() -> None:
    """A revoked id enrolled again with a new key (the forged-history attack) is refused."""
    world = World()
    world.enroll("pack-1", "pack")
    world.send("pack-1", pack_batch(T0, [pack_sample()]))
    world.revoke("pack-1")
    state = world.devices["pack-1"]
    new_seed = seed_of("pack-1 second key")
    world.registry({"type": "enroll", "dev": "pack-1", "kind": "pack",
                    "key": public_key_from_seed(new_seed), "t": T0})  # fmt: skip
    state.seed = new_seed
    world.send("pack-1", pack_batch(T0 + 1000, [pack_sample()]))
    bundle = world.bundle(asset="pack-1", kind="pack", from_ms=T0, to_ms=T0 + 2000,
                          messages=[1, 4])  # fmt: skip
    with pytest.raises(BundleRegistryError, match="second enroll of 'pack-1' at leaf 3"):
        verify_bundle(bundle, gateway_verifier_key=world.gateway_key)


def test_rotation_signed_by_operator_is_refused() -> None:
    """A rotation must be signed by the device's current key, not the operator."""
    world = World()
    world.enroll("pack-1", "pack")
    world.registry({"type": "rotate", "dev": "pack-1", "key": bytes(32), "seq": 0, "t": T0})
    world.send("pack-1", pack_batch(T0, [pack_sample()]))
    bundle = world.bundle(asset="pack-1", kind="pack", from_ms=T0, to_ms=T0 + 1, messages=[2])
    with pytest.raises(
        BundleRegistryError, match="rotate entry of 'pack-1' at leaf 1 is not signed"
    ):
        verify_bundle(bundle, gateway_verifier_key=world.gateway_key)


def test_key_enrolled_after_the_message_is_not_valid() -> None:
    """A key enrolled later in the log than a message does not validate it."""
    world = World()
    world.devices["pack-1"] = DeviceState(seed=seed_of("pack-1"))
    world.send("pack-1", pack_batch(T0, [pack_sample()]))
    world.registry({"type": "enroll", "dev": "pack-1", "kind": "pack",
                    "key": public_key_from_seed(seed_of("pack-1")), "t": T0})  # fmt: skip
    bundle = world.bundle(asset="pack-1", kind="pack", from_ms=T0, to_ms=T0 + 1, messages=[0])
    with pytest.raises(MessageSignatureError, match="enrolled at leaf 1, after the message"):
        verify_bundle(bundle, gateway_verifier_key=world.gateway_key)


def entry(fields: dict[str, object]) -> bytes:
    """A registry entry signed by the test operator."""
    return sign_registry_entry(fields, seed=seed_of("operator"), kid="operator")


OPERATOR = public_key_from_seed(seed_of("operator"))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"type": "adopt", "dev": "d", "t": 0}, "type 'adopt' is not one of"),
        ({"type": "enroll", "dev": "d", "t": 0, "kind": "pack"}, "field 'key' must be bytes"),
        ({"type": "enroll", "dev": "d", "t": 0, "kind": "pack", "key": b"x"}, "key must be 32"),
        ({"type": "revoke", "dev": 7, "t": 0}, "field 'dev' must be str"),
        ({"type": "rotate", "dev": "d", "t": 0, "key": bytes(32)}, "field 'seq' must be int"),
    ],
)
def test_malformed_entries_are_named(fields: dict[str, object], message: str) -> None:
    """Every malformed registry payload is refused with the field at fault."""
    with pytest.raises(RegistryEntryError, match=message):
        read_registry_entry(entry(fields), index=3)


def test_telemetry_is_not_a_registry_entry() -> None:
    """A telemetry message offered as a registry entry is refused."""
    world = World()
    world.enroll("pack-1", "pack")
    data = world.send("pack-1", pack_batch(T0, [pack_sample()]))
    with pytest.raises(RegistryEntryError, match="is telemetry, not a registry entry"):
        read_registry_entry(data, index=1)
    with pytest.raises(RegistryEntryError, match="registry entry at leaf 2: message is empty"):
        read_registry_entry(b"", index=2)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"type": "revoke", "dev": "d", "t": 0}], "revoke of 'd' at leaf 0: 'd' is not enrolled"),
        (
            [{"type": "enroll", "dev": "d", "t": 0, "kind": "pack", "key": bytes(32)}] * 2,
            "second enroll of 'd' at leaf 1: an id is enrolled once, ever",
        ),
    ],
)
def test_entries_out_of_place_are_refused(entries: list[dict[str, object]], message: str) -> None:
    """A revocation without enrolment, or a double enrolment, is refused."""
    with pytest.raises(RegistryEntryError, match=message):
        build_key_history(((i, entry(e)) for i, e in enumerate(entries)), operator_key=OPERATOR)


def test_rotation_to_an_earlier_seq_is_refused() -> None:
    """A rotation cannot start before the current key's first seq."""
    device_seed = seed_of("d")
    first = sign_registry_entry({"type": "rotate", "dev": "d", "t": 0,
                                 "key": public_key_from_seed(seed_of("d2")), "seq": 5},
                                seed=device_seed, kid="d")  # fmt: skip
    second = sign_registry_entry({"type": "rotate", "dev": "d", "t": 0, "key": bytes(32),
                                  "seq": 4}, seed=seed_of("d2"), kid="d")  # fmt: skip
    enrol = entry({"type": "enroll", "dev": "d", "t": 0, "kind": "bus",
                   "key": public_key_from_seed(device_seed)})  # fmt: skip
    with pytest.raises(RegistryEntryError, match="seq 4 is before the current key's first seq 5"):
        build_key_history([(0, enrol), (1, first), (2, second)], operator_key=OPERATOR)


def test_no_key_for_unknown_device() -> None:
    """A device without registry entries has no valid key."""
    with pytest.raises(KeyNotValidError, match=r"message at leaf 9 \(d seq 0\): no registry"):
        key_for_message((), device="d", index=9, seq=0)
