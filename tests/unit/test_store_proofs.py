"""Batched inclusion proofs of the gateway store equal the single proofs and verify."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from gateway.store import LogCorruptError, SqliteStore
from gateway.store import reads as store_reads
from gateway.store.merkle_nodes import SqliteLog, node_key
from ledger.merkle import MemoryLog, NodeId, OutOfRangeError, hash_leaf, verify_inclusion
from tests.support.strategies import MAX_TREE_SIZE, inclusion_batches

LEAVES = [f"leaf {i}".encode() for i in range(MAX_TREE_SIZE)]


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated store whose Merkle log holds :data:`LEAVES`."""
    path = tmp_path_factory.mktemp("store") / "gateway.db"

    async def create() -> None:
        async with await SqliteStore.open(path):
            pass

    asyncio.run(create())
    log = SqliteLog(path)
    log.append(LEAVES)
    log.close()
    return path


async def _batch(
    path: Path, indexes: list[int], size: int
) -> tuple[list[list[bytes]], list[list[bytes]]]:
    async with await SqliteStore.open(path) as store:
        batch = await store.inclusion_proofs(indexes, size)
        single = [await store.inclusion_proof(i, size) for i in indexes]
    return batch, single


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=inclusion_batches())
def test_batch_equals_single_proofs(store_path: Path, case: tuple[int, list[int]]) -> None:
    """Every batched proof equals the single proof of its leaf, in the order asked, and verifies."""
    size, indexes = case
    batch, single = asyncio.run(_batch(store_path, indexes, size))
    assert batch == single
    reference = MemoryLog()
    reference.append(LEAVES[:size])
    for index, proof in zip(indexes, batch, strict=True):
        verify_inclusion(leaf_hash=hash_leaf(LEAVES[index]), index=index, size=size, proof=proof,
                         root=reference.root())  # fmt: skip


def test_batch_split_over_several_queries(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch needing more nodes than one query takes is read in several queries, same result."""
    monkeypatch.setattr(store_reads, "NODES_PER_QUERY", 5)
    size = MAX_TREE_SIZE - 3
    batch, single = asyncio.run(_batch(store_path, list(range(size)), size))
    assert batch == single


def test_empty_batch_is_empty(store_path: Path) -> None:
    """No leaves, no proofs."""
    assert asyncio.run(_batch(store_path, [], 5)) == ([], [])


def test_batch_refuses_leaf_beyond_size(store_path: Path) -> None:
    """A leaf outside the tree is refused before anything is read."""
    with pytest.raises(OutOfRangeError, match="index 9 is beyond size 9"):
        asyncio.run(_batch(store_path, [1, 9], 9))


def test_batch_refuses_size_beyond_log(store_path: Path) -> None:
    """A tree larger than the log is refused."""
    size = MAX_TREE_SIZE + 1
    with pytest.raises(
        OutOfRangeError, match=f"size {size} is beyond the log size {MAX_TREE_SIZE}"
    ):
        asyncio.run(_batch(store_path, [0], size))


async def _proof_and_root(
    path: Path, index: int, size: int
) -> tuple[list[bytes], bytes, list[bytes], bytes]:
    async with await SqliteStore.open(path) as store:
        proof, root = await store.inclusion_proof_and_root(index, size)
        return proof, root, await store.inclusion_proof(index, size), await store.root_at(size)


@pytest.mark.parametrize(("index", "size"), [(0, 1), (5, 6), (12, 64), (33, MAX_TREE_SIZE)])
def test_proof_and_root_equal_separate_reads(store_path: Path, index: int, size: int) -> None:
    """The proof and root read together equal the separate reads."""
    proof, root, single, single_root = asyncio.run(_proof_and_root(store_path, index, size))
    assert (proof, root) == (single, single_root)


def test_proof_and_root_refuse_bad_requests(store_path: Path) -> None:
    """A leaf beyond the tree or a tree beyond the log is refused."""
    with pytest.raises(OutOfRangeError, match="index 4 is beyond size 4"):
        asyncio.run(_proof_and_root(store_path, 4, 4))
    with pytest.raises(OutOfRangeError, match="is beyond the log size"):
        asyncio.run(_proof_and_root(store_path, 0, MAX_TREE_SIZE + 1))


def test_missing_node_is_corruption(tmp_path: Path, store_path: Path) -> None:
    """A stored node the batch needs but the table lacks is reported as corruption."""
    path = tmp_path / "gateway.db"
    with sqlite3.connect(store_path) as source, sqlite3.connect(path) as copy:
        source.backup(copy)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM merkle_nodes WHERE node_key = ?", (node_key(NodeId(0, 1)),))
    with pytest.raises(
        LogCorruptError, match=r"missing stored nodes \[NodeId\(level=0, index=1\)\]"
    ):
        asyncio.run(_batch(path, [0, 5], 8))
    with pytest.raises(LogCorruptError, match="missing stored nodes"):
        asyncio.run(_proof_and_root(path, 0, 8))
