"""The ``voltproof keys`` subcommands."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ledger import keys, note
from voltproof.cli import main


def test_keys_new_writes_file_and_prints_verifier_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``keys new`` writes a 0600 key file and prints its verifier key."""
    path = tmp_path / "gw.key"
    assert main(["keys", "new", str(path), "--name", "voltproof.example/gw-1"]) == 0
    printed = capsys.readouterr().out.strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert note.parse_verifier_key(printed).name == "voltproof.example/gw-1"
    assert keys.load_key_file(path).verifier_key == printed


def test_keys_new_refuses_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``keys new`` exits 1 and explains when the file exists."""
    path = tmp_path / "gw.key"
    path.write_text("existing", encoding="utf-8")
    assert main(["keys", "new", str(path), "--name", "gw"]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert path.read_text(encoding="utf-8") == "existing"


def test_keys_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``keys show`` prints the verifier key of a key file."""
    path = tmp_path / "dev.key"
    info = keys.create_key_file(path, name="bus-0001")
    assert main(["keys", "show", str(path)]) == 0
    assert capsys.readouterr().out.strip() == info.verifier_key


def test_keys_show_refuses_open_permissions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``keys show`` exits 1 on a key file others can read."""
    path = tmp_path / "dev.key"
    keys.create_key_file(path, name="bus-0001")
    path.chmod(0o644)
    assert main(["keys", "show", str(path)]) == 1
    assert "accessible by group or others" in capsys.readouterr().err


def test_keys_new_requires_name(tmp_path: Path) -> None:
    """A missing --name is a usage error (exit 2)."""
    with pytest.raises(SystemExit) as caught:
        main(["keys", "new", str(tmp_path / "k")])
    assert caught.value.code == 2
