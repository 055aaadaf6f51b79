"""gateway.store.merkle_nodes: the SQLite log gives the memory log's proofs and stays consistent."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings

from gateway.store.merkle_nodes import (
    INSERT_NODES_SQL,
    SCHEMA,
    LogStoreError,
    SqliteLog,
    insert_nodes,
    node_key,
    node_parameters,
    select_nodes_sql,
)
from ledger.merkle import (
    LogState,
    MemoryLog,
    NodeId,
    OutOfRangeError,
    append,
    hash_leaf,
    plan_append,
    verify_consistency,
    verify_inclusion,
)
from tests.support.strategies import consistency_cases, inclusion_cases

LEAVES = [f"leaf {i}".encode() for i in range(300)]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A fresh database file."""
    return tmp_path / "log.db"


@pytest.fixture
def log(path: Path) -> Iterator[SqliteLog]:
    """A SQLite log on a file holding LEAVES, appended in uneven batches."""
    opened = SqliteLog(path)
    for start, end in [(0, 1), (1, 7), (7, 100), (100, 300)]:
        opened.append(LEAVES[start:end])
    yield opened
    opened.close()


def memory_log(count: int) -> MemoryLog:
    """A memory log of the first ``count`` LEAVES."""
    reference = MemoryLog()
    reference.append(LEAVES[:count])
    return reference


MEMORY = memory_log(len(LEAVES))


def in_memory_sqlite() -> SqliteLog:
    """A SQLite log of LEAVES on an in-memory database."""
    opened = SqliteLog(sqlite3.connect(":memory:"))
    opened.append(LEAVES)
    return opened


SHARED = in_memory_sqlite()


class TestSameAsMemoryLog:
    """Every answer equals the memory log's."""

    @settings(max_examples=150, deadline=None)
    @given(case=inclusion_cases(max_size=len(LEAVES)))
    def test_inclusion_proofs(self, case: tuple[int, int]) -> None:
        """Inclusion proofs are identical and verify."""
        size, index = case
        got = SHARED.inclusion_proof(index=index, size=size)
        assert got == MEMORY.inclusion_proof(index=index, size=size)
        verify_inclusion(
            leaf_hash=SHARED.leaf_hash(index),
            index=index,
            size=size,
            proof=got,
            root=SHARED.root_at(size),
        )

    @settings(max_examples=150, deadline=None)
    @given(case=consistency_cases(max_size=len(LEAVES)))
    def test_consistency_proofs(self, case: tuple[int, int]) -> None:
        """Consistency proofs are identical and verify."""
        size1, size2 = case
        got = SHARED.consistency_proof(size1=size1, size2=size2)
        assert got == MEMORY.consistency_proof(size1=size1, size2=size2)
        verify_consistency(
            size1=size1,
            size2=size2,
            proof=got,
            root1=SHARED.root_at(size1),
            root2=SHARED.root_at(size2),
        )

    def test_roots_at_every_size(self, log: SqliteLog) -> None:
        """root_at gives the memory log's root for every size, and root() the last one."""
        assert [log.root_at(size) for size in range(len(LEAVES) + 1)] == [
            MEMORY.root_at(size) for size in range(len(LEAVES) + 1)
        ]
        assert log.root() == MEMORY.root()
        assert log.size == len(LEAVES)

    def test_equal_sizes(self, log: SqliteLog) -> None:
        """A consistency proof between equal sizes is empty."""
        assert log.consistency_proof(size1=17, size2=17) == []

    def test_leaf_hash(self, log: SqliteLog) -> None:
        """leaf_hash reads the stored leaf."""
        assert log.leaf_hash(123) == hash_leaf(LEAVES[123])


