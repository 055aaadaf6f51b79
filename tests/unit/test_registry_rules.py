"""Registry rules (v2): what an operator holding the operator key still cannot log."""

from __future__ import annotations

import pytest

from ledger.keys import public_key_from_seed
from ledger.registry import (
    KeyNotValidError,
    RegistryEntryError,
    RegistryRuleError,
    RegistrySignatureError,
    check_registry,
    key_for_message,
)
from tests.support.bundle_world import seed_of
from tests.support.registry_log import OPERATOR_KEY, OPERATOR_SEED, RegistryLog


def check(log: RegistryLog, scope: list[str] | None = None) -> None:
    """Run the rule function over the log's entries."""
    check_registry(log.entries, operator_key=OPERATOR_KEY, scope=scope)


class TestHonestHistories:
    """Rotation by the device, revocation and replacement to a new enrolled device pass."""

    def test_rotation_by_the_device_key(self) -> None:
        """The current key signs the rotation; the next rotation is signed by the new key."""
        log = RegistryLog()
        log.enroll("pack-1")
        log.skip(3)
        log.rotate("pack-1", signer=seed_of("pack-1"), new_seed=seed_of("k2"), seq=3)
        log.rotate("pack-1", signer=seed_of("k2"), new_seed=seed_of("k3"), seq=7)
        history = check_registry(log.entries, operator_key=OPERATOR_KEY)
        keys = history.devices["pack-1"].keys
        assert [(k.from_seq, k.until_seq) for k in keys] == [(0, 3), (3, 7), (7, None)]
        assert keys[-1].key == public_key_from_seed(seed_of("k3"))

    def test_revocation_then_replacement(self) -> None:
        """A revoked pack is linked to its enrolled successor of the same kind."""
        log = RegistryLog()
        log.enroll("pack-1")
        log.skip(2)
        revoked = log.revoke("pack-1")
        log.enroll("pack-2")
        link = log.replace("pack-1", "pack-2")
        history = check_registry(log.entries, operator_key=OPERATOR_KEY)
        old, new = history.devices["pack-1"], history.devices["pack-2"]
        assert (old.revoked_index, old.replaced_by, old.replaced_index) == (revoked, "pack-2", link)
        assert (new.replaces, new.replaces_index, new.revoked_index) == ("pack-1", link, None)

    def test_replacement_chain(self) -> None:
        """A successor may itself be revoked and replaced later."""
        log = RegistryLog()
        for device in ("pack-1", "pack-2", "pack-3"):
            log.enroll(device)
        log.revoke("pack-1")
        log.replace("pack-1", "pack-2")
        log.revoke("pack-2")
        log.replace("pack-2", "pack-3")
        devices = check_registry(log.entries, operator_key=OPERATOR_KEY).devices
        links = [(d.replaces, d.device, d.replaced_by) for d in devices.values()]
        assert links == [(None, "pack-1", "pack-2"), ("pack-1", "pack-2", "pack-3"),
                         ("pack-2", "pack-3", None)]  # fmt: skip

    def test_replace_checked_from_one_side(self) -> None:
        """With only the successor's entries, the replace is checked on its side alone."""
        log = RegistryLog()
        log.enroll("pack-2")
        log.add({"type": "replace", "dev": "pack-1", "new": "pack-2", "kind": "pack", "t": 0})
        check(log, scope=["pack-2"])
        with pytest.raises(RegistryRuleError, match="'pack-1' is not enrolled before it"):
            check(log)


