"""Evidence extraction from the gateway store, and the ``bundle`` / ``api`` commands."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import pytest

from gateway.evidence import EvidenceError, NotAnchoredError, UnknownAssetError, extract_evidence
from gateway.store import SqliteStore
from ledger.bundle import build_bundle, parse_bundle
from ledger.keys import load_key_file
from ledger.verify import verify_bundle
from tests.support.api_fleet import DAY0_MS, STEP_MS, Deployment, seed
from voltproof.cli import main
from voltproof.cli.options import parse_time


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """A seeded deployment shared by the module (read only)."""
    return asyncio.run(seed(tmp_path_factory.mktemp("evidence") / "deploy"))


def _verify(deployment: Deployment, data: bytes) -> tuple[int, bool]:
    gateway = load_key_file(deployment.settings.key_file)
    report = verify_bundle(parse_bundle(data), gateway_verifier_key=gateway.verifier_key)
    return report.messages, report.complete


async def _extract(deployment: Deployment, asset: str, from_ms: int, to_ms: int) -> bytes:
    operator = load_key_file(deployment.settings.operator_key_file).public_key
    async with await SqliteStore.open(deployment.settings.db_path) as store:
        extraction = await extract_evidence(
            store, asset_id=asset, from_ms=from_ms, to_ms=to_ms, operator_key=operator,
            anchor_db=deployment.anchor_db,
        )  # fmt: skip
    return build_bundle(extraction.bundle_input).to_bytes()


@pytest.mark.asyncio
async def test_middle_period_is_complete_with_boundaries(deployment: Deployment) -> None:
    """A period inside the data has boundary messages on both ends: complete and verified."""
    data = await _extract(deployment, "bus-2", DAY0_MS + 3 * STEP_MS, DAY0_MS + 9 * STEP_MS)
    assert _verify(deployment, data) == (6, True)
    chain = parse_bundle(data).chains[0]
    assert chain.before is not None
    assert chain.after is not None


@pytest.mark.asyncio
async def test_pack_follows_its_host_buses(deployment: Deployment) -> None:
    """A pack bundle over the swap holds both buses' chains, all verified."""
    data = await _extract(deployment, "pack-2", DAY0_MS + 10 * STEP_MS, DAY0_MS + 14 * STEP_MS)
    assert [c.device for c in parse_bundle(data).chains] == ["bus-1", "bus-2", "pack-2"]
    assert _verify(deployment, data) == (12, True)


