"""``voltproof devices``: enrol (single and bulk), rotate, revoke and list through main()."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ledger.keys import create_key_file, generate_seed, load_key_file, public_key_from_seed
from tests.support.gateway_devices import FakeDevice
from voltproof.cli import main


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A deployment directory with an operator key and no database yet."""
    (tmp_path / "keys").mkdir()
    create_key_file(tmp_path / "keys" / "operator.key", name="operator")
    return tmp_path


def b64(key: bytes) -> str:
    """Base64 text of ``key``."""
    return base64.b64encode(key).decode("ascii")


def run(workdir: Path, *args: str) -> int:
    """Run ``voltproof devices --workdir DIR ARGS``."""
    return main(["devices", "--workdir", str(workdir), *args])


def test_enroll_list_revoke(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A device enrolled on the command line is listed with its key; revoke marks it."""
    dev = FakeDevice(device_id="pack-1")
    assert run(workdir, "enroll", "--id", "pack-1", "--kind", "pack", "--fleet", "f",
               "--public-key", b64(dev.public_key)) == 0  # fmt: skip
    assert "enrolled pack-1 (pack, fleet f) at leaf 0" in capsys.readouterr().out
    assert run(workdir, "revoke", "pack-1", "--reason", "stolen") == 0
    assert run(workdir, "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert listed == [{"id": "pack-1", "kind": "pack", "fleet": "f", "status": "revoked",
                       "public_key": b64(dev.public_key)}]  # fmt: skip


def test_bulk_enroll_from_json_and_csv(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bulk files in JSON and CSV enrol every device they list."""
    keys = [public_key_from_seed(generate_seed()) for _ in range(3)]
    (workdir / "a.json").write_text(json.dumps([
        {"device_id": "bus-1", "kind": "bus", "fleet": "f", "public_key": b64(keys[0])},
        {"device_id": "pack-1", "kind": "pack", "fleet": "f", "public_key": b64(keys[1])},
    ]), encoding="utf-8")  # fmt: skip
    (workdir / "b.csv").write_text(
        f"device_id,kind,fleet,public_key\npack-2,pack,g,{b64(keys[2])}\n", encoding="utf-8"
    )
    assert run(workdir, "enroll", "--file", str(workdir / "a.json")) == 0
    assert run(workdir, "enroll", "--file", str(workdir / "b.csv")) == 0
    capsys.readouterr()
    assert run(workdir, "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["bus-1", "pack-1", "pack-2"]


def test_rotate_with_old_key(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Rotation is signed by the device's old key file."""
    old = create_key_file(workdir / "keys" / "pack-1.key", name="pack-1")
    new_key = public_key_from_seed(generate_seed())
    assert run(workdir, "enroll", "--id", "pack-1", "--kind", "pack", "--fleet", "f",
               "--public-key", b64(old.public_key)) == 0  # fmt: skip
    assert run(workdir, "rotate", "pack-1", "--old-key", str(workdir / "keys" / "pack-1.key"),
               "--new-public-key", b64(new_key), "--seq", "10") == 0  # fmt: skip
    assert "rotated pack-1 from seq 10 at leaf 1" in capsys.readouterr().out
    assert run(workdir, "list", "--json") == 0
    assert json.loads(capsys.readouterr().out)[0]["public_key"] == b64(new_key)


def test_rotate_with_wrong_key_fails(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A rotation not signed by the device's current key is refused."""
    create_key_file(workdir / "keys" / "other.key", name="other")
    dev = FakeDevice(device_id="pack-1")
    run(workdir, "enroll", "--id", "pack-1", "--kind", "pack", "--fleet", "f",
        "--public-key", b64(dev.public_key))  # fmt: skip
    code = run(workdir, "rotate", "pack-1", "--old-key", str(workdir / "keys" / "other.key"),
               "--new-public-key", b64(bytes(32)), "--seq", "1")  # fmt: skip
    assert code == 1
    assert "not signed by its current key" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["enroll", "--id", "x"], "missing kind, fleet, public_key"),
        (["enroll", "--id", "x", "--kind", "bus", "--fleet", "f", "--public-key", "!!"],
         "nor base64"),
        (["revoke", "nobody"], "is not enrolled"),
        (["replace", "nobody", "pack-0"], "is not enrolled"),
    ],
)  # fmt: skip
def test_errors_exit_1(
    workdir: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    """Bad requests exit 1 with a precise message."""
    assert run(workdir, "enroll", "--id", "pack-0", "--kind", "pack", "--fleet", "f",
               "--public-key", b64(FakeDevice(device_id="pack-0").public_key)) == 0  # fmt: skip
    capsys.readouterr()
    assert run(workdir, *args) == 1
    assert message in capsys.readouterr().err


def test_enrolling_twice_fails(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A device cannot be enrolled twice."""
    key = b64(FakeDevice(device_id="d").public_key)
    args = ["enroll", "--id", "d", "--kind", "bus", "--fleet", "f", "--public-key", key]
    assert run(workdir, *args) == 0
    assert run(workdir, *args) == 1
    assert "an id is enrolled once, ever" in capsys.readouterr().err


def test_list_without_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Listing a directory without a gateway database fails clearly."""
    assert run(tmp_path, "list") == 1
    assert "no gateway database" in capsys.readouterr().err


def test_missing_operator_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Enrolling needs the operator key: a missing key file is a usage error (exit 2)."""
    key = b64(FakeDevice(device_id="d").public_key)
    assert run(tmp_path, "enroll", "--id", "d", "--kind", "bus", "--fleet", "f",
               "--public-key", key) == 2  # fmt: skip
    assert "no key file" in capsys.readouterr().err


def test_bad_bulk_file(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bulk file with a bad row names it."""
    (workdir / "bad.json").write_text('[{"device_id": "a", "kind": "tram"}]', encoding="utf-8")
    assert run(workdir, "enroll", "--file", str(workdir / "bad.json")) == 1
    assert "device 1: missing or non-text fleet, public_key" in capsys.readouterr().err


def test_enroll_takes_the_verifier_key_keys_new_prints(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What ``keys new`` prints (the C2SP verifier key) is what ``--public-key`` takes."""
    assert main(["keys", "new", str(workdir / "dev" / "pack-1.key"), "--name", "pack-1"]) == 0
    printed = capsys.readouterr().out.strip()
    assert run(workdir, "enroll", "--id", "pack-1", "--kind", "pack", "--fleet", "f",
               "--public-key", printed) == 0  # fmt: skip
    capsys.readouterr()
    assert run(workdir, "list", "--json") == 0
    key = load_key_file(workdir / "dev" / "pack-1.key")
    assert json.loads(capsys.readouterr().out)[0]["public_key"] == b64(key.public_key)


def test_enroll_refuses_a_verifier_key_with_a_wrong_key_id(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A verifier key whose key id does not match its key is refused, not half-read."""
    key = create_key_file(workdir / "keys" / "d.key", name="d")
    name, key_id, encoded = key.verifier_key.split("+", 2)
    forged = f"{name}+{'0' * 8 if key_id != '0' * 8 else '1' * 8}+{encoded}"
    assert run(workdir, "enroll", "--id", "d", "--kind", "pack", "--fleet", "f",
               "--public-key", forged) == 1  # fmt: skip
    assert "not a valid verifier key" in capsys.readouterr().err


def configured(tmp_path: Path, *, fleets: str = "") -> Path:
    """A deployment with gateway.toml and keys, never started: no data folder yet."""
    (tmp_path / "keys").mkdir()
    create_key_file(tmp_path / "keys" / "operator.key", name="operator")
    (tmp_path / "gateway.toml").write_text(
        f'origin = "example.test/gw"\ndata_dir = "state"\n{fleets}\n', encoding="utf-8"
    )
    return tmp_path


def test_enroll_before_the_first_gateway_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Enrolment creates the store of a configured deployment the gateway never ran."""
    workdir = configured(tmp_path)
    key = b64(FakeDevice(device_id="d").public_key)
    assert run(workdir, "enroll", "--id", "d", "--kind", "bus", "--fleet", "f",
               "--public-key", key) == 0  # fmt: skip
    assert (workdir / "state" / "gateway.db").is_file()


def test_enroll_refuses_a_fleet_the_gateway_does_not_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With ``fleets = [...]`` configured, a device of another fleet is refused with a reason."""
    workdir = configured(tmp_path, fleets='fleets = ["fleet-1"]')
    key = b64(FakeDevice(device_id="d").public_key)
    assert run(workdir, "enroll", "--id", "d", "--kind", "bus", "--fleet", "fleet-2",
               "--public-key", key) == 1  # fmt: skip
    assert "fleet 'fleet-2', which this gateway does not serve" in capsys.readouterr().err
    assert run(workdir, "enroll", "--id", "d", "--kind", "bus", "--fleet", "fleet-1",
               "--public-key", key) == 0  # fmt: skip


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--fleet", "fleet-2", "--public-key", "{key}"], 1, "does not serve"),
        (["--fleet", "fleet-1", "--public-key", "!!"], 1, "neither a verifier key"),
        (["--fleet", "fleet-1", "--public-key", "{key}", "--birth", "{missing}"], 2, "--birth"),
    ],
)
def test_a_refused_enrolment_creates_no_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    """Every input is checked before the store is made: a refusal leaves the folder as it was."""
    workdir = configured(tmp_path, fleets='fleets = ["fleet-1"]')
    key = b64(FakeDevice(device_id="d").public_key)
    filled = [a.format(key=key, missing=tmp_path / "missing.birth") for a in args]
    assert run(workdir, "enroll", "--id", "d", "--kind", "bus", *filled) == code
    assert message in capsys.readouterr().err
    assert not (workdir / "state").exists()


def test_a_missing_operator_key_creates_no_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A configuration whose operator key is missing (the example's, used as is) writes nothing,
    so a later ``broker-credentials`` still says no device is enrolled."""
    workdir = configured(tmp_path)
    (workdir / "keys" / "operator.key").unlink()
    key = b64(FakeDevice(device_id="d").public_key)
    assert run(workdir, "enroll", "--id", "d", "--kind", "bus", "--fleet", "f",
               "--public-key", key) == 2  # fmt: skip
    assert "no key file" in capsys.readouterr().err
    assert not (workdir / "state").exists()
    out = ["--out-dir", str(tmp_path / "broker"), "--passwords", str(tmp_path / "pw")]
    assert main(["broker-credentials", "--workdir", str(workdir), *out]) == 1
    assert "enrol the devices first" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [["revoke", "d"], ["replace", "d", "e"], ["rotate", "d", "--old-key", "{op}",
                                              "--new-public-key", "{key}", "--seq", "1"]],
)  # fmt: skip
def test_only_an_enrolment_creates_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    """Revoking, replacing or rotating before any enrolment is refused without making a store."""
    workdir = configured(tmp_path)
    key = b64(FakeDevice(device_id="d").public_key)
    filled = [a.format(key=key, op=workdir / "keys" / "operator.key") for a in args]
    assert run(workdir, *filled) == 1
    assert "no gateway database" in capsys.readouterr().err
    assert not (workdir / "state").exists()
