"""ledger.merkle against the public RFC 6962 / RFC 9162 vectors of transparency-dev/merkle."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ledger.errors import VerificationError
from ledger.merkle import (
    EMPTY_ROOT,
    MemoryLog,
    hash_children,
    hash_leaf,
    verify_consistency,
    verify_inclusion,
)
from tests.support.paths import DATA

VECTORS = DATA / "rfc6962"


def load(name: str) -> Any:
    """One vector file, decoded."""
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def hashes(values: list[str]) -> list[bytes]:
    """Hex strings to bytes."""
    return [bytes.fromhex(value) for value in values]


INCLUSION = load("inclusion_probes.json")["vectors"]
CONSISTENCY = load("consistency_probes.json")["vectors"]
CANONICAL = load("rfc6962_canonical_8leaf.json")


def probe_id(probe: dict[str, Any]) -> str:
    """A readable test id: the upstream file the probe came from."""
    return str(probe["source"]).removeprefix("transparency-dev/merkle:testdata/")


def check_inclusion(probe: dict[str, Any]) -> None:
    """Run the verifier on an inclusion probe."""
    verify_inclusion(
        leaf_hash=bytes.fromhex(probe["leaf_hash"]),
        index=probe["leaf_index"],
        size=probe["tree_size"],
        proof=hashes(probe["proof"]),
        root=bytes.fromhex(probe["root"]),
    )


def check_consistency(probe: dict[str, Any]) -> None:
    """Run the verifier on a consistency probe."""
    verify_consistency(
        size1=probe["size1"],
        size2=probe["size2"],
        proof=hashes(probe["proof"]),
        root1=bytes.fromhex(probe["root1"]),
        root2=bytes.fromhex(probe["root2"]),
    )


@pytest.fixture(scope="module")
def canonical_log() -> MemoryLog:
    """The canonical 8-leaf tree built by our own append code."""
    log = MemoryLog()
    log.append(hashes(CANONICAL["leaves_hex"]))
    return log


class TestHasher:
    """The hashes match the known answers of the upstream hasher tests."""

    def test_empty_root(self) -> None:
        """The empty tree's root is SHA-256 of nothing."""
        assert EMPTY_ROOT.hex() == CANONICAL["meta"]["hasher_kat"]["empty_root"]

    def test_leaf_hashes(self) -> None:
        """Leaf hashes of the empty string and of L123456 match."""
        kat = CANONICAL["meta"]["hasher_kat"]
        assert hash_leaf(b"").hex() == kat["leaf_hash_of_empty"]
        assert hash_leaf(b"L123456").hex() == kat["leaf_hash_of_ascii_L123456"]

    def test_node_hash(self) -> None:
        """The node hash of N123 and N456 matches."""
        kat = CANONICAL["meta"]["hasher_kat"]
        assert hash_children(b"N123", b"N456").hex() == kat["node_hash_of_ascii_N123_N456"]


class TestInclusionProbes:
    """Every inclusion probe: happy paths accepted, every corruption rejected."""

    def test_probe_counts(self) -> None:
        """The vector file holds both kinds of probe (the parametrized tests are not vacuous)."""
        assert sum(not probe["want_error"] for probe in INCLUSION) >= 5
        assert sum(probe["want_error"] for probe in INCLUSION) >= 80

    @pytest.mark.parametrize("probe", [p for p in INCLUSION if not p["want_error"]], ids=probe_id)
    def test_happy_path_accepted(self, probe: dict[str, Any]) -> None:
        """A correct proof verifies."""
        check_inclusion(probe)

    @pytest.mark.parametrize("probe", [p for p in INCLUSION if p["want_error"]], ids=probe_id)
    def test_corruption_rejected(self, probe: dict[str, Any]) -> None:
        """A corrupted probe is rejected with a verification error."""
        with pytest.raises(VerificationError, match=r"."):
            check_inclusion(probe)


class TestConsistencyProbes:
    """Every consistency probe: happy paths accepted, every corruption rejected."""

    def test_probe_counts(self) -> None:
        """The vector file holds both kinds of probe (the parametrized tests are not vacuous)."""
        assert sum(not probe["want_error"] for probe in CONSISTENCY) >= 5
        assert sum(probe["want_error"] for probe in CONSISTENCY) >= 80

    @pytest.mark.parametrize("probe", [p for p in CONSISTENCY if not p["want_error"]], ids=probe_id)
    def test_happy_path_accepted(self, probe: dict[str, Any]) -> None:
        """A correct proof verifies."""
        check_consistency(probe)

    @pytest.mark.parametrize("probe", [p for p in CONSISTENCY if p["want_error"]], ids=probe_id)
    def test_corruption_rejected(self, probe: dict[str, Any]) -> None:
        """A corrupted probe is rejected with a verification error."""
        with pytest.raises(VerificationError, match=r"."):
            check_consistency(probe)


class TestCanonicalTree:
    """Our construction code reproduces the canonical 8-leaf tree's roots and proofs."""

    @pytest.mark.parametrize("size", range(1, 9))
    def test_roots(self, canonical_log: MemoryLog, size: int) -> None:
        """The root of every prefix of the tree matches."""
        assert canonical_log.root_at(size).hex() == CANONICAL["roots_by_size"][str(size)]

    def test_empty_prefix_root(self, canonical_log: MemoryLog) -> None:
        """The root of the empty prefix is the empty tree's root."""
        assert canonical_log.root_at(0).hex() == CANONICAL["meta"]["empty_tree_root"]

    @pytest.mark.parametrize("key", ["published_inclusion", "derived_inclusion_all"])
    def test_inclusion_proofs(self, canonical_log: MemoryLog, key: str) -> None:
        """Every inclusion proof is the published one, and it verifies."""
        for entry in CANONICAL[key]:
            proof = canonical_log.inclusion_proof(
                index=entry["leaf_index"], size=entry["tree_size"]
            )
            assert [p.hex() for p in proof] == entry["proof"], entry
            assert canonical_log.leaf_hash(entry["leaf_index"]).hex() == entry["leaf_hash"]
            assert canonical_log.root_at(entry["tree_size"]).hex() == entry["root"]
            verify_inclusion(
                leaf_hash=bytes.fromhex(entry["leaf_hash"]),
                index=entry["leaf_index"],
                size=entry["tree_size"],
                proof=proof,
                root=bytes.fromhex(entry["root"]),
            )

    @pytest.mark.parametrize("key", ["published_consistency", "derived_consistency_all"])
    def test_consistency_proofs(self, canonical_log: MemoryLog, key: str) -> None:
        """Every consistency proof is the published one, and it verifies."""
        roots = CANONICAL["roots_by_size"]
        for entry in CANONICAL[key]:
            proof = canonical_log.consistency_proof(size1=entry["size1"], size2=entry["size2"])
            assert [p.hex() for p in proof] == entry["proof"], entry
            verify_consistency(
                size1=entry["size1"],
                size2=entry["size2"],
                proof=proof,
                root1=bytes.fromhex(roots[str(entry["size1"])]),
                root2=bytes.fromhex(roots[str(entry["size2"])]),
            )
