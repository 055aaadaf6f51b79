"""Fleet files, device keys and their exports."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from firmware_sim.sim.fleet import Fleet, FleetError, load_fleet
from firmware_sim.sim.keys import FleetKeyError, export_keys, load_or_create, manufacturer_key
from firmware_sim.sim.summary import Summary
from gateway.registry import load_device_specs
from ledger.birth import verify_birth_certificate
from ledger.note import parse_verifier_key

REPO = Path(__file__).resolve().parents[2]


def test_example_fleet_loads() -> None:
    """configs/fleet.example.toml is valid as shipped."""
    fleet = load_fleet(REPO / "configs" / "fleet.example.toml")
    assert len(fleet.bus_ids()) == fleet.buses
    assert len(fleet.pack_ids()) == fleet.buses + fleet.spare_packs


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("buses = -1\n", "buses"),
        ("packs_per_bus = 2\n", "packs_per_bus"),
        ('name = "a b"\n', "name"),
        ("[faults]\npack_swaps = 1\n", "spare pack per swap"),
        ('physics = "steady"\nspare_packs = 1\n[faults]\npack_swaps = 1\n', "physics"),
        ("[credentials]\nper_device = true\n", "password_file"),
        ("[attacks]\nforged = 1\n", "forged"),
        ("[faults.offline]\nfraction = 2\n", "fraction"),
    ],
)
def test_invalid_fleets_are_refused(tmp_path: Path, text: str, match: str) -> None:
    """Each invalid fleet file is refused naming the key."""
    path = tmp_path / "f.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FleetError, match=match):
        load_fleet(path)


def test_unreadable_and_bad_toml(tmp_path: Path) -> None:
    """A missing file and a non-TOML file are FleetErrors."""
    with pytest.raises(FleetError, match="cannot read"):
        load_fleet(tmp_path / "none.toml")
    (tmp_path / "bad.toml").write_text("buses = [", encoding="utf-8")
    with pytest.raises(FleetError, match="not valid TOML"):
        load_fleet(tmp_path / "bad.toml")


def test_keys_are_created_once_and_reloaded(tmp_path: Path) -> None:
    """Keys are created with mode 0600 and the same keys come back next time."""
    first = load_or_create(tmp_path / "keys", {"bus-1": "bus", "pack-1": "pack"})
    again = load_or_create(tmp_path / "keys", {"bus-1": "bus", "pack-1": "pack"})
    assert first == again
    mode = (tmp_path / "keys" / "bus-1.key").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_bad_key_file_is_a_fleet_key_error(tmp_path: Path) -> None:
    """A corrupt key file in the keys directory is reported."""
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "bus-1.key").write_text("nonsense\n", encoding="utf-8")
    (tmp_path / "keys" / "bus-1.key").chmod(0o600)
    with pytest.raises(FleetKeyError, match="PRIVATE"):
        load_or_create(tmp_path / "keys", {"bus-1": "bus"})


def test_export_writes_both_files(tmp_path: Path) -> None:
    """The export is {id: base64 key}; the enrolment file adds kind and fleet."""
    keys = load_or_create(tmp_path / "keys", {"bus-1": "bus", "pack-1": "pack"})
    enroll_path = export_keys(tmp_path / "keys.json", keys, fleet="f")
    simple = json.loads((tmp_path / "keys.json").read_text())
    assert base64.b64decode(simple["pack-1"]) == keys["pack-1"].public_key
    enroll = json.loads(enroll_path.read_text())
    assert enroll[0] == {
        "device_id": "bus-1",
        "kind": "bus",
        "fleet": "f",
        "public_key": simple["bus-1"],
        "birth": base64.b64encode(keys["bus-1"].birth).decode("ascii"),
    }
    specs = load_device_specs(enroll_path)
    assert [spec.device_id for spec in specs] == ["bus-1", "pack-1"]
    assert [spec.birth for spec in specs] == [keys["bus-1"].birth, keys["pack-1"].birth]


def test_one_manufacturer_certifies_every_key(tmp_path: Path) -> None:
    """Each device key comes with a birth certificate by the fleet's one manufacturer."""
    keys = load_or_create(tmp_path / "keys", {"bus-1": "bus", "pack-1": "pack"})
    maker = manufacturer_key(tmp_path / "keys")
    trusted = [parse_verifier_key(maker.verifier_key)]
    for dev, key in keys.items():
        verify_birth_certificate(key.birth, manufacturers=trusted, device=dev, kind=key.kind,
                                 key=key.public_key)  # fmt: skip
    assert (tmp_path / "keys" / "pack-1.birth").read_bytes() == keys["pack-1"].birth


def test_a_certificate_for_another_key_is_refused(tmp_path: Path) -> None:
    """A kept certificate that names another device is reported, not used."""
    keys = load_or_create(tmp_path / "keys", {"bus-1": "bus", "pack-1": "pack"})
    (tmp_path / "keys" / "pack-1.birth").write_bytes(keys["bus-1"].birth)
    with pytest.raises(FleetKeyError, match="is for device id 'bus-1'"):
        load_or_create(tmp_path / "keys", {"pack-1": "pack"})


def test_export_to_missing_directory_fails(tmp_path: Path) -> None:
    """Exporting into a directory that does not exist is a FleetKeyError."""
    keys = load_or_create(tmp_path / "keys", {"bus-1": "bus"})
    with pytest.raises(FleetKeyError, match="cannot write"):
        export_keys(tmp_path / "no" / "keys.json", keys, fleet="f")


def test_summary_renders_counts() -> None:
    """The summary names every attack kind and its expected rejection."""
    summary = Summary(fleet="f", devices=2)
    summary.attacks["garbage"] += 2
    assert "garbage 2" in summary.render()
    assert "malformed" in json.loads(summary.to_json())["expected_rejections"]["garbage"]
    assert "devices 2" in summary.progress_line()
    assert Fleet().faults.offline.fraction == 0
