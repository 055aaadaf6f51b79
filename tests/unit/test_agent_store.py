"""The agent's state file: chain head and outbox survive restarts and stay bounded."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from firmware_sim.agent.store import (
    ZERO_HASH,
    Builder,
    ChainHead,
    ChainStore,
    ChainStoreError,
    DropNotice,
    OutboxBoundsError,
)


def _builder(size: int = 10) -> tuple[list[tuple[ChainHead, DropNotice | None]], Builder]:
    seen: list[tuple[ChainHead, DropNotice | None]] = []

    def build(head: ChainHead, notice: DropNotice | None) -> bytes:
        seen.append((head, notice))
        return head.next_seq.to_bytes(4, "big") + head.prev[:4] + bytes(size)

    return seen, build


def _append(store: ChainStore, dev: str = "pack-1", size: int = 10) -> bytes:
    _, build = _builder(size)
    return store.append(dev, build, now_ms=1).data


def test_new_device_starts_at_zero(tmp_path: Path) -> None:
    """A device never seen has seq 0 and a zero prev hash."""
    with ChainStore(path=tmp_path / "s.db") as store:
        assert store.head("pack-1") == ChainHead(next_seq=0, prev=ZERO_HASH)


def test_append_advances_seq_and_prev(tmp_path: Path) -> None:
    """Each commit moves the head to seq + 1 and the SHA-256 of the message bytes."""
    with ChainStore(path=tmp_path / "s.db") as store:
        first = _append(store)
        second = _append(store)
        assert store.head("pack-1") == ChainHead(next_seq=2, prev=hashlib.sha256(second).digest())
        assert second[4:8] == hashlib.sha256(first).digest()[:4]


def test_head_survives_reopen_without_close(tmp_path: Path) -> None:
    """A store abandoned without close (as after kill -9) reopens at the committed head."""
    path = tmp_path / "s.db"
    crashed = ChainStore(path=path)
    data = _append(crashed)
    _append(crashed, dev="bus-1")
    reopened = ChainStore(path=path)
    assert reopened.head("pack-1") == ChainHead(next_seq=1, prev=hashlib.sha256(data).digest())
    assert [e.seq for e in reopened.pending("pack-1")] == [0]
    reopened.close()
    crashed.close()


def test_failed_build_changes_nothing(tmp_path: Path) -> None:
    """When signing raises, neither the head nor the outbox moves."""

    def broken(head: ChainHead, notice: DropNotice | None) -> bytes:
        raise ValueError("signer unavailable")

    with ChainStore(path=tmp_path / "s.db") as store:
        _append(store)
        with pytest.raises(ValueError, match="signer unavailable"):
            store.append("pack-1", broken, now_ms=2)
        assert store.head("pack-1").next_seq == 1
        assert store.stats("pack-1").count == 1


def test_ack_removes_only_that_message(tmp_path: Path) -> None:
    """An acknowledged message leaves the outbox; acking it twice reports False."""
    with ChainStore(path=tmp_path / "s.db") as store:
        for _ in range(3):
            _append(store)
        assert store.ack("pack-1", 1) is True
        assert store.ack("pack-1", 1) is False
        assert [e.seq for e in store.pending("pack-1")] == [0, 2]
        assert [e.seq for e in store.pending("pack-1", after=0)] == [2]
        assert store.stats("pack-1").count == 2


def test_full_outbox_drops_oldest_and_reports_it(tmp_path: Path) -> None:
    """Over max_messages the oldest unsent go, are counted, and the next build is told."""
    seen, build = _builder()
    with ChainStore(path=tmp_path / "s.db", max_messages=3) as store:
        for now in range(6):
            store.append("pack-1", build, now_ms=now)
        assert [e.seq for e in store.pending("pack-1")] == [3, 4, 5]
        assert store.stats("pack-1").dropped_total == 3
        notices = [notice for _, notice in seen]
        assert notices[:4] == [None] * 4
        assert notices[4] == DropNotice(first=0, last=0, count=1, total=1)
        assert notices[5] == DropNotice(first=1, last=1, count=1, total=2)


def test_byte_bound_drops_oldest(tmp_path: Path) -> None:
    """Over max_bytes the oldest unsent go; the newest message is always kept."""
    with ChainStore(path=tmp_path / "s.db", max_bytes=100) as store:
        for _ in range(5):
            _append(store, size=40)
        stats = store.stats("pack-1")
        assert stats.size_bytes <= 100
        assert stats.dropped_total == 3
        _append(store, size=500)
        assert [e.seq for e in store.pending("pack-1")] == [5]


def test_notice_accumulates_until_signed(tmp_path: Path) -> None:
    """Several drops between two messages are reported as one range with a count."""
    seen, build = _builder(40)
    with ChainStore(path=tmp_path / "s.db", max_bytes=130) as store:
        for now in range(3):
            store.append("pack-1", build, now_ms=now)
        big, big_build = _builder(100)
        store.append("pack-1", big_build, now_ms=9)
        store.append("pack-1", build, now_ms=10)
        assert big[0][1] == DropNotice(first=0, last=0, count=1, total=1)
        assert seen[-1][1] == DropNotice(first=1, last=2, count=2, total=3)


def test_devices_are_independent(tmp_path: Path) -> None:
    """Two devices in one store have separate chains and outboxes."""
    with ChainStore(path=tmp_path / "s.db") as store:
        _append(store, dev="a")
        _append(store, dev="a")
        _append(store, dev="b")
        assert store.head("a").next_seq == 2
        assert store.head("b").next_seq == 1
        assert store.stats("b").count == 1
        assert store.stats("c").count == 0


@pytest.mark.parametrize(("count", "size"), [(0, 10), (10, 0)])
def test_bounds_must_hold_a_message(tmp_path: Path, count: int, size: int) -> None:
    """Zero bounds are refused."""
    with pytest.raises(OutboxBoundsError, match="at least 1"):
        ChainStore(path=tmp_path / "s.db", max_messages=count, max_bytes=size)


def test_unopenable_file_is_a_store_error(tmp_path: Path) -> None:
    """A state path inside a missing directory is a ChainStoreError naming the path."""
    with pytest.raises(ChainStoreError, match="cannot open state file"):
        ChainStore(path=tmp_path / "missing" / "s.db")


def test_closed_store_errors_are_translated(tmp_path: Path) -> None:
    """sqlite3 errors after close come out as ChainStoreError."""
    store = ChainStore(path=tmp_path / "s.db")
    store.close()
    with pytest.raises(ChainStoreError, match="chain head"):
        store.head("a")
    with pytest.raises(ChainStoreError, match="outbox"):
        store.pending("a")
    with pytest.raises(ChainStoreError, match="outbox"):
        store.stats("a")
    with pytest.raises(ChainStoreError, match="acknowledge"):
        store.ack("a", 0)
    with pytest.raises(ChainStoreError, match="next message"):
        _append(store, dev="a")
    assert not isinstance(ChainStoreError("x"), sqlite3.Error)
