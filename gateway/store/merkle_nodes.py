"""The Merkle log stored in SQLite (sync ``sqlite3``): an I/O adapter over ``ledger.merkle``.

Storage: every complete perfect subtree in ``merkle_nodes`` and the committed size in
``merkle_size``. A node is keyed by its place in completion order,
``node_key = (idx + 1) << level << 6 | level`` (:func:`node_key`): node ``(level, idx)``
completes when leaf ``(idx + 1) << level`` is appended, after its children, so each append
adds rows at the end of the table's B-tree (full pages, no splits in the middle), and the
nodes of a proof's lower levels sit next to each other. ``level`` and ``idx`` are virtual
columns computed from the key, and a CHECK keeps every key in that form. Keys stay below
``2**63`` for logs of up to ``2**57`` leaves.

An append batch is one transaction that inserts the batch's nodes and moves the size, so a
crash at any point (even ``kill -9``) leaves a log whose size and nodes agree. A proof reads
its O(log n) stored nodes with one query; the one hash that may lie on the partial right
border of the tree comes from the folded border of that size (``ledger.merkle.border``),
taken from the append state for the log's own size and read once for any other size.

Durability: the connections this module opens use ``journal_mode=WAL`` and
``synchronous=NORMAL`` (with a 64 MiB page cache and memory-mapped reads): a committed batch
survives the process being killed; after a power loss the last batches may be lost, but the
log still reopens consistent (SQLite "WAL mode" documentation). Use ``synchronous=FULL`` on a
connection you pass in for durability across power loss. Databases written with the earlier
``(level, idx)`` primary key are refused with :class:`LogStoreError` rather than misread.

``SCHEMA`` and the ``*_SQL`` statements are shared with the gateway's aiosqlite store, which
plans with ``ledger.merkle.plan_append`` (or ``append``) and writes ``AppendPlan.rows()`` with
``INSERT_NODES_SQL`` in the same transaction as its messages.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from itertools import islice
from pathlib import Path
from typing import Final

from ledger.errors import VoltproofError
from ledger.merkle import (
    EMPTY_ROOT,
    AppendPlan,
    LogState,
    NodeId,
    OutOfRangeError,
    hash_leaf,
    plan_append,
    state_nodes,
)
from ledger.merkle.border import BorderCache
from ledger.merkle.proof import check_consistency_request, check_inclusion_request, sibling_path

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS merkle_nodes (
    node_key INTEGER PRIMARY KEY,
    level INTEGER GENERATED ALWAYS AS (node_key & 63) VIRTUAL,
    idx INTEGER GENERATED ALWAYS AS (((node_key >> 6) >> (node_key & 63)) - 1) VIRTUAL,
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    CHECK (idx >= 0 AND ((((idx + 1) << level) << 6) | level) = node_key)
);
CREATE TABLE IF NOT EXISTS merkle_size (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    size INTEGER NOT NULL CHECK (size >= 0)
);
INSERT OR IGNORE INTO merkle_size (id, size) VALUES (0, 0);
"""

CACHE_KIB: Final = 65_536
"""Page cache of the connections this module opens: the upper tree levels of a 10 M leaf log
stay cached, so appends and proofs touch the disk (or OS cache) only near the leaves."""

MMAP_BYTES: Final = 1 << 30
"""Memory-mapped I/O of the connections this module opens (SQLite "Memory-Mapped I/O"):
reads of pages outside the page cache cost no system call and no copy. Writes still go
through the WAL."""

INSERT_NODES_SQL: Final = (
    "INSERT INTO merkle_nodes (node_key, hash) VALUES ((((?2 + 1) << ?1) << 6) | ?1, ?3)"
)
"""Insert one node from a ``(level, index, hash)`` row, as :meth:`AppendPlan.rows` yields."""
INSERT_BLOCK: Final = 64
"""Nodes per ``INSERT`` statement in :func:`insert_nodes`."""
_INSERT_KEYED: Final = "INSERT INTO merkle_nodes (node_key, hash) VALUES "
_INSERT_ONE_SQL: Final = _INSERT_KEYED + "(?, ?)"
_INSERT_BLOCK_SQL: Final = _INSERT_KEYED + ", ".join(["(?, ?)"] * INSERT_BLOCK)

