"""Tampering with a GB/T 32960 terminal's pack samples is caught by ``voltproof gateway check``.

The store is genuinely populated: frames of the independent rtm-con encoder through the real
listener (``tests.support.terminal_world``), checkpoints signed and anchored. Each test edits
the pack block or pack summary of one frame's leaf with plain SQL, as someone with write
access to the database file can, and the self-check names it: code, table, leaf, device, seq.
The bus block beside it is left alone and stays clean.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.audit import CheckReport, check_store
from ledger.keys import load_key_file
from tests.support.store_world import change_stored_sample, first_leaf, opened
from tests.support.terminal_world import (
    FRAMES,
    VIN_2016,
    TerminalWorld,
    build_terminal_world,
    reading,
)
from voltproof.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture
def world(tmp_path: Path) -> TerminalWorld:
    """Three terminals, six frames each, each frame a bus and a pack block; signed, anchored."""
    return build_terminal_world(tmp_path / "gw")


def check(world: TerminalWorld) -> CheckReport:
    """Run the self-check over the world's store and anchor table."""
    settings = world.deployment.settings
    key = load_key_file(settings.key_file)
    return check_store(
        settings.db_path, origin=settings.origin, key_name=key.name, public_key=key.public_key,
        anchors_path=settings.data_dir / "anchors.db",
    )  # fmt: skip


def test_untouched_terminal_store_is_clean(world: TerminalWorld) -> None:
    """Both blocks of every frame are checked against the frame, and agree."""
    report = check(world)
    assert report.problems == ()
    assert report.counts["telemetry_leaves"] == 3 * FRAMES
    assert report.counts["samples"] == 2 * 3 * FRAMES  # a bus and a pack sample per frame


def test_changed_pack_value_is_named(
    world: TerminalWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pack state of charge raised in the store (what the fleet's SoC bands count) is named
    with its column, its leaf, the bus and the frame's seq; ``gateway check`` exits 1."""
    with opened(world.deployment.settings.db_path) as db:
        index = first_leaf(db, VIN_2016, seq=2)
        change_stored_sample(db, index, "soc", 0, wire=990, kind="pack")
    (problem,) = check(world).problems
    assert (problem.code, problem.table, problem.leaf_index, problem.device, problem.seq) == (
        "sample_mismatch", "sample_blocks", index, VIN_2016, 2,
    )  # fmt: skip
    said = reading(2).soc / 100
    assert problem.detail == f"sample 0: soc is 0.99 in sample_blocks, the frame says {said}"
    assert main(["gateway", "check", "--workdir", str(world.deployment.workdir), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [(p["code"], p["leaf_index"], p["device"]) for p in report["problems"]] == [
        ("sample_mismatch", index, VIN_2016),
    ]  # fmt: skip


Tamper = Callable[[sqlite3.Connection, int], None]


def _run(statement: str) -> Tamper:
    def tamper(db: sqlite3.Connection, index: int) -> None:
        db.execute(statement, (index,))

    return tamper


@pytest.mark.parametrize(
    ("tamper", "expected", "detail"),
    [
        pytest.param(
            _run("DELETE FROM sample_blocks WHERE kind = 'pack' AND leaf_index = ?"),
            {"sample_count_mismatch"}, "no pack sample block, the message holds 1 pack samples",
            id="pack-block-deleted",
        ),
        pytest.param(
            _run("UPDATE sample_blocks SET leaf_index = 9999 "
                 "WHERE kind = 'pack' AND leaf_index = ?"),
            {"sample_count_mismatch", "sample_orphan"},
            "a pack sample block points to leaf 9999, which is no stored telemetry",
            id="pack-block-moved",
        ),
        pytest.param(
            _run("UPDATE sample_blocks SET t_ms = t_ms + 1000, last_ms = last_ms + 1000 "
                 "WHERE kind = 'pack' AND leaf_index = ?"),
            {"sample_mismatch"}, "t_ms is", id="pack-block-time",
        ),
        pytest.param(
            _run("DELETE FROM sample_summaries WHERE kind = 'pack' AND leaf_index = ?"),
            {"summary_missing"}, "no pack sample summary", id="pack-summary-deleted",
        ),
        pytest.param(
            _run("UPDATE sample_summaries SET stats = (SELECT s.stats FROM sample_summaries AS s "
                 "WHERE s.kind = 'pack' AND s.leaf_index = sample_summaries.leaf_index - 1) "
                 "WHERE kind = 'pack' AND leaf_index = ?"),
            {"summary_mismatch"}, "in sample_summaries, the frame's samples give",
            id="pack-summary-of-another-frame",
        ),
    ],
)  # fmt: skip
def test_each_pack_tamper_is_named(
    world: TerminalWorld, tamper: Tamper, expected: set[str], detail: str
) -> None:
    """Every edit of a terminal's pack block or summary has its code and names the pack."""
    with opened(world.deployment.settings.db_path) as db:
        tamper(db, first_leaf(db, VIN_2016, seq=3))
    report = check(world)
    assert report.codes() == expected, [p.describe() for p in report.problems]
    assert any(detail in p.detail for p in report.problems), [p.detail for p in report.problems]


def test_pack_block_for_a_frame_without_pack_values(world: TerminalWorld) -> None:
    """A frame whose SoC is marked invalid has no pack sample: a pack block added for it (the
    previous frame's, copied) is named as one its frame does not give."""
    world.send(VIN_2016, [replace(reading(FRAMES), soc=255)])
    assert check(world).problems == ()
    with opened(world.deployment.settings.db_path) as db:
        index = first_leaf(db, VIN_2016, seq=FRAMES)
        assert db.execute(
            "SELECT kind FROM sample_blocks WHERE leaf_index = ?", (index,)
        ).fetchall() == [("bus",)]
        db.execute(
            "INSERT INTO sample_blocks (leaf_index, device, kind, t_ms, last_ms, dt_ms, n, "
            "columns) SELECT ?, device, kind, t_ms + 10000, last_ms + 10000, dt_ms, n, columns "
            "FROM sample_blocks WHERE kind = 'pack' AND leaf_index = ?",
            (index, first_leaf(db, VIN_2016, seq=FRAMES - 1)),
        )
    (problem,) = check(world).problems
    assert (problem.code, problem.table, problem.leaf_index, problem.seq) == (
        "sample_mismatch", "sample_blocks", index, FRAMES,
    )  # fmt: skip
    assert problem.detail == "a pack block is stored, the message gives no pack samples"