@pytest.mark.asyncio
async def test_checkpoint_smaller_than_anchor_needs_consistency(deployment: Deployment) -> None:
    """An early period is proven against the smaller checkpoint plus a consistency proof."""
    data = await _extract(deployment, "bus-1", DAY0_MS, DAY0_MS + 2 * STEP_MS)
    bundle = parse_bundle(data)
    assert bundle.anchor.size == deployment.anchored_size
    assert bundle.checkpoint.splitlines()[1] == str(deployment.anchored_size // 2)
    assert bundle.anchor.consistency
    assert _verify(deployment, data) == (2, True)


@pytest.mark.asyncio
async def test_unknown_asset_and_bad_period(deployment: Deployment) -> None:
    """An unknown asset and an empty period are refused with the reason."""
    with pytest.raises(UnknownAssetError, match="no device 'nope' is registered"):
        await _extract(deployment, "nope", 0, 1)
    with pytest.raises(EvidenceError, match="period start 5 is not before its end 5"):
        await _extract(deployment, "bus-1", 5, 5)


@pytest.mark.asyncio
async def test_unanchored_store_refused(tmp_path: Path) -> None:
    """Without a final anchor there is nothing to prove against yet."""
    deployment = await seed(tmp_path / "deploy", anchor=False)
    with pytest.raises(NotAnchoredError, match="no checkpoint has a final anchor yet"):
        await _extract(deployment, "bus-1", 0, DAY0_MS * 2)


@pytest.mark.asyncio
async def test_messages_after_anchor_left_out(tmp_path: Path) -> None:
    """Messages newer than the anchored tree are left out and counted, not half-proven."""
    deployment = await seed(tmp_path / "deploy", extra_unanchored=2)
    operator = load_key_file(deployment.settings.operator_key_file).public_key
    async with await SqliteStore.open(deployment.settings.db_path) as store:
        extraction = await extract_evidence(
            store, asset_id="bus-1", from_ms=0, to_ms=DAY0_MS * 2, operator_key=operator
        )
    assert extraction.unanchored == 2
    bundle = build_bundle(extraction.bundle_input)
    assert bundle.anchor.local_export is None
    assert len(bundle.chains[0].messages) == 24


def test_parse_time_forms() -> None:
    """ISO dates, times with zones and Unix ms are accepted; anything else is refused."""
    assert parse_time("2026-01-01") == DAY0_MS
    assert parse_time("2026-01-01T01:00:00Z") == DAY0_MS + STEP_MS
    assert parse_time("2026-01-01T02:00:00+01:00") == DAY0_MS + STEP_MS
    assert parse_time(str(DAY0_MS)) == DAY0_MS
    with pytest.raises(argparse.ArgumentTypeError, match="neither ISO 8601"):
        parse_time("yesterday")


def test_bundle_command_writes_verifiable_file(
    deployment: Deployment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``voltproof bundle`` writes a bundle that ``voltproof verify`` accepts."""
    out = tmp_path / "b.json"
    period = ["--from", "2026-01-01T02:00:00Z", "--to", "2026-01-01T05:00:00Z"]
    code = main(
        [
            "bundle",
            "--asset",
            "pack-1",
            "--format",
            "1",
            *period,
            "--out",
            str(out),
            "--workdir",
            str(deployment.workdir),
        ]
    )
    assert code == 0
    assert "wrote" in capsys.readouterr().out
    assert _verify(deployment, out.read_bytes()) == (6, True)
    key = load_key_file(deployment.settings.key_file).verifier_key
    # v1: valid, never proven complete (no device index), so 0 only when both are allowed.
    assert main(["verify", str(out), "--gateway-key", key, "--allow-unanchored"]) == 3
    assert main(["verify", str(out), "--gateway-key", key, "--allow-unanchored",
                 "--allow-incomplete"]) == 0  # fmt: skip
    assert main(["verify", str(out), "--gateway-key", key]) == 3


def test_bundle_command_failures(
    deployment: Deployment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Usage errors exit 2, extraction failures exit 1, each with the reason."""
    base = ["bundle", "--out", str(tmp_path / "x.json"), "--workdir", str(deployment.workdir)]
    assert main([*base, "--asset", "ghost", "--format", "1"]) == 1
    assert "no device 'ghost' is registered" in capsys.readouterr().err
    assert main([*base, "--asset", "pack-1"]) == 0  # v2: the checkpoints carry the index
    assert "voltproof-bundle/2 pack pack-1" in capsys.readouterr().out
    assert main([*base, "--asset", "pack-1", "--no-hosts"]) == 2
    assert "--no-hosts is for --format 1" in capsys.readouterr().err
    assert main([*base, "--asset", "bus-1", "--from", "10", "--to", "5"]) == 2
    assert "--from (10) must be before --to (5)" in capsys.readouterr().err
    missing = ["bundle", "--asset", "bus-1", "--out", "x", "--workdir", str(tmp_path / "none")]
    assert main(missing) == 2
    assert "no gateway configuration" in capsys.readouterr().err


def test_api_admin_commands(
    deployment: Deployment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Keys, leases and transfers are managed from the command line."""
    workdir = ["--workdir", str(deployment.workdir)]
    assert main(["api", "keys", "create", "--role", "lessor", "--name", "cli-bank", "--json",
                 *workdir]) == 0  # fmt: skip
    created = json.loads(capsys.readouterr().out)
    assert created["key"].startswith("vpk_")
    assert main(["api", "leases", "add", "--asset", "bus-1", "--lessor", "cli-bank", "--from",
                 "2026-01-01", "--to", "2026-02-01", *workdir]) == 0  # fmt: skip
    assert "bus-1 to cli-bank" in capsys.readouterr().out
    assert main(["api", "leases", "list", "--json", *workdir]) == 0
    assert json.loads(capsys.readouterr().out)[-1]["lessor"] == "cli-bank"
    assert main(["api", "transfer", "--pack", "pack-1", "--to", "cli-bank", *workdir]) == 0
    assert "its whole history is theirs" in capsys.readouterr().out
    assert main(["api", "transfer", "--pack", "pack-1", "--to", "nobody", *workdir]) == 1
    assert "no API key named 'nobody'" in capsys.readouterr().err
    # Ids are checked against the registry: a bus is not a pack, an unknown id is refused.
    assert main(["api", "transfer", "--pack", "bus-1", "--to", "cli-bank", *workdir]) == 1
    assert "bus-1 is a bus, not a pack" in capsys.readouterr().err
    assert main(["api", "transfer", "--pack", "pack-9999", "--to", "cli-bank", *workdir]) == 1
    assert "no device 'pack-9999' is registered" in capsys.readouterr().err
    assert main(["api", "leases", "add", "--asset", "pack-9999", "--lessor", "cli-bank",
                 "--from", "2026-01-01", "--to", "2026-02-01", *workdir]) == 1  # fmt: skip
    assert "no device 'pack-9999' is registered" in capsys.readouterr().err
    assert main(["api", "leases", "add", "--asset", "bus-1", "--lessor", "cli-bank", "--from",
                 "2026-02-01", "--to", "2026-01-01", *workdir]) == 2  # fmt: skip
    assert "must be before" in capsys.readouterr().err
    assert main(["api", "keys", "create", "--role", "auditor", "--name", "a",
                 "--workdir", str(tmp_path / "none")]) == 2  # fmt: skip
    assert "no gateway configuration" in capsys.readouterr().err


def test_api_revocation_commands(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    """Keys are listed (never a secret) and revoked; leases ended; transfers listed with who
    made them; a second revocation, an unknown lease and a self-transfer fail with the reason."""
    workdir = ["--workdir", str(deployment.workdir)]
    assert main(["api", "keys", "create", "--role", "lessor", "--name", "rev-bank", "--json",
                 *workdir]) == 0  # fmt: skip
    secret = json.loads(capsys.readouterr().out)["key"]
    assert main(["api", "keys", "list", *workdir]) == 0
    listing = capsys.readouterr().out
    assert "rev-bank\tlessor" in listing
    assert secret not in listing
    assert main(["api", "leases", "add", "--asset", "bus-2", "--lessor", "rev-bank", "--from",
                 "2026-01-01", "--to", "2026-02-01", *workdir]) == 0  # fmt: skip
    lease_id = capsys.readouterr().out.split(":")[0].removeprefix("lease ")
    assert main(["api", "leases", "end", "--id", lease_id, *workdir]) == 0
    assert f"lease {lease_id} (bus-2 to rev-bank) ended at" in capsys.readouterr().out
    assert main(["api", "leases", "end", "--id", lease_id, *workdir]) == 1
    assert f"no running lease {lease_id}" in capsys.readouterr().err
    assert main(["api", "leases", "list", "--json", *workdir]) == 0
    ended = [x for x in json.loads(capsys.readouterr().out) if x["id"] == int(lease_id)]
    assert ended[0]["ended_at_ms"] is not None
    assert main(["api", "transfer", "--pack", "pack-2", "--to", "rev-bank", *workdir]) == 0
    capsys.readouterr()
    assert main(["api", "transfer", "--pack", "pack-2", "--to", "rev-bank", *workdir]) == 1
    assert "owns pack-2 already" in capsys.readouterr().err
    assert main(["api", "transfers", "list", "--pack", "pack-2", "--json", *workdir]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["to"], row["by"]) == ("rev-bank", "operator (cli)")
    assert main(["api", "keys", "revoke", "--name", "rev-bank", *workdir]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["api", "keys", "revoke", "--name", "rev-bank", *workdir]) == 1
    assert "no live API key named 'rev-bank'" in capsys.readouterr().err
    assert main(["api", "keys", "list", "--json", *workdir]) == 0
    keys = {k["name"]: k for k in json.loads(capsys.readouterr().out)}
    assert keys["rev-bank"]["revoked_at_ms"] is not None
    assert "key" not in keys["rev-bank"]
