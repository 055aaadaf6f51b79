"""The gateway refuses registry changes that break the rules; a store forced by hand does not
get them past the verifier's rule function either."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from gateway.registry import DeviceSpec, Registry, RegistryError
from gateway.store import RegistryAction, RegistryChange, RegistryConflictError, SqliteStore
from gateway.store.memory import open_memory_store
from ledger.keys import SigningKey, public_key_from_seed
from ledger.message import sign_registry_entry
from ledger.registry import RegistryRuleError, RegistrySignatureError, check_registry
from tests.support.bundle_world import seed_of
from tests.support.gateway_devices import T0_MS
from tests.support.registry_log import birth

END = 2**63 - 1
OPERATOR = SigningKey(
    name="operator", seed=seed_of("operator"), public_key=public_key_from_seed(seed_of("operator"))
)


def spec(
    device: str, *, key_seed: bytes | None = None, certificate: bytes | None = None
) -> DeviceSpec:
    """A pack to enrol, its key from ``seed_of(device)`` unless given."""
    key = public_key_from_seed(key_seed or seed_of(device))
    return DeviceSpec(device_id=device, kind="pack", fleet="f", public_key=key, birth=certificate)


@pytest_asyncio.fixture
async def store() -> AsyncIterator[SqliteStore]:
    """An empty in-memory store."""
    opened = await open_memory_store()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def registry(store: SqliteStore) -> Registry:
    """The operator's registry on the store."""
    return Registry(store=store, operator=OPERATOR, clock_ms=lambda: T0_MS)


async def force(store: SqliteStore, device: str, entry: bytes) -> None:
    """Write a registry leaf straight into the store's tables, past every check."""
    size = (await store.log_head()).size
    await store._db.execute(
        "INSERT INTO leaves (leaf_index, kind, device, received_at_ms, message_hash, cose) "
        "VALUES (?, 'registry', ?, 0, ?, ?)",
        (size, device, hashlib.sha256(entry).digest(), entry),
    )
    await store._db.execute(
        "INSERT INTO registry_events (leaf_index, action, device, recorded_at_ms) "
        "VALUES (?, 'enroll', ?, 0)",
        (size, device),
    )
    await store._db.commit()


async def logged(store: SqliteStore, device: str) -> list[tuple[int, bytes]]:
    """The device's registry entries as the store serves them to the bundle builder."""
    return [(leaf.leaf_index, leaf.cose) for leaf in
            await store.registry_leaves([device], leaf_below=END)]  # fmt: skip


@pytest.mark.asyncio
@pytest.mark.parametrize("revoke_first", [False, True])
async def test_second_key_for_a_genuine_id(
    store: SqliteStore, registry: Registry, *, revoke_first: bool
) -> None:
    """The gateway refuses it; forced into the store, the rule function refuses it."""
    await registry.enroll([spec("pack-0001")])
    if revoke_first:
        await registry.revoke("pack-0001")
    attacker = spec("pack-0001", key_seed=seed_of("attacker"))
    with pytest.raises(RegistryConflictError, match="second enroll of 'pack-0001'"):
        await registry.enroll([attacker])
    forged = sign_registry_entry(
        {"type": "enroll", "dev": "pack-0001", "t": T0_MS, "kind": "pack", "fleet": "f",
         "key": attacker.public_key}, seed=OPERATOR.seed, kid=OPERATOR.name,
    )  # fmt: skip
    await force(store, "pack-0001", forged)
    entries = await logged(store, "pack-0001")
    assert len(entries) == (3 if revoke_first else 2)
    with pytest.raises(RegistryRuleError, match="an id is enrolled once, ever"):
        check_registry(entries, operator_key=OPERATOR.public_key)


