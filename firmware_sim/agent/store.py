"""The durable state of devices: chain head (seq, prev) and the outbox, in one SQLite file.

Every signed message is committed together with the new chain head in ONE transaction
before anything is published, so that a crash (kill -9, power loss) at any moment neither
reuses a ``seq`` nor forks the chain: after a restart the store holds either the message
and the head that follows it, or neither. Rows leave the outbox when the gateway's verified
end-to-end receipt covers them (:meth:`ChainStore.release`; the highest receipted seq is kept
per device, so a replayed older receipt releases nothing), or, for an agent configured
without the gateway key, when the broker has acknowledged them (:meth:`ChainStore.ack`).

The outbox is bounded per device by count and by bytes. When a new message would exceed a
bound, the OLDEST UNSENT messages are dropped (drop-oldest): fresh data is worth more to a
fleet operator than old data, and the gap stays provable because the dropped range is
counted and reported in a ``drop`` event of the next signed message
(:meth:`ChainStore.append` hands the pending :class:`DropNotice` to the builder).

One store may hold many devices (the fleet simulator shares one file between thousands);
each device's rows are keyed by its id. sqlite3 errors never leave this module: they are
translated into :class:`ChainStoreError`.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, Self

from ledger.chain import ZERO_PREV
from ledger.errors import VoltproofError
from ledger.private_files import private_file

ZERO_HASH: Final = ZERO_PREV
"""The ``prev`` of a device's seq 0 (``ledger.chain.ZERO_PREV``)."""

