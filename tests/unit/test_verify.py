"""Offline bundle verification: the happy path and one corruption per class of bytes."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings

from ledger.anchors.checkers import LocalAnchorChecker
from ledger.bundle import DeviceKeys, parse_bundle
from ledger.keys import public_key_from_seed
from ledger.note import verifier_key
from ledger.verify import (
    BundleAnchorError,
    BundleCheckpointError,
    BundleRegistryError,
    ChainLinkError,
    ChainOrderError,
    ConsistencyProofError,
    DeviceKeysError,
    InclusionProofError,
    MessageSignatureError,
    PeriodBoundaryError,
    check_messages,
    verify_bundle,
)
from tests.support.bundle_world import (
    ORIGIN,
    T0,
    World,
    bus_batch,
    bus_sample,
    flip,
    pack_batch,
    pack_sample,
    pack_world,
    seed_of,
    with_anchor,
    with_message,
)
from tests.support.strategies import dropped_positions


def test_valid_bundle_verifies() -> None:
    """A genuine bundle verifies, is complete, and the anchor is checked against the export."""
    world, bundle = pack_world()
    anchors = LocalAnchorChecker(gateway_verifier_key=world.gateway_key)
    report = verify_bundle(bundle, gateway_verifier_key=world.gateway_key, anchors=anchors)
    assert report.messages == 4
    assert report.checkpoint_size == 7
    assert report.complete
    (chain,) = report.chains
    assert (chain.first_seq, chain.last_seq, chain.received, chain.expected) == (1, 4, 4, 4)
    assert report.anchor.source == "embedded export"


def test_independent_anchor_export_is_preferred() -> None:
    """An anchor export given by the verifier is what the anchor is checked against."""
    world, bundle = pack_world()
    export = json.dumps(world.export())
    anchors = LocalAnchorChecker(gateway_verifier_key=world.gateway_key, export=export)
    report = verify_bundle(bundle, gateway_verifier_key=world.gateway_key, anchors=anchors)
    assert report.anchor.source == "ledger export"


def test_anchor_without_ledger_is_reported_unchecked() -> None:
    """Without a ledger and no embedded export the report says the anchor was not checked."""
    world, bundle = pack_world()
    bundle = with_anchor(bundle, local_export=None)
    report = verify_bundle(bundle, gateway_verifier_key=world.gateway_key)
    assert report.anchor.source == "not checked"


def test_later_anchor_needs_consistency_proof() -> None:
    """An anchor of a larger tree verifies through the consistency proof."""
    world = World()
    world.enroll("pack-1", "pack")
    for k in range(4):
        world.send("pack-1", pack_batch(T0 + k * 10_000, [pack_sample()]))
    size = world.log.size
    world.send("pack-1", pack_batch(T0 + 90_000, [pack_sample()]))
    receipt = world.anchor()
    bundle = world.bundle(
        asset="pack-1", kind="pack", from_ms=T0, to_ms=T0 + 40_000, messages=range(1, 5),
        size=size, receipt=receipt,
    )  # fmt: skip
    assert bundle.anchor.consistency
    report = verify_bundle(bundle, gateway_verifier_key=world.gateway_key)
    assert report.checkpoint_size == size
    assert report.anchor.tree_size == size + 1
    assert not report.complete  # no message after the period in the checkpoint's tree
    bad = with_anchor(bundle, consistency=(flip(bundle.anchor.consistency[0], 0),))
    with pytest.raises(ConsistencyProofError, match=f"checkpoint size {size} to anchored size"):
        verify_bundle(bad, gateway_verifier_key=world.gateway_key)


def test_flipped_sample_value_breaks_the_signature() -> None:
    """A changed sample byte inside a message is caught as a bad signature of that message."""
    world, bundle = pack_world()
    leaf = bundle.chains[0].messages[1]
    at = leaf.data.index(b"\x61u\xd8\x45")  # column "u": uint16 LE typed array (tag 69)
    bad = with_message(bundle, 1, replace(leaf, data=flip(leaf.data, at + 5)))  # first voltage
    # The changed bytes no longer match the leaf hash either; check signatures on their own:
    with pytest.raises(MessageSignatureError, match=r"leaf 3 \(pack-1 seq 2\).*does not verify"):
        check_messages(bad)
    with pytest.raises(InclusionProofError, match=r"leaf 3 \(pack-1 seq 2\): inclusion proof"):
        verify_bundle(bad, gateway_verifier_key=world.gateway_key)


def test_flipped_signature_is_caught() -> None:
    """A flipped bit in a message's signature is named."""
    _, bundle = pack_world()
    leaf = bundle.chains[0].messages[0]
    bad = with_message(bundle, 0, replace(leaf, data=flip(leaf.data, len(leaf.data) - 1)))
    with pytest.raises(MessageSignatureError, match=r"leaf 2 \(pack-1 seq 1\).*signature"):
        check_messages(bad)