class TestForgedKeys:
    """The operator cannot give a genuine id a key of its own."""

    def test_second_enrolment(self) -> None:
        """An id enrolled again (the forged-history attack without revocation) is refused."""
        log = RegistryLog()
        log.enroll("pack-0001")
        log.skip(811)
        log.enroll("pack-0001", key_seed=seed_of("attacker"))
        with pytest.raises(
            RegistryRuleError,
            match=r"^second enroll of 'pack-0001' at leaf 812: an id is enrolled once, ever",
        ):
            check(log)

    def test_second_enrolment_after_revocation(self) -> None:
        """Revoking first does not free the id."""
        log = RegistryLog()
        log.enroll("pack-1")
        log.revoke("pack-1")
        log.enroll("pack-1", key_seed=seed_of("attacker"))
        with pytest.raises(RegistryRuleError, match="second enroll of 'pack-1' at leaf 2"):
            check(log)

    def test_rotation_signed_by_the_operator(self) -> None:
        """The operator key cannot rotate a device's key."""
        log = RegistryLog()
        log.enroll("pack-1")
        log.rotate("pack-1", signer=OPERATOR_SEED, new_seed=seed_of("attacker"), seq=0)
        with pytest.raises(
            RegistrySignatureError,
            match="rotate entry of 'pack-1' at leaf 1 is not signed by the device's current key",
        ):
            check(log)

    def test_rotation_signed_by_an_old_key(self) -> None:
        """After a rotation, the previous key cannot rotate again."""
        log = RegistryLog()
        log.enroll("pack-1")
        log.rotate("pack-1", signer=seed_of("pack-1"), new_seed=seed_of("k2"), seq=1)
        log.rotate("pack-1", signer=seed_of("pack-1"), new_seed=seed_of("attacker"), seq=2)
        with pytest.raises(RegistrySignatureError, match="at leaf 2 is not signed"):
            check(log)

    def test_enrolment_signed_by_another_key(self) -> None:
        """An enrolment not signed by the operator key is refused."""
        log = RegistryLog()
        log.add({"type": "enroll", "dev": "p", "t": 0, "kind": "pack", "key": bytes(32)},
                seed=seed_of("intruder"))  # fmt: skip
        with pytest.raises(RegistrySignatureError, match="not signed by the operator key"):
            check(log)

    def test_an_index_given_twice(self) -> None:
        """The same leaf index offered twice is refused, not applied twice."""
        log = RegistryLog()
        log.enroll("pack-1")
        log.entries.append(log.entries[0])
        with pytest.raises(RegistryRuleError, match="leaf 0 is given twice"):
            check(log)


class TestRevocationIsFinal:
    """Nothing of a device is valid after its revocation."""

    @pytest.mark.parametrize("after", ["rotate", "revoke"])
    def test_registry_change_after_revocation(self, after: str) -> None:
        """A rotation or a second revocation after the revocation is refused."""
        log = RegistryLog()
        log.enroll("pack-1")
        log.revoke("pack-1")
        if after == "rotate":
            log.rotate("pack-1", signer=seed_of("pack-1"), new_seed=seed_of("k2"), seq=5)
        else:
            log.revoke("pack-1")
        with pytest.raises(
            RegistryRuleError,
            match=f"{after} of 'pack-1' at leaf 2: 'pack-1' was revoked at leaf 1, and a "
            "revocation is final",
        ):
            check(log)

    def test_telemetry_logged_after_revocation(self) -> None:
        """A message logged after the revocation has no valid key, whatever its seq."""
        log = RegistryLog()
        log.enroll("pack-1")
        log.skip()
        log.revoke("pack-1")
        spans = check_registry(log.entries, operator_key=OPERATOR_KEY).devices["pack-1"].keys
        assert key_for_message(spans, device="pack-1", index=1, seq=0)
        with pytest.raises(KeyNotValidError, match="revoked at leaf 2, before the message"):
            key_for_message(spans, device="pack-1", index=3, seq=1)