SELECT_SIZE_SQL: Final = "SELECT size FROM merkle_size WHERE id = 0"
UPDATE_SIZE_SQL: Final = "UPDATE merkle_size SET size = ? WHERE id = 0"


class LogStoreError(VoltproofError):
    """The SQLite store failed or holds something a log cannot hold."""


def node_key(node: NodeId) -> int:
    """The key of ``node`` in ``merkle_nodes``: ``(index + 1) << level << 6 | level``."""
    level, index = node
    return (index + 1) << level << 6 | level


def insert_nodes(connection: sqlite3.Connection, plan: AppendPlan) -> None:
    """Insert the nodes of ``plan``, :data:`INSERT_BLOCK` rows per statement.

    Equivalent to ``executemany(INSERT_NODES_SQL, plan.rows())``, with about a third less
    time per row: the per-statement cost of SQLite and of the driver is paid once per block.
    """
    flat = [
        value
        for level, index, hash_ in plan.rows()
        for value in ((index + 1) << level << 6 | level, hash_)
    ]
    whole = len(flat) - len(flat) % (2 * INSERT_BLOCK)
    blocks = islice(flat, whole)
    connection.executemany(_INSERT_BLOCK_SQL, zip(*[blocks] * (2 * INSERT_BLOCK), strict=True))
    rest = iter(flat[whole:])
    connection.executemany(_INSERT_ONE_SQL, zip(rest, rest, strict=True))


def select_nodes_sql(count: int) -> str:
    """A query for ``count`` nodes given by :func:`node_parameters`: ``level, idx, hash`` rows.

    The nodes are looked up by their integer primary key, one B-tree search each.
    """
    if count < 1:
        raise ValueError(f"a node query needs at least one node, got {count}")
    marks = ", ".join(["?"] * count)
    return f"SELECT level, idx, hash FROM merkle_nodes WHERE node_key IN ({marks})"  # noqa: S608 -- only placeholders are interpolated


def _select_keyed_sql(count: int) -> str:
    marks = ", ".join(["?"] * count)
    return f"SELECT node_key, hash FROM merkle_nodes WHERE node_key IN ({marks})"  # noqa: S608 -- only placeholders are interpolated


def node_parameters(nodes: Sequence[NodeId]) -> list[int]:
    """The parameters of :func:`select_nodes_sql` for ``nodes``: their keys."""
    return [(index + 1) << level << 6 | level for level, index in nodes]