Synchronous = Literal["FULL", "NORMAL", "OFF"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS head (
    dev TEXT PRIMARY KEY,
    next_seq INTEGER NOT NULL,
    prev BLOB NOT NULL,
    ob_count INTEGER NOT NULL DEFAULT 0,
    ob_bytes INTEGER NOT NULL DEFAULT 0,
    drop_first INTEGER,
    drop_last INTEGER,
    drop_n INTEGER NOT NULL DEFAULT 0,
    drop_total INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    dev TEXT NOT NULL,
    seq INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (dev, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS receipted (
    dev TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
) WITHOUT ROWID;
"""


class ChainStoreError(VoltproofError, RuntimeError):
    """The state file cannot be opened, read or written."""


class OutboxBoundsError(VoltproofError, ValueError):
    """The outbox bounds cannot hold even one message."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainHead:
    """Where a device's chain stands: the next ``seq`` and the hash of the last message."""

    next_seq: int
    prev: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class DropNotice:
    """Messages dropped from a full outbox since the last notice was signed."""

    first: int
    last: int
    count: int
    total: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxEntry:
    """One signed message waiting for the broker's acknowledgement."""

    dev: str
    seq: int
    created_ms: int
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxStats:
    """Size of one device's outbox and how many messages it ever dropped."""

    count: int
    size_bytes: int
    dropped_total: int


Builder = Callable[[ChainHead, DropNotice | None], bytes]
"""Signs the message for ``head.next_seq`` chaining to ``head.prev``, reporting the notice."""


class ChainStore:
    """Chain heads and outboxes of one or many devices in one SQLite file (WAL mode).

    ``synchronous="FULL"`` survives power loss (the agent's default); ``"NORMAL"`` survives
    a process crash but may lose the last transactions on power loss (the simulator's).
    """

    def __init__(
        self,
        *,
        path: Path | str,
        max_messages: int = 100_000,
        max_bytes: int = 256 * 1024 * 1024,
        synchronous: Synchronous = "FULL",
    ) -> None:
        if max_messages < 1:
            raise OutboxBoundsError(f"max_messages must be at least 1, not {max_messages}")
        if max_bytes < 1:
            raise OutboxBoundsError(f"max_bytes must be at least 1, not {max_bytes}")
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        try:
            private_file(Path(path))  # 0600: it holds signed telemetry not yet receipted
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ChainStoreError(f"cannot open state file {path}: {exc}") from exc

    def close(self) -> None:
        """Close the file (committed state is already durable)."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def head(self, dev: str) -> ChainHead:
        """The chain head of ``dev`` (seq 0 and 32 zero bytes for a new device)."""
        try:
            row = self._db.execute(
                "SELECT next_seq, prev FROM head WHERE dev = ?", (dev,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise ChainStoreError(f"cannot read the chain head of {dev}: {exc}") from exc
        if row is None:
            return ChainHead(next_seq=0, prev=ZERO_HASH)
        return ChainHead(next_seq=row[0], prev=bytes(row[1]))

    def append(self, dev: str, build: Builder, *, now_ms: int) -> OutboxEntry:
        """Sign the next message of ``dev`` with ``build`` and commit it with the new head.

        ``build`` runs inside the transaction: if it raises, nothing changes. The pending
        drop notice handed to it is cleared in the same transaction.
        """
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                entry = self._append_locked(dev, build, now_ms)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise ChainStoreError(f"cannot commit the next message of {dev}: {exc}") from exc
        return entry

    def _append_locked(self, dev: str, build: Builder, now_ms: int) -> OutboxEntry:
        row = self._db.execute(
            "SELECT next_seq, prev, drop_first, drop_last, drop_n, drop_total "
            "FROM head WHERE dev = ?",
            (dev,),
        ).fetchone()
        if row is None:
            self._db.execute(
                "INSERT INTO head (dev, next_seq, prev) VALUES (?, 0, ?)", (dev, ZERO_HASH)
            )
            row = (0, ZERO_HASH, None, None, 0, 0)
        head = ChainHead(next_seq=row[0], prev=bytes(row[1]))
        notice = None
        if row[4]:
            notice = DropNotice(first=row[2], last=row[3], count=row[4], total=row[5])
        data = build(head, notice)
        self._db.execute(
            "INSERT INTO outbox (dev, seq, created_ms, data) VALUES (?, ?, ?, ?)",
            (dev, head.next_seq, now_ms, data),
        )
        self._db.execute(
            "UPDATE head SET next_seq = ?, prev = ?, ob_count = ob_count + 1, "
            "ob_bytes = ob_bytes + ?, drop_first = NULL, drop_last = NULL, drop_n = 0 "
            "WHERE dev = ?",
            (head.next_seq + 1, hashlib.sha256(data).digest(), len(data), dev),
        )
        self._evict(dev, keep=head.next_seq)
        return OutboxEntry(dev=dev, seq=head.next_seq, created_ms=now_ms, data=data)

    def _evict(self, dev: str, *, keep: int) -> None:
        """Drop the oldest unsent messages of ``dev`` until both bounds hold."""
        count, size = self._db.execute(
            "SELECT ob_count, ob_bytes FROM head WHERE dev = ?", (dev,)
        ).fetchone()
        while count > self.max_messages or (size > self.max_bytes and count > 1):
            seq, length = self._db.execute(
                "SELECT seq, length(data) FROM outbox WHERE dev = ? ORDER BY seq LIMIT 1", (dev,)
            ).fetchone()
            if seq == keep:
                break
            self._db.execute("DELETE FROM outbox WHERE dev = ? AND seq = ?", (dev, seq))
            self._db.execute(
                "UPDATE head SET ob_count = ob_count - 1, ob_bytes = ob_bytes - ?, "
                "drop_first = coalesce(drop_first, ?), drop_last = ?, drop_n = drop_n + 1, "
                "drop_total = drop_total + 1 WHERE dev = ?",
                (length, seq, seq, dev),
            )
            count, size = count - 1, size - length

    def message_hash(self, dev: str, seq: int) -> bytes | None:
        """SHA-256 of message ``seq`` of ``dev`` when the device still knows it: its newest
        message (the head's ``prev``) or one still in the outbox; else ``None``."""
        head = self.head(dev)
        if seq == head.next_seq - 1:
            return head.prev
        try:
            row = self._db.execute(
                "SELECT data FROM outbox WHERE dev = ? AND seq = ?", (dev, seq)
            ).fetchone()
        except sqlite3.Error as exc:
            raise ChainStoreError(f"cannot read {dev} seq {seq} from the outbox: {exc}") from exc
        return None if row is None else hashlib.sha256(bytes(row[0])).digest()

    def pending(self, dev: str, *, after: int = -1, limit: int = 1000) -> list[OutboxEntry]:
        """Unacknowledged messages of ``dev`` with ``seq > after``, oldest first."""
        try:
            rows = self._db.execute(
                "SELECT seq, created_ms, data FROM outbox WHERE dev = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (dev, after, limit),
            ).fetchall()
        except sqlite3.Error as exc:
            raise ChainStoreError(f"cannot read the outbox of {dev}: {exc}") from exc
        return [OutboxEntry(dev=dev, seq=s, created_ms=c, data=bytes(d)) for s, c, d in rows]

    def ack(self, dev: str, seq: int) -> bool:
        """Remove an acknowledged message; False when it was not there (already dropped)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute(
                "DELETE FROM outbox WHERE dev = ? AND seq = ? RETURNING length(data)", (dev, seq)
            ).fetchone()
            if row is not None:
                self._db.execute(
                    "UPDATE head SET ob_count = ob_count - 1, ob_bytes = ob_bytes - ? "
                    "WHERE dev = ?",
                    (row[0], dev),
                )
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise ChainStoreError(f"cannot acknowledge {dev} seq {seq}: {exc}") from exc
        return row is not None

    def receipted(self, dev: str) -> int:
        """The highest seq of ``dev`` a verified receipt covered (-1 before the first)."""
        try:
            row = self._db.execute("SELECT seq FROM receipted WHERE dev = ?", (dev,)).fetchone()
        except sqlite3.Error as exc:
            raise ChainStoreError(f"cannot read the receipts of {dev}: {exc}") from exc
        return -1 if row is None else int(row[0])

    def release(self, dev: str, upto: int) -> int:
        """Remove every message of ``dev`` with ``seq <= upto`` (a verified receipt covers them).

        Returns how many left the outbox; a receipt at or below the highest one seen before
        changes nothing (0).
        """
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                released = self._release_locked(dev, upto)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise ChainStoreError(f"cannot release {dev} up to seq {upto}: {exc}") from exc
        return released

    def _release_locked(self, dev: str, upto: int) -> int:
        row = self._db.execute("SELECT seq FROM receipted WHERE dev = ?", (dev,)).fetchone()
        if row is not None and row[0] >= upto:
            return 0
        self._db.execute(
            "INSERT INTO receipted (dev, seq) VALUES (?, ?) "
            "ON CONFLICT (dev) DO UPDATE SET seq = excluded.seq",
            (dev, upto),
        )
        count, size = self._db.execute(
            "SELECT count(*), coalesce(sum(length(data)), 0) FROM outbox "
            "WHERE dev = ? AND seq <= ?",
            (dev, upto),
        ).fetchone()
        if count:
            self._db.execute("DELETE FROM outbox WHERE dev = ? AND seq <= ?", (dev, upto))
            self._db.execute(
                "UPDATE head SET ob_count = ob_count - ?, ob_bytes = ob_bytes - ? WHERE dev = ?",
                (count, size, dev),
            )
        return int(count)

    def stats(self, dev: str) -> OutboxStats:
        """Count and bytes waiting in the outbox of ``dev`` and its total drops."""
        try:
            row = self._db.execute(
                "SELECT ob_count, ob_bytes, drop_total FROM head WHERE dev = ?", (dev,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise ChainStoreError(f"cannot read the outbox of {dev}: {exc}") from exc
        if row is None:
            return OutboxStats(count=0, size_bytes=0, dropped_total=0)
        return OutboxStats(count=row[0], size_bytes=row[1], dropped_total=row[2])
