"""Tampering with a gateway store is caught by ``voltproof gateway check`` and ``voltproof verify``.

Each test edits one fact of a genuinely populated store with plain SQL (what someone with
write access to the database file can do) and checks that the self-check names the problem
(code, table, leaf, device, seq) and, where the tamper reaches the evidence, that the
bundle built from the tampered store no longer verifies.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.audit import CheckReport, SelfCheckError, check_store
from gateway.store.blocks import SUMMARY_LAYOUT
from ledger.keys import load_key_file
from ledger.merkle import hash_leaf
from tests.support.gateway_world import Deployment
from tests.support.store_world import (
    build_deployment,
    change_stored_sample,
    first_leaf,
    opened,
    with_changed_voltage,
)
from voltproof.cli import main

pytestmark = pytest.mark.integration

ASSET = "pack-0000"


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    """Three enrolled packs, four messages each, two checkpoints, one local anchor."""
    return build_deployment(tmp_path / "gw")


def check(deployment: Deployment) -> CheckReport:
    """Run the self-check over the deployment's store and anchor table."""
    settings = deployment.settings
    key = load_key_file(settings.key_file)
    return check_store(
        settings.db_path,
        origin=settings.origin,
        key_name=key.name,
        public_key=key.public_key,
        anchors_path=settings.data_dir / "anchors.db",
    )