class TestPersistence:
    """The log survives being closed and is shared safely between connections."""

    def test_reopen(self, log: SqliteLog, path: Path) -> None:
        """A reopened log has the same size and root and keeps appending correctly."""
        log.close()
        reopened = SqliteLog(path)
        assert (reopened.size, reopened.root()) == (len(LEAVES), MEMORY.root())
        assert reopened.append([b"one more"]) == len(LEAVES)
        reference = memory_log(len(LEAVES))
        reference.append([b"one more"])
        assert reopened.root() == reference.root()
        assert reopened.inclusion_proof(index=5, size=301) == reference.inclusion_proof(
            index=5, size=301
        )
        reopened.close()

    def test_second_writer_is_noticed(self, log: SqliteLog, path: Path) -> None:
        """A log appended by another connection reloads its state before appending."""
        other = SqliteLog(path)
        other.append([b"from the other"])
        assert log.append([b"from this one"]) == len(LEAVES) + 1
        reference = memory_log(len(LEAVES))
        reference.append([b"from the other", b"from this one"])
        assert log.root() == reference.root()
        other.close()

    def test_bad_hash_writes_nothing(self, log: SqliteLog, path: Path) -> None:
        """A batch with a malformed hash is refused whole and the database is unchanged."""
        with pytest.raises(ValueError, match=r"^leaf hash 1 is 3 bytes, want 32$"):
            log.append_hashes([hash_leaf(b"ok"), b"bad"])
        assert log.size == len(LEAVES)
        log.close()
        assert SqliteLog(path).size == len(LEAVES)

    def test_conflicting_row_rolls_back(self, log: SqliteLog, path: Path) -> None:
        """A failed insert is a LogStoreError and leaves size and nodes as they were."""
        with sqlite3.connect(path) as other:
            other.execute(INSERT_NODES_SQL, (0, 300, bytes(32)))
        other.close()
        with pytest.raises(LogStoreError, match=r"^cannot append to the Merkle log: UNIQUE"):
            log.append([b"clashes with the stray row"])
        assert log.size == len(LEAVES)
        assert log.root() == MEMORY.root()
        with sqlite3.connect(path) as other:
            assert other.execute("SELECT COUNT(*) FROM merkle_nodes").fetchone() == (600 - 4 + 1,)
        other.close()

    def test_missing_node_is_reported(self, log: SqliteLog, path: Path) -> None:
        """A proof over a node that vanished from the table names the node."""
        with sqlite3.connect(path) as other:
            other.execute("DELETE FROM merkle_nodes WHERE level = 0 AND idx = 1")
        other.close()
        with pytest.raises(LogStoreError, match=r"missing stored nodes \[NodeId\(level=0, index=1"):
            log.inclusion_proof(index=0, size=2)

    def test_other_layout_refused(self, tmp_path: Path) -> None:
        """A node table keyed by (level, idx), without node_key, is refused by name."""
        other = tmp_path / "other.db"
        with sqlite3.connect(other) as connection:
            connection.execute(
                "CREATE TABLE merkle_nodes (level INTEGER, idx INTEGER, hash BLOB, "
                "PRIMARY KEY (level, idx)) WITHOUT ROWID"
            )
        connection.close()
        with pytest.raises(LogStoreError, match=r"^merkle_nodes has no node_key column"):
            SqliteLog(other)

    def test_not_a_database(self, tmp_path: Path) -> None:
        """Opening a file that is not SQLite raises LogStoreError."""
        bogus = tmp_path / "bogus.db"
        bogus.write_bytes(b"this is not a database" * 100)
        with pytest.raises(LogStoreError, match=r"^cannot open the Merkle log: file is not a"):
            SqliteLog(bogus)

    def test_connection_in_transaction(self) -> None:
        """Appending on a connection already inside a transaction is refused."""
        connection = sqlite3.connect(":memory:")
        opened = SqliteLog(connection)
        connection.execute("BEGIN")
        with pytest.raises(LogStoreError, match=r"cannot start a transaction within"):
            opened.append([b"x"])
        connection.rollback()

    def test_given_connection_stays_open(self) -> None:
        """close() leaves a connection it did not open usable by its owner."""
        connection = sqlite3.connect(":memory:")
        opened = SqliteLog(connection)
        opened.append([b"x"])
        opened.close()
        assert connection.execute("SELECT size FROM merkle_size").fetchone() == (1,)
        connection.close()


