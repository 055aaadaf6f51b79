"""``voltproof verify`` and ``voltproof report`` on bundle files: exit codes and output."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from ledger.bundle import Bundle
from ledger.report import compute_report
from ledger.verify import check_messages
from tests.support.bundle_world import flip, pack_world, with_message
from voltproof.cli import main


def write(tmp_path: Path, bundle: Bundle) -> Path:
    """Write ``bundle`` to a file and return its path."""
    path = tmp_path / "bundle.json"
    path.write_bytes(bundle.to_bytes())
    return path


def test_verify_valid_v1_bundle_is_never_proven_complete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A valid v1 bundle: summary first; exit 3 at best, since without a device index it cannot
    prove it holds every chain (the downgrade an operator would use), 0 only when allowed."""
    world, bundle = pack_world()
    anchors = tmp_path / "anchors.json"
    anchors.write_text(json.dumps(world.export()), encoding="utf-8")
    args = ["verify", str(write(tmp_path, bundle)), "--gateway-key", world.gateway_key]
    assert main([*args, "--anchors", str(anchors)]) == 3
    out = capsys.readouterr().out
    assert out.startswith("bundle:      voltproof-bundle/1\nasset:       pack-1 (pack)\n")
    assert "asset pack-1 " in out
    assert "seq 1..4, received 4/4, missing none" in out
    assert "completeness: NOT provable: voltproof-bundle/1 carries no device index" in out
    assert out.rstrip().endswith("VALID but INCOMPLETE")
    assert main([*args, "--anchors", str(anchors), "--allow-incomplete"]) == 0
    capsys.readouterr()
    # The asset's own chain left out: still exit 3, never "complete".
    emptied = tmp_path / "emptied.json"
    document = json.loads(write(tmp_path, bundle).read_text(encoding="utf-8"))
    document["chains"] = []
    emptied.write_text(json.dumps(document), encoding="utf-8")
    assert main(["verify", str(emptied), "--gateway-key", world.gateway_key,
                 "--anchors", str(anchors)]) == 3  # fmt: skip
    capsys.readouterr()
    assert main(args) == 3
    out = capsys.readouterr().out
    assert "checked against: NOT independently checked (embedded export)" in out
    assert out.rstrip().endswith("VALID but INCOMPLETE and anchor NOT independently checked")
    assert main([*args, "--allow-unanchored", "--allow-incomplete"]) == 0


def test_verify_json_and_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints the result; the gateway key may come from a file; --anchors is used."""
    world, bundle = pack_world()
    key_file = tmp_path / "gateway.vkey"
    key_file.write_text(world.gateway_key + "\n", encoding="utf-8")
    anchors = tmp_path / "anchors.json"
    anchors.write_text(json.dumps(world.export()), encoding="utf-8")
    args = ["verify", str(write(tmp_path, bundle)), "--gateway-key", str(key_file)]
    assert main([*args, "--anchors", str(anchors), "--json"]) == 3
    result = json.loads(capsys.readouterr().out)
    assert result["valid"] is True
    assert result["complete"] is False
    assert result["completeness_note"].startswith("voltproof-bundle/1 carries no device index")
    assert result["anchor"]["source"] == "ledger export"
    assert result["chains"][0]["expected"] == 4


def test_verify_invalid_bundle_exits_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A corrupted bundle exits 1 and names the failure."""
    world, bundle = pack_world()
    leaf = bundle.chains[0].messages[0]
    bad = with_message(bundle, 0, replace(leaf, proof=(flip(leaf.proof[0], 0), *leaf.proof[1:])))
    assert main(["verify", str(write(tmp_path, bad)), "--gateway-key", world.gateway_key]) == 1
    err = capsys.readouterr().err
    assert "INVALID: InclusionProofError: message at leaf 2 (pack-1 seq 1)" in err


def test_verify_unparsable_bundle_exits_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that is not a bundle exits 1 with the reason."""
    path = tmp_path / "bundle.json"
    path.write_text("{}", encoding="utf-8")
    assert main(["verify", str(path), "--gateway-key", "k+00000000+AA=="]) == 1
    assert "is not 'voltproof-bundle/1'" in capsys.readouterr().err


def test_missing_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bundle path that cannot be read exits 2."""
    assert main(["verify", str(tmp_path / "nope"), "--gateway-key", "k"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_missing_gateway_key_is_a_usage_error() -> None:
    """verify without --gateway-key is refused by the parser with exit 2."""
    with pytest.raises(SystemExit, match="2"):
        main(["verify", "bundle.json"])


def test_report_json_matches_library(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """voltproof report --json prints exactly compute_report(...).to_json() of the bundle."""
    _, bundle = pack_world()
    assert main(["report", str(write(tmp_path, bundle)), "--json"]) == 0
    expected = compute_report(
        check_messages(bundle).payloads, asset_id="pack-1", asset_kind="pack",
        from_ms=bundle.from_ms, to_ms=bundle.to_ms,
    ).to_json()  # fmt: skip
    assert capsys.readouterr().out == expected + "\n"


def test_report_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """voltproof report prints a readable summary."""
    _, bundle = pack_world()
    assert main(["report", str(write(tmp_path, bundle))]) == 0
    assert "Condition report: pack pack-1" in capsys.readouterr().out


def test_report_refuses_bad_signatures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The report is computed only from messages whose signatures verify."""
    _, bundle = pack_world()
    leaf = bundle.chains[0].messages[0]
    bad = with_message(bundle, 0, replace(leaf, data=flip(leaf.data, len(leaf.data) - 1)))
    assert main(["report", str(write(tmp_path, bad))]) == 1
    assert "MessageSignatureError" in capsys.readouterr().err


def test_incomplete_bundle_exits_three(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A dropped message is named and exits 3, unless --allow-incomplete."""
    world, bundle = pack_world()
    chain = bundle.chains[0]
    gapped = replace(
        bundle, chains=(replace(chain, messages=chain.messages[:1] + chain.messages[2:]),)
    )
    args = ["verify", str(write(tmp_path, gapped)), "--gateway-key", world.gateway_key,
            "--allow-unanchored"]  # fmt: skip
    assert main(args) == 3
    assert "VALID but INCOMPLETE" in capsys.readouterr().out
    assert main([*args, "--json"]) == 3
    facts = json.loads(capsys.readouterr().out)
    assert facts["chains"][0]["missing"] == [[2, 2]]
    assert facts["exit"] == 3
    assert main([*args, "--allow-incomplete"]) == 0