class TestReplaceAbuse:
    """Every way of misusing ``replace`` is refused with its reason."""

    def test_replacing_a_live_device(self) -> None:
        """A device that is not revoked cannot be replaced."""
        log = RegistryLog()
        log.enroll("pack-1")
        log.enroll("pack-2")
        log.replace("pack-1", "pack-2")
        with pytest.raises(RegistryRuleError, match="'pack-1' is live; only a revoked device"):
            check(log)

    def test_kind_change(self) -> None:
        """A pack cannot be replaced by a bus (the entry's kind is checked on both sides)."""
        log = RegistryLog()
        log.enroll("pack-1")
        log.revoke("pack-1")
        log.enroll("bus-1", kind="bus")
        log.replace("pack-1", "bus-1", kind="bus")
        with pytest.raises(RegistryRuleError, match="for a bus, 'pack-1' is a pack"):
            check(log)
        with pytest.raises(RegistryRuleError, match="for a bus, 'pack-1' is a pack"):
            check(log, scope=["pack-1"])

    def test_kind_change_seen_from_the_successor(self) -> None:
        """With only the successor's entries, a kind in the entry that differs is refused."""
        log = RegistryLog()
        log.enroll("bus-1", kind="bus")
        log.replace("pack-1", "bus-1", kind="pack")
        with pytest.raises(RegistryRuleError, match="for a pack, 'bus-1' is a bus"):
            check(log, scope=["bus-1"])

    def test_second_replace_of_one_id(self) -> None:
        """A revoked id is replaced once."""
        log = RegistryLog()
        for device in ("pack-1", "pack-2", "pack-3"):
            log.enroll(device)
        log.revoke("pack-1")
        log.replace("pack-1", "pack-2")
        log.replace("pack-1", "pack-3")
        with pytest.raises(RegistryRuleError, match="already replaced by 'pack-2' at leaf 4"):
            check(log)

    def test_one_successor_for_two_devices(self) -> None:
        """An id succeeds one device at most."""
        log = RegistryLog()
        for device in ("pack-1", "pack-2", "pack-3"):
            log.enroll(device)
        log.revoke("pack-1")
        log.revoke("pack-2")
        log.replace("pack-1", "pack-3")
        log.replace("pack-2", "pack-3")
        with pytest.raises(RegistryRuleError, match="'pack-3' already replaces 'pack-1'"):
            check(log)

    def test_replace_to_an_unenrolled_id(self) -> None:
        """The successor must be enrolled before the replace."""
        log = RegistryLog()
        log.enroll("pack-1")
        log.revoke("pack-1")
        log.replace("pack-1", "pack-2")
        log.enroll("pack-2")
        with pytest.raises(RegistryRuleError, match="'pack-2' is not enrolled before it"):
            check(log)

    def test_replace_to_a_revoked_id(self) -> None:
        """The successor must be live."""
        log = RegistryLog()
        log.enroll("pack-1")
        log.enroll("pack-2")
        log.revoke("pack-1")
        log.revoke("pack-2")
        log.replace("pack-1", "pack-2")
        with pytest.raises(RegistryRuleError, match="'pack-2' was revoked at leaf 3"):
            check(log)

    def test_replace_by_itself(self) -> None:
        """``dev`` and ``new`` must differ."""
        log = RegistryLog()
        log.enroll("pack-1")
        log.revoke("pack-1")
        log.replace("pack-1", "pack-1")
        with pytest.raises(RegistryRuleError, match="cannot replace itself"):
            check(log)

    def test_replace_not_signed_by_the_operator(self) -> None:
        """A replace signed by another key is refused."""
        log = RegistryLog()
        log.enroll("pack-1")
        log.enroll("pack-2")
        log.revoke("pack-1")
        log.add({"type": "replace", "dev": "pack-1", "new": "pack-2", "kind": "pack", "t": 0},
                seed=seed_of("pack-1"), kid="pack-1")  # fmt: skip
        with pytest.raises(RegistrySignatureError, match="replace entry of 'pack-1' at leaf 3"):
            check(log)

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"dev": "a", "kind": "pack"}, "field 'new' must be str"),
            ({"dev": "a", "new": "", "kind": "pack"}, "field 'new' is empty"),
            ({"dev": "a", "new": "b"}, "field 'kind' must be str"),
            ({"dev": "a", "new": "b", "kind": "tram"}, "kind 'tram' is not one of"),
            ({"dev": "", "new": "b", "kind": "pack"}, "field 'dev' is empty"),
        ],
    )
    def test_malformed_replace(self, fields: dict[str, object], message: str) -> None:
        """A replace without a successor id or a valid kind is malformed."""
        log = RegistryLog()
        log.add({"type": "replace", "t": 0, **fields})
        with pytest.raises(RegistryEntryError, match=message):
            check(log)