class SqliteLog:
    """An append-only RFC 9162 log in a SQLite database (one writer per database)."""

    def __init__(self, database: str | Path | sqlite3.Connection) -> None:
        try:
            if isinstance(database, sqlite3.Connection):
                self._connection = database
                self._owned = False
            else:
                self._connection = sqlite3.connect(database, isolation_level=None)
                self._owned = True
                self._connection.execute("PRAGMA journal_mode=WAL")
                self._connection.execute("PRAGMA synchronous=NORMAL")
                self._connection.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
                self._connection.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            self._connection.executescript(SCHEMA)
            self._check_layout()
            self._state = self._load_state()
            self._borders = BorderCache()
        except sqlite3.Error as exc:
            raise LogStoreError(f"cannot open the Merkle log: {exc}") from exc

    @property
    def size(self) -> int:
        """The number of committed leaves."""
        return self._state.size

    def root(self) -> bytes:
        """The root of the whole log."""
        return self._state.root()

    def append(self, leaf_datas: Iterable[bytes]) -> int:
        """Append leaves given as their data, in one transaction; return the first index."""
        return self.append_hashes([hash_leaf(data) for data in leaf_datas])

    def append_hashes(self, leaf_hashes: Iterable[bytes]) -> int:
        """Append leaves given as their leaf hashes, in one transaction; return the first index."""
        connection = self._connection
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                plan = plan_append(self._load_state_if_moved(), leaf_hashes)
                insert_nodes(connection, plan)
                connection.execute(UPDATE_SIZE_SQL, (plan.state.size,))
            except BaseException:
                connection.rollback()
                raise
            connection.commit()
        except sqlite3.Error as exc:
            raise LogStoreError(f"cannot append to the Merkle log: {exc}") from exc
        self._state = plan.state
        return plan.first

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        if not 0 <= index < self._state.size:
            raise OutOfRangeError(f"index {index} is beyond size {self._state.size}")
        return self._hashes([NodeId(0, index)])[0]

    def inclusion_proof(self, *, index: int, size: int) -> list[bytes]:
        """The inclusion proof of leaf ``index`` in the tree of the first ``size`` leaves."""
        self._check_size(size)
        check_inclusion_request(index=index, size=size)
        return self._path([], index, size, 0)

    def consistency_proof(self, *, size1: int, size2: int) -> list[bytes]:
        """The proof that the tree of ``size2`` leaves extends the tree of ``size1`` leaves."""
        self._check_size(size2)
        if not check_consistency_request(size1=size1, size2=size2):
            return []
        # As in ledger.merkle.consistency_proof_plan: the root of the largest perfect subtree
        # ending at size1 (unless it is the whole old tree), then the path above it.
        shift = (size1 & -size1).bit_length() - 1
        head = [] if size1 == 1 << shift else [NodeId(shift, (size1 - 1) >> shift)]
        return self._path(head, size1 - 1, size2, shift)

    def root_at(self, size: int) -> bytes:
        """The root of the tree of the first ``size`` leaves, from O(log n) stored nodes."""
        self._check_size(size)
        return self._borders.folds(size, self._state_hashes)[0] if size else EMPTY_ROOT

    def close(self) -> None:
        """Close the connection if this log opened it."""
        if self._owned:
            self._connection.close()

    def _check_size(self, size: int) -> None:
        if size > self._state.size:
            raise OutOfRangeError(f"size {size} is beyond the log size {self._state.size}")

    def _path(self, head: list[NodeId], index: int, size: int, start: int) -> list[bytes]:
        """``head``, then the path of :func:`sibling_path`, read in one query.

        A partial right-border subtree comes from the folded border of ``size``
        (:class:`BorderCache`), which is read once per size, or taken from the append state.
        """
        nodes, ephemeral, level = sibling_path(index, size, start)
        if ephemeral < 0:
            return self._hashes(head + nodes)
        del nodes[ephemeral]
        proof = self._hashes(head + nodes)
        border = self._borders.folds(size, self._state_hashes)
        proof.insert(len(head) + ephemeral, border[(size >> level).bit_count()])
        return proof

    def _state_hashes(self, size: int) -> Sequence[bytes]:
        if size == self._state.size:
            return self._state.hashes
        return self._hashes(state_nodes(size))

    def _hashes(self, nodes: Sequence[NodeId]) -> list[bytes]:
        """The stored hashes of ``nodes``, in order, read with one query."""
        if not nodes:
            return []
        keys = [(index + 1) << level << 6 | level for level, index in nodes]
        try:
            by_key = dict(self._connection.execute(_select_keyed_sql(len(keys)), keys).fetchall())
        except sqlite3.Error as exc:
            raise LogStoreError(f"cannot read the Merkle log: {exc}") from exc
        try:
            return [by_key[key] for key in keys]
        except KeyError:
            missing = [node for node, key in zip(nodes, keys, strict=True) if key not in by_key]
            raise LogStoreError(f"the Merkle log is missing stored nodes {missing}") from None

    def _check_layout(self) -> None:
        """Refuse a ``merkle_nodes`` table of another layout (keyed by ``(level, idx)``)."""
        columns = {row[1] for row in self._connection.execute("PRAGMA table_xinfo(merkle_nodes)")}
        if "node_key" not in columns:
            raise LogStoreError(
                "merkle_nodes has no node_key column: the database was written with "
                "another table layout"
            )

    def _load_state(self) -> LogState:
        (size,) = self._connection.execute(SELECT_SIZE_SQL).fetchone()
        return LogState.from_nodes(size, self._hashes(state_nodes(size)))

    def _load_state_if_moved(self) -> LogState:
        """The state, reloaded if another connection appended since we last looked."""
        (size,) = self._connection.execute(SELECT_SIZE_SQL).fetchone()
        return self._state if size == self._state.size else self._load_state()
