"""The witness's durable state: per log, the latest cosigned checkpoint, in SQLite.

One row per origin. :meth:`WitnessState.advance` is a compare-and-swap inside one
``BEGIN IMMEDIATE`` transaction: it replaces the row only if it still holds the checkpoint the
caller checked the request against, so of two requests checked against the same state only
one advances it, even from two processes sharing the file. The database runs in WAL mode with
``synchronous=FULL``: once ``advance`` returns True the new state survives a kill -9 or a
power loss, and the caller returns the cosignature only after that.

Reads go through a second connection: in WAL mode a reader sees the last committed state
and never waits for a writer, so checking one request never waits for another's fsync.
Writes are group commits: :meth:`WitnessState.advance` (threads) and
:meth:`WitnessState.commit_swaps` (one batch, used by :class:`.committer.GroupCommitter`)
each run any number of compare-and-swaps in one transaction, hence one fsync.

Sizes are uint64, wider than SQLite's signed INTEGER, so they are stored as canonical
decimal text (compared for equality only).
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from ledger.errors import VoltproofError
from ledger.private_files import private_file

__all__ = ["CosignedCheckpoint", "Swap", "WitnessState", "WitnessStateError"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cosigned (
    origin    TEXT PRIMARY KEY,
    size      TEXT NOT NULL,
    root      BLOB NOT NULL CHECK (length(root) = 32),
    timestamp INTEGER NOT NULL,
    body      TEXT NOT NULL
) STRICT
"""


class WitnessStateError(VoltproofError):
    """The state database cannot be opened, read or written (a broken dependency)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CosignedCheckpoint:
    """The latest checkpoint a witness cosigned for one log."""

    size: int
    root: bytes
    timestamp: int
    body: str


class WitnessState:
    """Latest cosigned checkpoint per origin; safe to share between threads."""

    def __init__(
        self, connection: sqlite3.Connection, *, reader: sqlite3.Connection | None = None
    ) -> None:
        self._connection = connection
        self._lock = threading.Lock()
        self._reader = connection if reader is None else reader
        self._read_lock = self._lock if reader is None else threading.Lock()
        self._condition = threading.Condition()
        self._queue: list[Swap] = []
        self._committing = False

    @classmethod
    def open(cls, path: Path | str) -> Self:
        """Open (creating if needed) the state database at ``path``."""
        try:
            private_file(Path(path))  # 0600 before SQLite creates it (and its WAL) with the umask
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA busy_timeout=10000")
            connection.execute(_SCHEMA)
            reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            reader.execute("PRAGMA busy_timeout=10000")
            reader.execute("PRAGMA query_only=ON")
        except (OSError, sqlite3.Error) as exc:
            raise WitnessStateError(f"cannot open witness state {path}: {exc}") from exc
        return cls(connection, reader=reader)

    def close(self) -> None:
        """Close the database."""
        with self._read_lock:
            if self._reader is not self._connection:
                self._reader.close()
        with self._lock:
            self._connection.close()

    def latest(self, origin: str) -> CosignedCheckpoint | None:
        """The latest checkpoint cosigned for ``origin``, or None if there is none."""
        try:
            with self._read_lock:
                row = self._reader.execute(
                    "SELECT size, root, timestamp, body FROM cosigned WHERE origin = ?", (origin,)
                ).fetchone()
        except sqlite3.Error as exc:
            raise WitnessStateError(f"cannot read witness state: {exc}") from exc
        if row is None:
            return None
        size, root, timestamp, body = row
        return CosignedCheckpoint(size=int(size), root=root, timestamp=timestamp, body=body)

    def advance(
        self, origin: str, *, expected: CosignedCheckpoint | None, new: CosignedCheckpoint
    ) -> bool:
        """Store ``new`` if ``origin`` still holds ``expected``; True once durably committed.

        Group commit: concurrent callers queue their compare-and-swap; one of them runs the
        whole queue in one transaction (each swap checked in order, so two swaps of one
        origin behave as if sequential) and one fsync, then wakes the others.
        """
        pending = Swap(origin=origin, expected=expected, new=new)
        with self._condition:
            self._queue.append(pending)
            while not pending.done and self._committing:
                self._condition.wait()
            if not pending.done:
                self._committing = True
                batch, self._queue = self._queue, []
        if not pending.done:
            error: WitnessStateError | None = None
            try:
                self._commit(batch)
            except WitnessStateError as exc:
                error = exc
            finally:
                with self._condition:
                    for item in batch:
                        item.done = True
                        item.error = error
                    self._committing = False
                    self._condition.notify_all()
        if pending.error is not None:
            raise pending.error
        return pending.swapped

    def commit_swaps(self, batch: list[Swap]) -> None:
        """Run ``batch`` in one transaction (one fsync), setting each swap's ``swapped``.

        The swaps are checked in order, so two swaps of one origin behave as if sequential:
        the second, which expected the state before the first, is not applied. Raises
        :class:`WitnessStateError` (nothing of the batch applied) if the write fails.
        """
        self._commit(batch)

    def _commit(self, batch: list[Swap]) -> None:
        try:
            with self._lock:
                cursor = self._connection.cursor()
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    for item in batch:
                        item.swapped = self._swap(cursor, item)
                    cursor.execute("COMMIT")
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            for item in batch:
                item.swapped = False
            raise WitnessStateError(f"cannot write witness state: {exc}") from exc

    @staticmethod
    def _swap(cursor: sqlite3.Cursor, item: Swap) -> bool:
        new, expected = item.new, item.expected
        values = (str(new.size), new.root, new.timestamp, new.body)
        if expected is None:
            cursor.execute(
                "INSERT INTO cosigned (origin, size, root, timestamp, body) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (origin) DO NOTHING",
                (item.origin, *values),
            )
        else:
            cursor.execute(
                "UPDATE cosigned SET size = ?, root = ?, timestamp = ?, body = ? "
                "WHERE origin = ? AND size = ? AND root = ? AND timestamp = ?",
                (*values, item.origin, str(expected.size), expected.root, expected.timestamp),
            )
        return cursor.rowcount == 1


@dataclass(slots=True, kw_only=True)
class Swap:
    """One queued compare-and-swap and, once its batch committed, its outcome."""

    origin: str
    expected: CosignedCheckpoint | None
    new: CosignedCheckpoint
    swapped: bool = False
    done: bool = False
    error: WitnessStateError | None = None