@pytest.mark.asyncio
async def test_rotation_signed_by_the_operator(store: SqliteStore, registry: Registry) -> None:
    """Refused by the registry front door and by the store's rule check behind it."""
    await registry.enroll([spec("pack-1")])
    rotation = sign_registry_entry(
        {"type": "rotate", "dev": "pack-1", "t": T0_MS, "key": bytes(32), "seq": 0},
        seed=OPERATOR.seed, kid="pack-1",
    )  # fmt: skip
    with pytest.raises(RegistryError, match="not signed by its current key"):
        await registry.submit_rotation(rotation)
    change = RegistryChange(action=RegistryAction.ROTATE, device_id="pack-1", cose=rotation,
                            recorded_at_ms=T0_MS, public_key=bytes(32), seq=0)  # fmt: skip
    with pytest.raises(RegistryConflictError, match="not signed by the device's current key"):
        await store.apply_registry([change], operator_key=OPERATOR.public_key)
    assert (await store.log_head()).size == 1


@pytest.mark.asyncio
async def test_nothing_after_a_revocation(store: SqliteStore, registry: Registry) -> None:
    """No rotation (even by the device's own key) and no second revocation."""
    await registry.enroll([spec("pack-1")])
    await registry.revoke("pack-1")
    new_key = public_key_from_seed(seed_of("k2"))
    with pytest.raises(RegistryConflictError, match="rotate of 'pack-1' at leaf 2: 'pack-1' was"):
        await registry.rotate("pack-1", old_seed=seed_of("pack-1"), new_public_key=new_key, seq=9)
    with pytest.raises(RegistryConflictError, match="revoked at leaf 1, and a revocation is final"):
        await registry.revoke("pack-1")


@pytest.mark.asyncio
async def test_enrolments_signed_by_another_operator_key(store: SqliteStore) -> None:
    """The store checks signers against the operator key it is given."""
    impostor = SigningKey(
        name="op", seed=seed_of("x"), public_key=public_key_from_seed(seed_of("x"))
    )
    registry = Registry(store=store, operator=impostor, clock_ms=lambda: T0_MS)
    entry = sign_registry_entry({"type": "enroll", "dev": "p", "t": 0, "kind": "pack", "fleet": "f",
                                 "key": bytes(32)}, seed=impostor.seed, kid="op")  # fmt: skip
    change = RegistryChange(action=RegistryAction.ENROLL, device_id="p", cose=entry,
                            recorded_at_ms=0, kind="pack", fleet="f",
                            public_key=bytes(32))  # fmt: skip
    with pytest.raises(RegistryConflictError, match="not signed by the operator key"):
        await store.apply_registry([change], operator_key=OPERATOR.public_key)
    assert await registry.enroll([spec("p")]) == [0]


@pytest.mark.asyncio
async def test_certified_enrolment_and_mismatch(store: SqliteStore, registry: Registry) -> None:
    """A certificate is stored in the enrolment; one for another key is refused with why."""
    await registry.enroll([spec("pack-1", certificate=birth("pack-1"))])
    other = birth("pack-2", key_seed=seed_of("someone else"))
    with pytest.raises(RegistryConflictError, match="is for public key"):
        await registry.enroll([spec("pack-2", certificate=other)])
    history = check_registry(await logged(store, "pack-1"), operator_key=OPERATOR.public_key)
    assert history.devices["pack-1"].birth == birth("pack-1")


@pytest.mark.asyncio
async def test_replace_to_a_new_enrolled_device(store: SqliteStore, registry: Registry) -> None:
    """The honest path: revoke, enrol the successor, replace; the verifier's rules agree."""
    await registry.enroll([spec("pack-1"), spec("pack-2")])
    with pytest.raises(RegistryError, match="'pack-3' is not enrolled"):
        await registry.replace("pack-1", new_device_id="pack-3")
    await registry.revoke("pack-1")
    link = await registry.replace("pack-1", new_device_id="pack-2")
    entries = sorted({*await logged(store, "pack-1"), *await logged(store, "pack-2")})
    history = check_registry(entries, operator_key=OPERATOR.public_key)
    assert history.devices["pack-2"].replaces == "pack-1"
    assert history.devices["pack-1"].replaced_index == link
    check_registry(await logged(store, "pack-2"), operator_key=OPERATOR.public_key,
                   scope=["pack-2"])  # fmt: skip
    with pytest.raises(RegistrySignatureError):
        check_registry(entries, operator_key=public_key_from_seed(seed_of("x")))
