"""Device index entries: encoding, the registry chain, heads, proofs and the checkpoint line."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.cbor import encode
from ledger.checkpoint import Checkpoint, parse_checkpoint
from ledger.device_index import (
    REGISTRY_CHAIN_START,
    ChainHead,
    DeviceIndex,
    IndexEntry,
    IndexLineError,
    extend_registry_chain,
    index_key,
    index_line,
    index_root_from_extensions,
    verify_entry,
    verify_no_entry,
)
from ledger.merkle import hash_leaf
from ledger.merkle.errors import MerkleProofError, RootMismatchError


def _index() -> DeviceIndex:
    index = DeviceIndex()
    for n in range(20):
        index.add_registry_entry(device=f"pack-{n:04d}", kind="pack", entry=b"enrol %d" % n)
    index.add_registry_entry(device="bus-0000", kind="bus", entry=b"enrol bus")
    index.add_message(
        device="bus-0000", seq=0, leaf=21, message_hash=bytes(32), t=1_700_000_000_000
    )
    return index


def test_registry_chain_folds_leaf_hashes_in_order() -> None:
    """reg_h is the hash chain over the entries' RFC 9162 leaf hashes, in log order."""
    index = DeviceIndex()
    index.add_registry_entry(device="d", kind="bus", entry=b"one")
    index.add_registry_entry(device="d", kind=None, entry=b"two")
    entry = index.entry("d")
    assert entry is not None
    first = hashlib.sha256(REGISTRY_CHAIN_START + hash_leaf(b"one")).digest()
    assert entry.registry_hash == hashlib.sha256(first + hash_leaf(b"two")).digest()
    assert entry.registry_count == 2
    assert extend_registry_chain(first, b"two") == entry.registry_hash


def test_head_moves_only_forward() -> None:
    """A late message with a lower seq does not move the head back."""
    index = _index()
    index.add_message(device="bus-0000", seq=5, leaf=30, message_hash=b"\x05" * 32, t=5)
    index.add_message(device="bus-0000", seq=3, leaf=31, message_hash=b"\x03" * 32, t=3)
    entry = index.entry("bus-0000")
    assert entry is not None
    assert entry.head is not None
    assert (entry.head.seq, entry.head.leaf) == (5, 30)


def test_telemetry_before_enrolment_is_refused() -> None:
    """The index has no entry to move for a device that is not enrolled."""
    with pytest.raises(ValueError, match="before its enrolment"):
        DeviceIndex().add_message(device="x", seq=0, leaf=0, message_hash=bytes(32), t=0)


def test_entries_prove_against_the_root() -> None:
    """Each entry proves; a changed entry or an enrolled id claimed absent does not."""
    index = _index()
    root = index.root()
    for each in index.entries():
        verify_entry(root=root, entry=each, proof=index.proof(each.device))
    verify_no_entry(root=root, device="pack-9999", proof=index.proof("pack-9999"))
    bus = index.entry("bus-0000")
    assert bus is not None
    entry = bus
    older = IndexEntry(
        device=entry.device,
        kind=entry.kind,
        registry_count=entry.registry_count,
        registry_hash=entry.registry_hash,
    )
    with pytest.raises(RootMismatchError):
        verify_entry(root=root, entry=older, proof=index.proof("bus-0000"))
    relabelled = IndexEntry(
        device=entry.device,
        kind="pack",
        registry_count=entry.registry_count,
        registry_hash=entry.registry_hash,
        head=entry.head,
    )
    with pytest.raises(RootMismatchError):
        verify_entry(root=root, entry=relabelled, proof=index.proof("bus-0000"))
    with pytest.raises(MerkleProofError):
        verify_no_entry(root=root, device="bus-0000", proof=index.proof("pack-9999"))


def test_entry_round_trips_through_cbor() -> None:
    """from_cbor(to_cbor(e)) == e, and unknown or missing keys are refused."""
    entry = IndexEntry(
        device="pack-0001",
        kind="pack",
        registry_count=2,
        registry_hash=b"\x01" * 32,
        head=ChainHead(seq=7, leaf=99, hash=b"\x02" * 32, t=123),
    )
    assert IndexEntry.from_cbor(entry.to_cbor()) == entry
    with pytest.raises(IndexLineError, match="unknown keys"):
        IndexEntry.from_cbor({**entry.to_cbor(), "extra": 1})
    with pytest.raises(IndexLineError, match="not a map"):
        IndexEntry.from_cbor({"dev": "x"})
    with pytest.raises(IndexLineError, match="seq"):
        IndexEntry.from_cbor(
            {**entry.to_cbor(), "head": {"seq": 2**63, "leaf": 0, "h": bytes(32), "t": 0}}
        )
    with pytest.raises(IndexLineError, match="kind"):
        IndexEntry.from_cbor({**entry.to_cbor(), "kind": "tram"})


def test_index_line_in_a_checkpoint() -> None:
    """The root travels as one extension line and parses back; v1 checkpoints have none."""
    root = _index().root()
    body = Checkpoint(origin="o", size=3, root=bytes(32), extensions=(index_line(root),)).body()
    assert index_root_from_extensions(parse_checkpoint(body).extensions) == root
    assert index_root_from_extensions(()) is None
    with pytest.raises(IndexLineError, match="more than one"):
        index_root_from_extensions((index_line(root), index_line(root)))
    short = "voltproof-index/1 " + base64.b64encode(b"x" * 31).decode()
    with pytest.raises(IndexLineError, match="32 bytes"):
        index_root_from_extensions((short,))
    with pytest.raises(IndexLineError, match="not base64"):
        index_root_from_extensions(("voltproof-index/1 !!!",))


def test_keys_are_domain_separated() -> None:
    """The index key is not the bare SHA-256 of the id."""
    assert index_key("d") != hashlib.sha256(b"d").digest()


_hashes = st.binary(min_size=32, max_size=32)
_heads = st.builds(
    ChainHead,
    seq=st.integers(0, 2**63 - 1),
    leaf=st.integers(0, 2**64 - 1),
    hash=_hashes,
    t=st.integers(0, 2**64 - 1),
)
_entries = st.builds(
    IndexEntry,
    device=st.text(min_size=1, max_size=40),
    kind=st.sampled_from(["bus", "pack"]),
    registry_count=st.integers(1, 2**64 - 1),
    registry_hash=_hashes,
    head=st.none() | _heads,
)


@given(_entries)
def test_direct_encoding_equals_the_cbor_encoder(entry: IndexEntry) -> None:
    """The entry's hand-written encoding is the deterministic CBOR encoder's, byte for byte."""
    assert entry.encoding() == encode(entry.to_cbor())
    assert entry.value_hash() == hashlib.sha256(encode(entry.to_cbor())).digest()
