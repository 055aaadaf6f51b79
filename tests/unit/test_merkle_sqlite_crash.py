"""A SQLite log killed with SIGKILL in the middle of appends reopens consistent."""

from __future__ import annotations

import hashlib
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway.store.merkle_nodes import SqliteLog
from ledger.merkle import hash_leaf

BATCH = 3000

# The writer announces each append before making it, so the kill lands inside one.
WRITER = f"""
import sys
from gateway.store.merkle_nodes import SqliteLog

log = SqliteLog(sys.argv[1])
while True:
    start = log.size
    print(start, flush=True)
    log.append([b"leaf %d" % i for i in range(start, start + {BATCH})])
"""


def reference_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes, straight from the recursive RFC 9162 definition."""
    if not leaf_hashes:
        return hashlib.sha256(b"").digest()
    if len(leaf_hashes) == 1:
        return leaf_hashes[0]
    k = 1 << (len(leaf_hashes) - 1).bit_length() - 1
    left, right = reference_root(leaf_hashes[:k]), reference_root(leaf_hashes[k:])
    return hashlib.sha256(b"\x01" + left + right).digest()


def run_and_kill(path: Path, appends: int) -> tuple[int, int]:
    """Start a writer, kill it with SIGKILL once it starts its ``appends``-th append.

    Returns the writer's exit status and the size at which that last append started.
    """
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    line = ""
    for _ in range(appends):
        line = writer.stdout.readline()
        assert line, "the writer exited before it was killed"
    writer.send_signal(signal.SIGKILL)
    writer.stdout.close()
    return writer.wait(), int(line)


def stored(path: Path) -> tuple[int, list[bytes], int]:
    """The committed size, the stored leaf hashes in order, and the number of stored nodes."""
    with sqlite3.connect(path) as connection:
        (size,) = connection.execute("SELECT size FROM merkle_size").fetchone()
        leaves = [
            row[0]
            for row in connection.execute(
                "SELECT hash FROM merkle_nodes WHERE level = 0 ORDER BY idx"
            )
        ]
        (count,) = connection.execute("SELECT COUNT(*) FROM merkle_nodes").fetchone()
    connection.close()
    return size, leaves, count


def test_killed_writer_leaves_consistent_log(tmp_path: Path) -> None:
    """After each of several SIGKILLs mid-append, size, nodes and root all agree."""
    path = tmp_path / "log.db"
    sizes = []
    interrupted = 0
    for round_number in range(5):
        returncode, started = run_and_kill(path, appends=2 + round_number % 3)
        assert returncode == -signal.SIGKILL
        size, leaves, count = stored(path)
        sizes.append(size)
        assert size in {started, started + BATCH}  # the batch is all there or not at all
        interrupted += size == started
        assert len(leaves) == size
        assert count == 2 * size - size.bit_count()  # every complete subtree, no more
        assert leaves == [hash_leaf(b"leaf %d" % i) for i in range(size)]
        reopened = SqliteLog(path)
        assert reopened.size == size
        assert reopened.root() == reference_root(leaves)
        reopened.close()
    assert sizes == sorted(sizes)
    assert sizes[-1] > sizes[0] > 0
    assert interrupted > 0, "no kill landed inside an append"