def test_flipped_proof_hash_is_caught() -> None:
    """A flipped bit in an inclusion proof is named with the message."""
    world, bundle = pack_world()
    leaf = bundle.chains[0].messages[2]
    proof = (flip(leaf.proof[0], 5), *leaf.proof[1:])
    bad = with_message(bundle, 2, replace(leaf, proof=proof))
    with pytest.raises(
        InclusionProofError, match=r"message at leaf 4 \(pack-1 seq 3\): inclusion proof does not"
    ):
        verify_bundle(bad, gateway_verifier_key=world.gateway_key)


def test_wrong_leaf_index_is_caught() -> None:
    """A message claimed at another leaf index fails its inclusion proof."""
    world, bundle = pack_world()
    leaf = bundle.chains[0].messages[0]
    bad = with_message(bundle, 0, replace(leaf, index=leaf.index + 1))
    with pytest.raises(InclusionProofError, match="inclusion proof does not match"):
        verify_bundle(bad, gateway_verifier_key=world.gateway_key)


@pytest.mark.parametrize("line", [0, 1, 2])
def test_changed_checkpoint_line_is_caught(line: int) -> None:
    """Changing the origin, size or root line of the checkpoint breaks its signature."""
    world, bundle = pack_world()
    lines = bundle.checkpoint.split("\n")
    lines[line] = {0: ORIGIN + "x", 1: "8", 2: base64.b64encode(bytes(32)).decode()}[line]
    bad = replace(bundle, checkpoint="\n".join(lines))
    with pytest.raises(BundleCheckpointError, match="checkpoint: "):
        verify_bundle(bad, gateway_verifier_key=world.gateway_key)


def test_untrusted_gateway_key_is_refused() -> None:
    """A checkpoint verified against another gateway key is refused."""
    _, bundle = pack_world()
    other = verifier_key(ORIGIN, public_key_from_seed(seed_of("someone else")))
    with pytest.raises(BundleCheckpointError, match="checkpoint: "):
        verify_bundle(bundle, gateway_verifier_key=other)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("sequence", 9, "anchor of size 7 .local.: receipt sequence is 9"),
        ("entry_hash", "00" * 32, "receipt entry_hash is"),
        ("anchored_at_ms", 1, "receipt anchored_at_ms is 1"),
    ],
)
def test_changed_anchor_receipt_detail_is_caught(field: str, value: Any, message: str) -> None:
    """A receipt detail that differs from the anchor table is named."""
    world, bundle = pack_world()
    receipt = bundle.anchor.receipt
    details = {**receipt.details, field: value}
    bad = with_anchor(bundle, receipt=replace(receipt, details=details))
    anchors = LocalAnchorChecker(gateway_verifier_key=world.gateway_key)
    with pytest.raises(BundleAnchorError, match=message):
        verify_bundle(bad, gateway_verifier_key=world.gateway_key, anchors=anchors)


def test_anchor_for_another_log_is_caught() -> None:
    """A receipt for another log id is refused."""
    world, bundle = pack_world()
    receipt = replace(bundle.anchor.receipt, log_id=bytes(32))
    with pytest.raises(BundleAnchorError, match="receipt is for log id 0000"):
        verify_bundle(with_anchor(bundle, receipt=receipt), gateway_verifier_key=world.gateway_key)


def test_anchor_root_disagreeing_with_receipt_is_caught() -> None:
    """The anchored root in the bundle must be the receipt's."""
    world, bundle = pack_world()
    bad = with_anchor(bundle, root=bytes(32))
    with pytest.raises(BundleAnchorError, match="the bundle's anchored tree is size 7 root 0000"):
        verify_bundle(bad, gateway_verifier_key=world.gateway_key)


def test_anchor_older_than_checkpoint_is_caught() -> None:
    """An anchor of a smaller tree does not cover the checkpoint."""
    world, bundle = pack_world()
    early = world.anchor(3)
    bad = with_anchor(bundle, receipt=early, size=3, root=early.root, consistency=())
    with pytest.raises(BundleAnchorError, match="smaller than the checkpoint size 7"):
        verify_bundle(bad, gateway_verifier_key=world.gateway_key)