def verify_bundle(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Build the asset's bundle with ``voltproof bundle`` and check it with ``voltproof verify``."""
    workdir = deployment.workdir
    out = workdir / "asset.bundle"
    # --format 1: the store world's checkpoints carry no device index line (v2 refuses them)
    built = main(["bundle", "--asset", ASSET, "--workdir", str(workdir), "--out", str(out),
                  "--format", "1"])  # fmt: skip
    capsys.readouterr()
    if built != 0:
        return built, "bundle not built"
    key = load_key_file(deployment.settings.key_file).verifier_key
    # --allow-incomplete: a v1 bundle up to now has no `after` message, so its end is never
    # proven; the exit code then says valid or not, the output says complete or not.
    code = main(
        ["verify", str(out), "--gateway-key", key, "--anchors", str(workdir / "anchors.json"),
         "--allow-incomplete"]
    )  # fmt: skip
    printed = capsys.readouterr()
    return code, printed.out + printed.err


def test_untouched_store_is_clean(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store written by the pipeline passes every check and its bundle verifies."""
    report = check(deployment)
    assert report.problems == ()
    assert report.counts == {
        "anchors": 1,
        "checkpoints": 2,
        "devices": 3,
        "leaves": 15,
        "samples": 120,
        "telemetry_leaves": 12,
    }
    assert verify_bundle(deployment, capsys)[0] == 0


def test_cli_exit_codes_and_json(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    """``voltproof gateway check`` exits 0 on a clean store, 1 naming each problem."""
    workdir = str(deployment.workdir)
    assert main(["gateway", "check", "--workdir", workdir]) == 0
    assert capsys.readouterr().out.strip().endswith("clean")
    with opened(deployment.settings.db_path) as db:
        change_stored_sample(db, first_leaf(db, ASSET), "soc", 0, wire=990)
    assert main(["gateway", "check", "--config", str(deployment.config), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert [(p["code"], p["table"], p["device"], p["seq"]) for p in report["problems"]] == [
        ("sample_mismatch", "sample_blocks", ASSET, 0)
    ]
    assert main(["gateway", "--workdir", workdir, "check"]) == 1
    assert "sample_mismatch: table sample_blocks, leaf 3, device pack-0000, seq 0" in (
        capsys.readouterr().out
    )


def test_cli_reports_a_missing_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A deployment without a database is an error (exit 1), not a clean report."""
    deployment = build_deployment(tmp_path / "gw")
    deployment.settings.db_path.rename(tmp_path / "moved.db")
    assert main(["gateway", "check", "--workdir", str(deployment.workdir)]) == 1
    assert "no database at" in capsys.readouterr().err
    with pytest.raises(SelfCheckError, match="no database at"):
        check(deployment)


def test_changed_sample_value_in_the_signed_message(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sample value changed inside the stored message breaks its hash, signature and root."""
    with opened(deployment.settings.db_path) as db:
        index = first_leaf(db, ASSET, seq=1)
        (cose,) = db.execute("SELECT cose FROM leaves WHERE leaf_index = ?", (index,)).fetchone()
        db.execute(
            "UPDATE leaves SET cose = ? WHERE leaf_index = ?",
            (with_changed_voltage(cose, 700.0), index),
        )
    report = check(deployment)
    assert {"message_hash_mismatch", "node_mismatch", "leaf_signature"} <= report.codes()
    assert "checkpoint_root_mismatch" in report.codes()
    assert "anchor_root_mismatch" in report.codes()
    signature = next(p for p in report.problems if p.code == "leaf_signature")
    assert (signature.leaf_index, signature.device, signature.seq) == (index, ASSET, 1)
    code, out = verify_bundle(deployment, capsys)
    assert code == 1
    assert "INVALID" in out


def test_changed_sample_row(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    """A decoded sample that differs from its signed message is named (table, leaf, seq).

    The bundle is built from the signed bytes, not from the decoded rows, so the tamper
    cannot reach the evidence: the bundle still verifies.
    """
    with opened(deployment.settings.db_path) as db:
        index = first_leaf(db, ASSET, seq=2)
        change_stored_sample(db, index, "voltage_v", 0, wire=10)
    (problem,) = check(deployment).problems
    assert (problem.code, problem.table, problem.leaf_index, problem.seq) == (
        "sample_mismatch",
        "sample_blocks",
        index,
        2,
    )
    assert "sample 0: voltage_v is 1.0 in sample_blocks" in problem.detail
    assert verify_bundle(deployment, capsys)[0] == 0


def test_deleted_message(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    """A deleted message leaves a hole in the leaves, its chain and the bundle's completeness."""
    with opened(deployment.settings.db_path) as db:
        index = first_leaf(db, ASSET, seq=1)
        db.execute("DELETE FROM leaves WHERE leaf_index = ?", (index,))
        db.execute("DELETE FROM sample_blocks WHERE leaf_index = ?", (index,))
    report = check(deployment)
    missing = next(p for p in report.problems if p.code == "leaf_missing")
    assert missing.leaf_index == index
    gap = next(p for p in report.problems if p.code == "chain_gap_unrecorded")
    assert (gap.device, gap.seq, gap.table) == (ASSET, 1, "chain_gaps")
    # What is left still verifies, but the chain names the hole: the bundle is incomplete.
    code, out = verify_bundle(deployment, capsys)
    assert code == 0
    assert f"asset {ASSET} " in out
    assert "seq 0..3, received 3/4, missing 1..1" in out
    assert "INCOMPLETE" in out


def test_rewritten_checkpoint(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    """A checkpoint whose root was rewritten fails its signature and the recomputed root."""
    with opened(deployment.settings.db_path) as db:
        size, root, note = db.execute(
            "SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        fake = hash_leaf(b"another history")
        new_note = note.replace(base64.b64encode(root).decode(), base64.b64encode(fake).decode(), 1)
        db.execute(
            "UPDATE checkpoints SET root = ?, note = ? WHERE size = ?", (fake, new_note, size)
        )
    report = check(deployment)
    codes = {(p.code, p.size) for p in report.problems}
    assert ("checkpoint_signature", size) in codes
    assert ("checkpoint_root_mismatch", size) in codes
    assert ("checkpoint_inconsistent", size) in codes
    code, out = verify_bundle(deployment, capsys)
    assert code == 1
    assert "INVALID" in out


def test_changed_merkle_node(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    """A Merkle node changed in place is recomputed from the leaves and named."""
    with opened(deployment.settings.db_path) as db:
        index = first_leaf(db, ASSET, seq=0)
        sibling = (index >> 1) ^ 1
        db.execute(
            "UPDATE merkle_nodes SET hash = ? WHERE level = 1 AND idx = ?",
            (hash_leaf(b"forged"), sibling),
        )
    (problem,) = check(deployment).problems
    assert (problem.code, problem.table, problem.leaf_index) == (
        "node_mismatch",
        "merkle_nodes",
        sibling << 1,
    )
    assert f"node (level 1, index {sibling})" in problem.detail
    code, out = verify_bundle(deployment, capsys)
    assert code == 1
    assert "INVALID" in out


def test_changed_summary(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    """An operator raising a block summary's lowest state of charge (what a year chart
    draws) is named with the column; the evidence, the signed bytes, is untouched."""
    with opened(deployment.settings.db_path) as db:
        index = first_leaf(db, ASSET, seq=1)
        (stats,) = db.execute(
            "SELECT stats FROM sample_summaries WHERE leaf_index = ?", (index,)
        ).fetchone()
        layout = struct.Struct("<" + "".join(c for _, *codes in SUMMARY_LAYOUT["pack"]
                                             for c in codes))  # fmt: skip
        values = list(layout.unpack(stats))
        soc_min = 3 * [name for name, *_ in SUMMARY_LAYOUT["pack"]].index("soc")
        values[soc_min] = 1000
        db.execute("UPDATE sample_summaries SET stats = ? WHERE leaf_index = ?",
                   (layout.pack(*values), index))  # fmt: skip
    (problem,) = check(deployment).problems
    assert (problem.code, problem.table, problem.leaf_index, problem.device, problem.seq) == (
        "summary_mismatch", "sample_summaries", index, ASSET, 1,
    )  # fmt: skip
    assert "soc min is 1000 in sample_summaries, the signed samples give " in problem.detail
    assert verify_bundle(deployment, capsys)[0] == 0


Tamper = Callable[[Path], None]


def _sql(*statements: str) -> Tamper:
    def tamper(db_path: Path) -> None:
        with opened(db_path) as db:
            for statement in statements:
                db.execute(statement)

    return tamper


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        pytest.param(
            _sql("UPDATE leaves SET message_hash = zeroblob(32) WHERE leaf_index = 5"),
            {"message_hash_mismatch", "chain_link_broken"},
            id="message-hash",
        ),
        pytest.param(
            _sql("UPDATE leaves SET seq = 9 WHERE device = 'pack-0001' AND seq = 3"),
            {"leaf_columns_mismatch", "chain_gap_unrecorded", "chain_head_mismatch"},
            id="seq-column",
        ),
        pytest.param(
            _sql("UPDATE chain_heads SET seq = 2 WHERE device = 'pack-0002'"),
            {"chain_head_mismatch"},
            id="chain-head",
        ),
        pytest.param(
            _sql(
                "INSERT INTO chain_heads (device, seq, message_hash) "
                "VALUES ('pack-9999', 0, zeroblob(32))"
            ),
            {"chain_head_orphan"},
            id="orphan-head",
        ),
        pytest.param(
            _sql("UPDATE device_keys SET public_key = zeroblob(32) WHERE device = 'pack-0001'"),
            {"leaf_signature"},
            id="device-key",
        ),
        pytest.param(
            _sql("UPDATE device_keys SET from_seq = 100 WHERE device = 'pack-0001'"),
            {"leaf_no_key"},
            id="key-range",
        ),
        pytest.param(
            _sql("DELETE FROM sample_blocks WHERE leaf_index = 3"),
            {"sample_count_mismatch"},
            id="sample-block-deleted",
        ),
        pytest.param(
            _sql("UPDATE sample_blocks SET leaf_index = 99 WHERE leaf_index = 3"),
            {"sample_count_mismatch", "sample_orphan"},
            id="sample-moved",
        ),
        pytest.param(
            _sql("UPDATE sample_blocks SET n = 9, last_ms = last_ms - dt_ms WHERE leaf_index = 3"),
            {"sample_count_mismatch"},
            id="sample-count-changed",
        ),
        pytest.param(
            _sql("UPDATE sample_blocks SET t_ms = t_ms + 1 WHERE leaf_index = 3"),
            {"sample_mismatch"},
            id="sample-time-changed",
        ),
        pytest.param(
            _sql("UPDATE sample_blocks SET columns = substr(columns, 1, 10) WHERE leaf_index = 3"),
            {"sample_mismatch"},
            id="sample-block-truncated",
        ),
        pytest.param(
            _sql("UPDATE sample_summaries SET host = 'bus-9999' WHERE leaf_index = 3"),
            {"summary_mismatch"},
            id="summary-host",
        ),
        pytest.param(
            _sql("DELETE FROM sample_summaries WHERE leaf_index = 3"),
            {"summary_missing"},
            id="summary-deleted",
        ),
        pytest.param(
            _sql("UPDATE sample_summaries SET leaf_index = 99 WHERE leaf_index = 3"),
            {"summary_missing", "summary_orphan"},
            id="summary-moved",
        ),
        pytest.param(
            _sql("UPDATE sample_summaries SET stats = substr(stats, 1, 10) WHERE leaf_index = 3"),
            {"summary_mismatch"},
            id="summary-truncated",
        ),
        pytest.param(
            _sql("UPDATE merkle_size SET size = 17"),
            {"leaf_missing", "node_missing"},
            id="size-grown",
        ),
        pytest.param(
            _sql("UPDATE merkle_size SET size = 14"),
            {"leaf_beyond_size", "node_beyond_size", "checkpoint_beyond_log"},
            id="size-shrunk",
        ),
        pytest.param(
            _sql("DELETE FROM merkle_nodes WHERE level = 2 AND idx = 0"),
            {"node_missing"},
            id="node-deleted",
        ),
        pytest.param(
            _sql("UPDATE checkpoints SET root = zeroblob(32) WHERE size = 9"),
            {"checkpoint_note_mismatch", "checkpoint_root_mismatch"},
            id="checkpoint-row",
        ),
        pytest.param(
            _sql("UPDATE leaves SET cose = x'd2' WHERE leaf_index = 4"),
            {"leaf_undecodable", "message_hash_mismatch", "node_mismatch"},
            id="undecodable-leaf",
        ),
    ],
)
def test_each_tamper_is_named(deployment: Deployment, tamper: Tamper, expected: set[str]) -> None:
    """Every kind of edit to the log, chains, keys, samples or checkpoints has its own code."""
    tamper(deployment.settings.db_path)
    report = check(deployment)
    assert expected <= report.codes(), [p.describe() for p in report.problems]


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        pytest.param(
            "UPDATE anchors SET root = zeroblob(32)",
            {"anchor_entry_hash", "anchor_root_mismatch"},
            id="root",
        ),
        pytest.param(
            "UPDATE anchors SET signature = zeroblob(64)", {"anchor_signature"}, id="signature"
        ),
        pytest.param(
            "UPDATE anchors SET sequence = 2",
            {"anchor_sequence", "anchor_entry_hash"},
            id="sequence",
        ),
        pytest.param(
            "UPDATE anchors SET prev_hash = randomblob(32)",
            {"anchor_chain", "anchor_entry_hash"},
            id="chain",
        ),
        pytest.param("UPDATE anchor_meta SET value = zeroblob(32)", {"anchor_owner"}, id="owner"),
    ],
)
def test_anchor_table_tampering(deployment: Deployment, statement: str, expected: set[str]) -> None:
    """The local anchor table's chain, entry hashes, signatures and roots are each checked."""
    with opened(deployment.settings.data_dir / "anchors.db") as db:
        db.execute(statement)
    report = check(deployment)
    assert report.codes() == expected
    assert all(p.table == "anchors" for p in report.problems)
