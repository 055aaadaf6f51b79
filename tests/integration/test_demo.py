"""The main job: `voltproof demo` runs the whole system, then its evidence verifies offline."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.support.cli_process import run_voltproof as voltproof
from tests.support.file_modes import assert_private

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def test_demo_runs_and_its_evidence_verifies(tmp_path: Path) -> None:
    """A short demo prints its URLs and keys, stops cleanly, and leaves verifiable evidence."""
    workdir = tmp_path / "demo"
    demo = voltproof(
        "demo", "--workdir", str(workdir), "--duration", "25", "--devices", "4",
        "--api-port", "0",
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "dashboard      http://127.0.0.1:" in demo.stdout
    assert "lessor key     vpk_" in demo.stdout
    # The lessor's witness ran as its own process and cosigned every checkpoint.
    witness_key = (workdir / "witness" / "witness-verifier-key.txt").read_text().strip()
    assert f"key {witness_key}" in demo.stdout
    assert "witness        http://127.0.0.1:" in demo.stdout
    with sqlite3.connect(workdir / "gateway" / "gateway.db") as db:
        signed, uncosigned = db.execute(
            "SELECT count(*), count(*) FILTER (WHERE size NOT IN "
            "(SELECT size FROM cosignatures WHERE witness = ?)) FROM checkpoints",
            (witness_key,),
        ).fetchone()
    assert signed >= 1
    assert uncosigned == 0
    # GB/T 32960 terminals of both editions streamed frames into the log over TCP.
    assert "gb/t 32960     tcp://127.0.0.1:" in demo.stdout
    with sqlite3.connect(workdir / "gateway" / "gateway.db") as db:
        frames = dict(
            db.execute(
                "SELECT substr(device, 1, 11), count(*) FROM leaves "
                "WHERE device LIKE 'LVPDEMO%' AND kind = 'telemetry' GROUP BY 1"
            ).fetchall()
        )
        # each frame a bus and a pack sample (the demo's frames carry every pack value)
        samples = dict(
            db.execute(
                "SELECT kind, count(*) FROM sample_blocks WHERE device LIKE 'LVPDEMO%' "
                "GROUP BY kind"
            ).fetchall()
        )
    assert frames.get("LVPDEMO2016", 0) >= 2
    assert frames.get("LVPDEMO2025", 0) >= 2
    assert samples == {"bus": sum(frames.values()), "pack": sum(frames.values())}
    # The demo checks a lessor's evidence offline itself before it says goodbye.
    assert "  asset:       pack-0000 (pack)" in demo.stdout
    assert "  VALID, COMPLETE, independently anchored and witnessed" in demo.stdout
    assert "checked against: ledger export" in demo.stdout
    assert (
        "  witnesses:   quorum 1 of 1 met on the bundle's checkpoint: lessor.demo/" in demo.stdout
    )
    assert f"--witness {workdir / 'witness' / 'witness-verifier-key.txt'}" in demo.stdout
    assert "voltproof bundle --workdir" in demo.stdout
    # It says what it injected and what the gateway made of each injection.
    assert "will inject at 20 s: attacks (forged_signature 1," in demo.stdout
    assert "what was injected, and what became of it:" in demo.stdout
    assert "attack forged_signature: 1 sent -> gateway counted 1 as bad_signature" in demo.stdout
    assert "FEWER than sent" not in demo.stdout
    assert not (workdir / "secrets" / "api-keys.json").exists()
    shown = re.findall(r"(?:operator|lessor) key +(vpk_\S+)", demo.stdout)
    assert len(shown) == 2
    assert not any(key.encode() in path.read_bytes() for key in shown for path in _files(workdir))
    assert_private(workdir)
    assert (workdir / "anchors-export.json").is_file()
    # An auditor replays the demo's whole log: roots, device index lines, chains, registry.
    audited = voltproof("audit", "--workdir", str(workdir), "--quiet")
    assert audited.returncode == 0, audited.stdout + audited.stderr

    bundle = tmp_path / "pack.bundle"
    made = voltproof(
        "bundle", "--workdir", str(workdir), "--asset", "pack-0000", "--out", str(bundle)
    )
    assert made.returncode == 0, made.stderr
    verified = voltproof(
        "verify", str(bundle),
        "--gateway-key", str(workdir / "gateway-verifier-key.txt"),
        "--anchors", str(workdir / "anchors-export.json"),
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("bundle:      voltproof-bundle/2")
    assert verified.stdout.rstrip().endswith("VALID, COMPLETE, independently anchored")
    # The lessor's witness alone (no anchor export) is an independent anchor; every message
    # of the live pack was proven within the late threshold.
    witnessed = voltproof(
        "verify", str(bundle), "--gateway-key", str(workdir / "gateway-verifier-key.txt"),
        "--witness", witness_key, "--json",
    )  # fmt: skip
    assert witnessed.returncode == 0, witnessed.stdout + witnessed.stderr
    facts = json.loads(witnessed.stdout)
    assert facts["verdict"] == "VALID, COMPLETE, witnessed"
    assert facts["timeliness"]["late"] == 0
    assert {c["device"] for c in facts["timeliness"]["chains"]} >= {"pack-0000"}
    report = voltproof("report", str(bundle), "--json")
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["asset"] == {"id": "pack-0000", "kind": "pack"}

    document = json.loads(bundle.read_text(encoding="utf-8"))
    origin, size, rest = document["checkpoint"].split("\n", 2)
    document["checkpoint"] = f"{origin}\n{int(size) + 1}\n{rest}"  # a rewritten checkpoint
    bad = tmp_path / "bad.bundle"
    bad.write_text(json.dumps(document), encoding="utf-8")
    refused = voltproof(
        "verify", str(bad), "--gateway-key", str(workdir / "gateway-verifier-key.txt"),
    )  # fmt: skip
    assert refused.returncode == 1
    assert "checkpoint" in refused.stdout + refused.stderr


def test_demo_offline_check_fails_under_a_foreign_gateway_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo's own offline check reports failure when the evidence does not verify."""
    import asyncio

    from ledger.keys import create_key_file
    from ledger.note import verifier_key
    from voltproof.demo import Demo, DemoOptions

    workdir = tmp_path / "demo"
    demo = voltproof(
        "demo", "--workdir", str(workdir), "--duration", "20", "--devices", "4",
        "--api-port", "0",
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout + demo.stderr
    # A verifier key of another gateway under the same name: the checkpoint no longer verifies.
    origin = (workdir / "gateway-verifier-key.txt").read_text(encoding="utf-8").split("+")[0]
    other = create_key_file(tmp_path / "other.key", name=origin)
    (workdir / "gateway-verifier-key.txt").write_text(
        verifier_key(origin, other.public_key) + "\n", encoding="utf-8"
    )
    options = DemoOptions(
        workdir=workdir, duration_s=None, devices=2, ledger="local", api_port=0,
        ageing_accel=1.0, seed=1,
    )  # fmt: skip
    assert asyncio.run(Demo(options).check_evidence()) is False
    said = capsys.readouterr().out
    assert "the evidence did NOT verify" in said
    assert "INVALID" in said


def test_demo_refuses_too_few_devices(tmp_path: Path) -> None:
    """A usage error exits 2 with a message."""
    result = voltproof("demo", "--workdir", str(tmp_path), "--devices", "1")
    assert result.returncode == 2
    assert "--devices must be at least 4" in result.stderr


def test_demo_on_an_evm_chain_verifies_against_the_chain(tmp_path: Path) -> None:
    """`demo --ledger evm` anchors on a real anvil node; the bundle verifies with --rpc."""
    import asyncio

    from tests.support.binaries import require_binary
    from voltproof.anvil import AnvilNode, find_anvil

    require_binary(
        str(find_anvil()) if find_anvil() else None, "anvil", "npm ci (at the repository root)"
    )
    workdir = tmp_path / "demo"
    demo = voltproof(
        "demo", "--workdir", str(workdir), "--duration", "25", "--devices", "4",
        "--api-port", "0", "--ledger", "evm",
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "  VALID, COMPLETE, independently anchored" in demo.stdout
    assert "checked against: evm rpc" in demo.stdout
    bundle = tmp_path / "bus.bundle"
    made = voltproof(
        "bundle", "--workdir", str(workdir), "--asset", "bus-0000", "--out", str(bundle)
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(bundle.read_text(encoding="utf-8"))["anchor"]["receipt"]["backend"] == "evm"

    async def verify_on_chain() -> subprocess.CompletedProcess[str]:
        # The demo stopped its node; the same chain comes back from anvil's state file.
        node = AnvilNode(state=workdir / "evm" / "anvil-state.json")
        await node.start()
        try:
            return await asyncio.to_thread(
                voltproof,
                "verify", str(bundle),
                "--gateway-key", str(workdir / "gateway-verifier-key.txt"),
                "--rpc", node.url,
            )  # fmt: skip
        finally:
            await node.stop()

    verified = asyncio.run(verify_on_chain())
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "checked against: evm rpc" in verified.stdout