def test_forged_anchor_table_is_caught() -> None:
    """An anchor export whose entry was re-signed by another key is refused."""
    world, bundle = pack_world()
    export = world.export()
    export["entries"][0]["signature"] = "00" * 64
    anchors = LocalAnchorChecker(gateway_verifier_key=world.gateway_key, export=export)
    with pytest.raises(BundleAnchorError, match="signature does not verify under the gateway key"):
        verify_bundle(bundle, gateway_verifier_key=world.gateway_key, anchors=anchors)


def test_dropped_message_is_reported_as_a_gap() -> None:
    """A message left out of the bundle is reported as a missing seq range, not hidden."""
    world, bundle = pack_world()
    (chain,) = bundle.chains
    dropped = replace(chain, messages=chain.messages[:1] + chain.messages[2:])
    report = verify_bundle(
        replace(bundle, chains=(dropped,)), gateway_verifier_key=world.gateway_key
    )
    (result,) = report.chains
    assert [(g.first, g.last) for g in result.gaps] == [(2, 2)]
    assert (result.received, result.expected) == (3, 4)
    assert not report.complete


def test_dropped_boundary_leaves_the_end_unproven() -> None:
    """Without the message after the period, the end of the period is not proven."""
    world, bundle = pack_world()
    (chain,) = bundle.chains
    report = verify_bundle(
        replace(bundle, chains=(replace(chain, after=None),)),
        gateway_verifier_key=world.gateway_key,
    )
    assert not report.chains[0].end_proven
    assert report.chains[0].start_proven


def test_reordered_messages_are_caught() -> None:
    """Swapping two messages of a chain is named as reordering."""
    world, bundle = pack_world()
    (chain,) = bundle.chains
    swapped = (chain.messages[1], chain.messages[0], *chain.messages[2:])
    bad = replace(bundle, chains=(replace(chain, messages=swapped),))
    with pytest.raises(ChainOrderError, match=r"seq 1 follows seq 2 \(messages reordered"):
        verify_bundle(bad, gateway_verifier_key=world.gateway_key)


def test_duplicate_chain_is_caught() -> None:
    """One device cannot have two chains."""
    world, bundle = pack_world()
    bad = replace(bundle, chains=bundle.chains * 2)
    with pytest.raises(ChainOrderError, match="'pack-1' has two chains"):
        verify_bundle(bad, gateway_verifier_key=world.gateway_key)


def test_forked_chain_is_caught() -> None:
    """A validly signed message whose prev does not link to its predecessor is a broken link."""
    world = World()
    world.enroll("pack-1", "pack")
    world.send("pack-1", pack_batch(T0, [pack_sample()]))
    world.devices["pack-1"].prev = b"\x01" * 32  # the device signs a message off the chain
    world.send("pack-1", pack_batch(T0 + 1000, [pack_sample()]))
    bundle = world.bundle(asset="pack-1", kind="pack", from_ms=T0, to_ms=T0 + 5000, messages=[1, 2])
    with pytest.raises(ChainLinkError, match=r"leaf 2 \(pack-1 seq 1\): prev 0101.* seq 0"):
        verify_bundle(bundle, gateway_verifier_key=world.gateway_key)


def test_message_outside_its_place_in_the_period_is_caught() -> None:
    """A message presented as inside the period must have its time inside it."""
    world, bundle = pack_world()
    (chain,) = bundle.chains
    assert chain.before is not None
    moved = replace(chain, before=None, messages=(chain.before, *chain.messages))
    with pytest.raises(PeriodBoundaryError, match=r"t = 1767225590000 does not fit its place \(in"):
        verify_bundle(replace(bundle, chains=(moved,)), gateway_verifier_key=world.gateway_key)


def test_message_of_another_device_in_a_chain_is_caught() -> None:
    """A chain holds messages of its own device only."""
    world, bundle = pack_world()
    (chain,) = bundle.chains
    bad = replace(bundle, chains=(replace(chain, device="pack-2"),))
    with pytest.raises(MessageSignatureError, match="is not a telemetry message of 'pack-2'"):
        verify_bundle(bad, gateway_verifier_key=world.gateway_key)


def test_flipped_registry_entry_is_caught() -> None:
    """A changed byte in a registry entry fails its inclusion proof."""
    world, bundle = pack_world()
    (entry,) = bundle.registry
    bad = replace(bundle, registry=(replace(entry, data=flip(entry.data, len(entry.data) - 3)),))
    with pytest.raises(InclusionProofError, match=r"registry entry at leaf 0 \(enroll pack-1\)"):
        verify_bundle(bad, gateway_verifier_key=world.gateway_key)