class TestReads:
    """A proof reads O(log n) nodes in one query."""

    def test_one_query_per_proof(self) -> None:
        """A proof is one SELECT of at most 2 log2 n nodes, plus one per size for its border."""
        connection = sqlite3.connect(":memory:")
        opened = SqliteLog(connection)
        for start in range(0, 5000, 1000):
            opened.append([f"{i}".encode() for i in range(start, start + 1000)])
        statements: list[str] = []
        connection.set_trace_callback(statements.append)

        def queries(run: Callable[[], object]) -> int:
            statements.clear()
            run()
            assert all(s.startswith("SELECT node_key, hash FROM merkle_nodes") for s in statements)
            assert all(len(s.split("IN (")[1].split(",")) <= 2 * 13 for s in statements)
            return len(statements)

        # 4999 = 4096 + 512 + 256 + 128 + 7: every proof below needs a folded border.
        assert queries(lambda: opened.inclusion_proof(index=1234, size=4999)) == 2
        assert queries(lambda: opened.inclusion_proof(index=1234, size=4999)) == 1
        assert queries(lambda: opened.consistency_proof(size1=1733, size2=4999)) == 1
        assert queries(lambda: opened.root_at(4999)) == 0
        assert queries(lambda: opened.root_at(4095 + 512 + 3)) == 1
        # The border of the log's own size comes from the append state.
        assert queries(lambda: opened.inclusion_proof(index=1234, size=5000)) == 1
        connection.set_trace_callback(None)

    def test_node_query_needs_nodes(self) -> None:
        """A query for no nodes is refused."""
        with pytest.raises(ValueError, match=r"^a node query needs at least one node, got 0$"):
            select_nodes_sql(0)


