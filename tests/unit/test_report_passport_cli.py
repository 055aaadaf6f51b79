"""`voltproof report BUNDLE --passport`: the pack's passport offline, refusals with reasons."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ledger.cosignature import witness_verifier_key
from ledger.keys import public_key_from_seed
from tests.support.evidence_world import EvidenceWorld, build_world
from tests.support.paths import DATA
from voltproof.cli import main
from voltproof.demo_setup import demo_passport_setting

SCHEMA: dict[str, Any] = json.loads(
    (DATA / "batterypass" / "tractusx_battery_pass_6.1.0.schema.json").read_text(encoding="utf-8")
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> EvidenceWorld:
    """One honest deployment (packs enrolled with birth certificates where the world has them)."""
    return build_world(tmp_path_factory.mktemp("passport-cli") / "gw")


def _bundle(world: EvidenceWorld, asset: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{asset}.vpbundle.json"
    path.write_bytes(world.bundle(asset).to_bytes())
    return path


def test_passport_of_a_bundle_is_valid(
    world: EvidenceWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the demo's setting and with none, the printed passport validates."""
    bundle = _bundle(world, "pack-0001", tmp_path)
    setting = tmp_path / "passport.json"
    setting.write_text(json.dumps(demo_passport_setting()), encoding="utf-8")
    for extra in (["--passport-setting", str(setting)], []):
        assert main(["report", str(bundle), "--passport", *extra]) == 0
        passport = json.loads(capsys.readouterr().out)
        assert list(jsonschema.Draft4Validator(SCHEMA).iter_errors(passport)) == []
        codes = passport["identification"]["identification"]["codes"]
        assert {"key": "voltproof device id", "value": "pack-0001"} in codes
    assert passport["identification"]["chemistry"] == "not declared"  # no setting: declared so


@pytest.mark.parametrize(
    "case",
    [
        (None, "bus-0001", "'bus-0001' is a bus; passports are for packs"),
        ('{"identfication": {}}', "pack-0001", "unknown section(s) ['identfication']"),
        ("not json", "pack-0001", "passport setting is not JSON"),
        ("missing", "pack-0001", "No such file or directory"),
    ],
)
def test_passport_refusals_are_usage_errors(
    world: EvidenceWorld,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: tuple[str | None, str, str],
) -> None:
    """A bus, a setting that is not one or a missing file: exit 2 with the reason."""
    setting, asset, message = case
    bundle = _bundle(world, asset, tmp_path)
    args = ["report", str(bundle), "--passport"]
    if setting is not None:
        path = tmp_path / "passport.json"
        if setting != "missing":
            path.write_text(setting, encoding="utf-8")
        args += ["--passport-setting", str(path)]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_passport_with_an_unmet_witness_policy_is_refused(
    world: EvidenceWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--witness`` gates the passport: the lessor's witness never cosigned this bundle's
    checkpoint, so exit 1 with the reason and no passport printed."""
    bundle = _bundle(world, "pack-0001", tmp_path)
    vkey = witness_verifier_key("lessor", public_key_from_seed(bytes(range(32))))
    assert main(["report", str(bundle), "--passport"]) == 0
    capsys.readouterr()
    assert main(["report", str(bundle), "--passport", "--witness", vkey]) == 1
    out, err = capsys.readouterr()
    assert "INVALID: WitnessPolicyError" in err
    assert out == ""