def test_registry_entry_signed_by_another_operator_is_caught() -> None:
    """The enrolment must verify under the operator key the bundle names."""
    world, bundle = pack_world()
    bad = replace(bundle, operator_key=public_key_from_seed(seed_of("impostor")))
    with pytest.raises(
        BundleRegistryError, match="enroll entry of 'pack-1' at leaf 0 is not signed"
    ):
        verify_bundle(bad, gateway_verifier_key=world.gateway_key)


def test_missing_registry_entry_leaves_the_key_invalid() -> None:
    """Without the enrolment no key is valid for the device's messages."""
    world, bundle = pack_world()
    bad = replace(bundle, registry=(), devices=())
    with pytest.raises(MessageSignatureError, match="no registry entry gives it a key"):
        verify_bundle(bad, gateway_verifier_key=world.gateway_key)


def test_device_list_must_match_registry() -> None:
    """A device key list that is not what the registry establishes is refused."""
    world, bundle = pack_world()
    other = DeviceKeys(device="pack-1", kind="pack", keys=(bytes(32),))
    with pytest.raises(DeviceKeysError, match="the bundle lists 1 key"):
        verify_bundle(replace(bundle, devices=(other,)), gateway_verifier_key=world.gateway_key)
    wrong_kind = replace(bundle.devices[0], kind="bus")
    with pytest.raises(DeviceKeysError, match="says kind 'bus', the enrolment says 'pack'"):
        verify_bundle(
            replace(bundle, devices=(wrong_kind,)), gateway_verifier_key=world.gateway_key
        )


def test_file_level_flip_is_caught() -> None:
    """Any single changed byte of a message in the written file makes verification fail."""
    world, bundle = pack_world(messages=3)
    doc = json.loads(bundle.to_bytes())
    cose = base64.b64decode(doc["chains"][0]["messages"][0]["cose"])
    for at in range(0, len(cose), 37):
        doc["chains"][0]["messages"][0]["cose"] = base64.b64encode(flip(cose, at)).decode()
        parsed = parse_bundle(json.dumps(doc).encode())
        with pytest.raises(InclusionProofError, match="leaf 2"):
            verify_bundle(parsed, gateway_verifier_key=world.gateway_key)


def test_chain_without_boundaries_starting_at_zero_is_proven_at_start() -> None:
    """A chain whose first message is seq 0 needs no message before the period."""
    world = World()
    world.enroll("pack-1", "pack")
    world.send("pack-1", pack_batch(T0, [pack_sample()]))
    bundle = world.bundle(asset="pack-1", kind="pack", from_ms=T0, to_ms=T0 + 10, messages=[1])
    report = verify_bundle(bundle, gateway_verifier_key=world.gateway_key)
    assert report.chains[0].start_proven


_WORLD, _BUNDLE = pack_world(messages=10)


@settings(max_examples=30, deadline=None)
@given(dropped_positions(size=8))
def test_any_dropped_messages_are_exactly_the_gaps(dropped: frozenset[int]) -> None:
    """Leaving out any messages yields gaps naming exactly the missing seqs, never a pass."""
    (chain,) = _BUNDLE.chains
    kept = tuple(leaf for k, leaf in enumerate(chain.messages) if k not in dropped)
    bundle = replace(_BUNDLE, chains=(replace(chain, messages=kept),))
    report = verify_bundle(bundle, gateway_verifier_key=_WORLD.gateway_key)
    (result,) = report.chains
    missing = {seq for gap in result.gaps for seq in range(gap.first, gap.last + 1)}
    assert missing == {k + 1 for k in dropped}
    assert report.complete == (not dropped)


def test_bundle_with_bus_and_pack_chains_verifies() -> None:
    """A bundle following a pack across its host bus checks both devices' chains."""
    world = World()
    world.enroll("pack-1", "pack")
    world.enroll("bus-1", "bus")
    for k in range(3):
        world.send("pack-1", pack_batch(T0 + k * 1000, [pack_sample()]))
        world.send("bus-1", bus_batch(T0 + k * 1000, [bus_sample()]))
    messages = [i for i in range(world.log.size) if i not in world.registry_leaves]
    bundle = world.bundle(asset="pack-1", kind="pack", from_ms=T0, to_ms=T0 + 10_000,
                          messages=messages)  # fmt: skip
    report = verify_bundle(bundle, gateway_verifier_key=world.gateway_key)
    assert [c.device for c in report.chains] == ["bus-1", "pack-1"]
    assert report.messages == 6
    assert [d.kind for d in bundle.devices] == ["bus", "pack"]
