"""``voltproof manufacturer``, ``devices enroll --birth`` and ``devices replace`` via main()."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from ledger.birth import read_birth_certificate
from ledger.keys import create_key_file, public_key_from_seed
from ledger.note import parse_verifier_key
from tests.support.bundle_world import seed_of
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


KEY = b64(public_key_from_seed(seed_of("pack-1")))


def certify(tmp_path: Path, *extra: str, device: str = "pack-1", out: str = "c.cert") -> int:
    """``manufacturer certify`` with the key made by :func:`maker`."""
    return main(["manufacturer", "certify", "--key", str(tmp_path / "m.key"), "--id", device,
                 "--kind", "pack", "--serial", "SN-1", "--public-key", KEY,
                 "--out", str(tmp_path / out), *extra])  # fmt: skip


@pytest.fixture
def maker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """A manufacturer key file ``m.key``; returns its verifier key as printed."""
    assert main(["manufacturer", "keys", "new", "--name", "acme", "--out",
                 str(tmp_path / "m.key")]) == 0  # fmt: skip
    return capsys.readouterr().out.strip()


def test_keys_new_is_private_and_prints_the_verifier_key(tmp_path: Path, maker: str) -> None:
    """The key file is 0600; the printed line is a verifier key named after the manufacturer."""
    assert stat.S_IMODE((tmp_path / "m.key").stat().st_mode) == 0o600
    assert parse_verifier_key(maker).name == "acme"


def test_keys_new_never_overwrites(
    tmp_path: Path, maker: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second key at the same path is refused."""
    assert main(["manufacturer", "keys", "new", "--name", "acme", "--out",
                 str(tmp_path / "m.key")]) == 1  # fmt: skip
    assert "refusing to overwrite" in capsys.readouterr().err


def test_certify_writes_a_certificate(
    tmp_path: Path, maker: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The certificate names the device, kind, key, serial and made_at given."""
    assert certify(tmp_path, "--made-at", "2026-01-01T00:00:00Z") == 0
    assert "certified pack-1 (pack, serial SN-1) by acme" in capsys.readouterr().out
    claims = read_birth_certificate((tmp_path / "c.cert").read_bytes())
    assert (claims.manufacturer, claims.device, claims.kind, claims.serial) == (
        "acme", "pack-1", "pack", "SN-1",
    )  # fmt: skip
    assert (b64(claims.key), claims.made_at_ms) == (KEY, 1_767_225_600_000)
    assert certify(tmp_path) == 1
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--public-key", "!!"], "--public-key: public key is neither a verifier key"),
        (["--made-at", "yesterday"], "neither ISO 8601"),
    ],
)
def test_certify_bad_input_is_a_usage_error(
    tmp_path: Path, maker: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    """A bad key or time is a usage error with its reason (argparse exits for the time)."""
    try:
        code = certify(tmp_path, *args)
    except SystemExit as exit_:
        code = int(str(exit_.code))
    assert code == 2
    assert message in capsys.readouterr().err


def test_certify_bad_device_id(
    tmp_path: Path, maker: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty device id is refused by the certificate's own checks."""
    assert certify(tmp_path, device="") == 2
    assert "'dev' must be non-empty text" in capsys.readouterr().err


def enroll(workdir: Path, device: str, *extra: str, key: str = KEY) -> int:
    """``devices enroll --id DEVICE --kind pack``."""
    return main(["devices", "--workdir", str(workdir), "enroll", "--id", device, "--kind",
                 "pack", "--fleet", "f", "--public-key", key, *extra])  # fmt: skip


def test_enroll_with_birth_certificate(
    workdir: Path, maker: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A certified enrolment is logged; a certificate for another id is refused with why."""
    assert certify(workdir) == 0
    assert certify(workdir, device="pack-9", out="other.cert") == 0
    capsys.readouterr()
    assert enroll(workdir, "pack-1", "--birth", str(workdir / "c.cert")) == 0
    assert "enrolled pack-1" in capsys.readouterr().out
    assert enroll(workdir, "pack-2", "--birth", str(workdir / "other.cert")) == 1
    assert "is for device id 'pack-9', the enrolment says 'pack-2'" in capsys.readouterr().err
    assert enroll(workdir, "pack-3", "--birth", str(workdir / "keys" / "operator.key")) == 1
    assert "--birth" in capsys.readouterr().err


def test_replace_command(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """replace needs the old device revoked; then it links old to new once."""
    other = b64(public_key_from_seed(seed_of("pack-2")))
    assert enroll(workdir, "pack-1") == 0
    assert enroll(workdir, "pack-2", key=other) == 0
    devices = ["devices", "--workdir", str(workdir)]
    assert main([*devices, "replace", "pack-1", "pack-2"]) == 1
    assert "'pack-1' is live; only a revoked device is replaced" in capsys.readouterr().err
    assert main([*devices, "revoke", "pack-1"]) == 0
    assert main([*devices, "replace", "pack-1", "pack-2"]) == 0
    assert "replaced pack-1 by pack-2 at leaf 3" in capsys.readouterr().out
    assert main([*devices, "replace", "pack-1", "pack-2"]) == 1
    assert "already replaced by 'pack-2' at leaf 3" in capsys.readouterr().err
    assert main([*devices, "replace", "pack-1", "ghost"]) == 1
    assert "device 'ghost' is not enrolled" in capsys.readouterr().err
    assert enroll(workdir, "pack-1", key=other) == 1
    assert "second enroll of 'pack-1'" in capsys.readouterr().err
