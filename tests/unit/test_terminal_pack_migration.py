"""Schema version 6: a store written before terminals had pack blocks gets them from the frames.

A store is written by today's code (agents' messages and a GB/T 32960 terminal's frames of the
independent rtm-con encoder, one of them without a valid SoC, one with an alarm), then rewound
to version 5 as that version left it (``tests.support.store_versions``): no terminal pack
block, no pack summary, no alarm of a terminal. Reopening it migrates: every table that
holds samples is then what today's code writes at intake, and ``gateway check`` finds the
store clean.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from gateway.audit import audit_store
from gateway.store import SqliteReader, SqliteStore
from gateway.store.migrate import LATEST_VERSION
from ledger.keys import generate_seed, public_key_from_seed
from tests.support.store_contract import fill
from tests.support.store_versions import rewind_sample_tables
from tests.support.terminal_frames import MIXED_READINGS, VIN, commit_frames, enroll_terminal

Derived = tuple[list[tuple[object, ...]], list[tuple[object, ...]], list[tuple[object, ...]]]


async def write_store(path: Path) -> list[int]:
    """Agents' messages and the terminal's frames, written by today's code; the frames' leaves."""
    async with await SqliteStore.open(path) as store:
        filled = await fill(store)
        await enroll_terminal(filled.registry)
        return await commit_frames(store, MIXED_READINGS)


def derived(path: Path) -> Derived:
    """Every sample block, summary and alarm (without its row id), in a fixed order."""
    with sqlite3.connect(path) as db:
        blocks = db.execute(
            "SELECT leaf_index, kind, device, t_ms, last_ms, dt_ms, n, columns FROM sample_blocks "
            "ORDER BY leaf_index, kind"
        ).fetchall()
        summaries = db.execute(
            "SELECT leaf_index, kind, stats, host FROM sample_summaries ORDER BY leaf_index, kind"
        ).fetchall()
        alarms = db.execute(
            "SELECT device, t_ms, level, flags, source, detail, leaf_index FROM alarms "
            "ORDER BY leaf_index, device"
        ).fetchall()
    return blocks, summaries, alarms


async def sample_problems(path: Path) -> list[tuple[str, int | None]]:
    """Open the store (which migrates it), then what ``gateway check`` finds in its samples
    (the checkpoints of :func:`~tests.support.store_contract.fill` are no signed notes)."""
    async with await SqliteStore.open(path):
        pass
    async with await SqliteReader.open(path) as reader:
        report = await audit_store(reader, origin="test", key_name="gateway",
                                   public_key=public_key_from_seed(generate_seed()))  # fmt: skip
    return [
        (problem.code, problem.leaf_index)
        for problem in report.problems
        if problem.table not in {"checkpoints", "merkle_nodes"}
    ]


def test_version_6_gives_stored_terminal_leaves_their_pack_blocks(tmp_path: Path) -> None:
    """Rewound to version 5 and reopened: the pack blocks, summaries and alarms of the
    terminal's leaves are back, equal to what intake writes, and the store checks clean."""
    path = tmp_path / "gateway.db"
    leaves = asyncio.run(write_store(path))
    written = derived(path)
    packs = [(row[0], row[2]) for row in written[0] if row[1] == "pack" and row[2] == VIN]
    assert packs == [(leaves[k], VIN) for k in (0, 2, 3, 4)]
    assert [(row[0], row[2], row[6]) for row in written[2] if row[0] == VIN] == [
        (VIN, 3, leaves[3]),
    ]  # fmt: skip

    rewind_sample_tables(path, 5)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT max(version) FROM schema_version").fetchone() == (5,)
        kinds = db.execute(
            "SELECT kind, count(*) FROM sample_blocks WHERE device = ? GROUP BY kind", (VIN,)
        ).fetchall()
        summaries = db.execute("SELECT count(*) FROM sample_summaries").fetchone()
        alarms = db.execute("SELECT count(*) FROM alarms WHERE device = ?", (VIN,)).fetchone()
        columns = [row[1] for row in db.execute("PRAGMA table_info(sample_summaries)")]
    assert kinds == [("bus", 5)]
    assert summaries == (len(written[1]) - 4,)
    assert alarms == (0,)
    assert columns == ["leaf_index", "stats", "host"]

    assert asyncio.run(sample_problems(path)) == []
    assert LATEST_VERSION == 6
    assert derived(path) == written


def test_version_6_skips_a_terminal_leaf_that_does_not_decode(tmp_path: Path) -> None:
    """A stored terminal leaf whose frame no longer decodes (an edited store) gets no pack
    block: the migration completes, and ``gateway check`` names the leaf."""
    path = tmp_path / "gateway.db"
    leaves = asyncio.run(write_store(path))
    rewind_sample_tables(path, 5)
    with sqlite3.connect(path) as db:
        (leaf,) = db.execute(
            "SELECT cose FROM leaves WHERE leaf_index = ?", (leaves[0],)
        ).fetchone()
        damaged = bytes(leaf)[:-1] + bytes([leaf[-1] ^ 0xFF])  # the frame's check code
        db.execute("UPDATE leaves SET cose = ? WHERE leaf_index = ?", (damaged, leaves[0]))

    problems = asyncio.run(sample_problems(path))
    assert ("leaf_undecodable", leaves[0]) in problems
    blocks = derived(path)[0]
    assert [row[1] for row in blocks if row[0] == leaves[0]] == ["bus"]
    assert [row[1] for row in blocks if row[0] == leaves[2]] == ["bus", "pack"]