class TestLayout:
    """Nodes are keyed by completion order, and the table holds only keys of that form."""

    def test_keys_follow_completion_order(self, path: Path) -> None:
        """Rows are stored in key order exactly as appended, so appends only add at the end."""
        opened = SqliteLog(path)
        for start in (0, 5, 64, 65, 200):
            opened.append(LEAVES[start : start + 37])
        with sqlite3.connect(path) as connection:
            keys = [row[0] for row in connection.execute("SELECT node_key FROM merkle_nodes")]
            pairs = connection.execute("SELECT level, idx FROM merkle_nodes").fetchall()
        connection.close()
        assert keys == sorted(keys)
        assert keys == [node_key(NodeId(level, index)) for level, index in pairs]
        assert len(keys) == 2 * opened.size - opened.size.bit_count()
        opened.close()

    @pytest.mark.parametrize("count", [1, 31, 32, 33, 64, 65, 300])
    def test_block_insert_equals_row_insert(self, count: int) -> None:
        """insert_nodes stores exactly the rows executemany(INSERT_NODES_SQL) stores."""
        plan = plan_append(LogState.empty(), [hash_leaf(leaf) for leaf in LEAVES[:count]])
        tables = []
        for write in (
            lambda db: insert_nodes(db, plan),
            lambda db: db.executemany(INSERT_NODES_SQL, plan.rows()),
        ):
            connection = sqlite3.connect(":memory:")
            connection.executescript(SCHEMA)
            write(connection)
            tables.append(connection.execute("SELECT * FROM merkle_nodes").fetchall())
            connection.close()
        assert tables[0] == tables[1]
        assert len(tables[0]) == 2 * count - count.bit_count()

    def test_conflict_inside_a_block_rolls_back(self, log: SqliteLog, path: Path) -> None:
        """A clash in the middle of a many-row batch leaves the log as it was."""
        with sqlite3.connect(path) as other:
            other.execute(INSERT_NODES_SQL, (0, 350, bytes(32)))
        other.close()
        with pytest.raises(LogStoreError, match=r"^cannot append to the Merkle log: UNIQUE"):
            log.append([b"batch %d" % i for i in range(200)])
        assert (log.size, log.root()) == (len(LEAVES), MEMORY.root())
        with sqlite3.connect(path) as other:
            assert other.execute("SELECT COUNT(*) FROM merkle_nodes").fetchone() == (600 - 4 + 1,)
        other.close()

    def test_select_nodes_sql(self, log: SqliteLog, path: Path) -> None:
        """The shared node query returns (level, idx, hash) rows for the nodes asked for."""
        nodes = [NodeId(0, 5), NodeId(3, 2), NodeId(8, 0)]
        with sqlite3.connect(path) as connection:
            rows = connection.execute(
                select_nodes_sql(len(nodes)), node_parameters(nodes)
            ).fetchall()
        connection.close()
        _, stored = append(LogState.empty(), [hash_leaf(leaf) for leaf in LEAVES])
        assert sorted(rows) == sorted(tuple(node) for node in stored if node[:2] in nodes)

    def test_node_key(self) -> None:
        """Node (level, idx) is keyed by the leaf count that completes it, then its level."""
        assert node_key(NodeId(0, 0)) == 1 << 6
        assert node_key(NodeId(1, 0)) == 2 << 6 | 1
        assert node_key(NodeId(3, 4)) == 40 << 6 | 3
        assert node_parameters([NodeId(0, 0), NodeId(3, 4)]) == [64, 40 << 6 | 3]

    @pytest.mark.parametrize(
        "key",
        [0, 5, 1 << 6 | 1, 3 << 6 | 1],
        ids=["zero", "level 5 of no leaves", "level 1 of one leaf", "level 1 of three leaves"],
    )
    def test_malformed_key_refused(self, key: int) -> None:
        """A key not of the form (idx + 1) << level << 6 | level with idx >= 0 is refused."""
        connection = sqlite3.connect(":memory:")
        connection.executescript(SCHEMA)
        with pytest.raises(sqlite3.IntegrityError, match=r"^CHECK constraint failed"):
            connection.execute(
                "INSERT INTO merkle_nodes (node_key, hash) VALUES (?, ?)", (key, bytes(32))
            )
        connection.close()

    def test_short_hash_refused(self) -> None:
        """A stored hash must be 32 bytes."""
        connection = sqlite3.connect(":memory:")
        connection.executescript(SCHEMA)
        with pytest.raises(sqlite3.IntegrityError, match=r"^CHECK constraint failed"):
            connection.execute(INSERT_NODES_SQL, (0, 0, bytes(31)))
        connection.close()


class TestBadArguments:
    """Requests the log cannot answer raise OutOfRangeError with the numbers involved."""

    def test_index_beyond_size(self, log: SqliteLog) -> None:
        """An index beyond the proof's size is refused."""
        with pytest.raises(OutOfRangeError, match=r"^index 9 is beyond size 8$"):
            log.inclusion_proof(index=9, size=8)

    def test_size_beyond_log(self, log: SqliteLog) -> None:
        """A size beyond the log is refused, for every kind of request."""
        with pytest.raises(OutOfRangeError, match=r"^size 301 is beyond the log size 300$"):
            log.inclusion_proof(index=0, size=301)
        with pytest.raises(OutOfRangeError, match=r"^size 400 is beyond the log size 300$"):
            log.consistency_proof(size1=3, size2=400)
        with pytest.raises(OutOfRangeError, match=r"^size 301 is beyond the log size 300$"):
            log.root_at(301)

    def test_size1_greater_than_size2(self, log: SqliteLog) -> None:
        """A consistency proof towards a smaller tree is refused."""
        with pytest.raises(OutOfRangeError, match=r"^size1 9 is greater than size2 8$"):
            log.consistency_proof(size1=9, size2=8)

    def test_leaf_beyond_log(self, log: SqliteLog) -> None:
        """A leaf beyond the log is refused."""
        with pytest.raises(OutOfRangeError, match=r"^index 300 is beyond size 300$"):
            log.leaf_hash(300)
