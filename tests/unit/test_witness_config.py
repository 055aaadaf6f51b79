"""Witness settings and the `voltproof witness` command's key and usage paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.cosignature import parse_witness_key
from tests.support.witness_world import LOG_KEY
from voltproof.cli import main as voltproof_main
from voltproof.witness import WitnessConfigError, load_settings

REPO = Path(__file__).resolve().parents[2]


def test_example_config_loads() -> None:
    """configs/witness.example.toml is valid, with paths resolved next to it."""
    settings = load_settings(REPO / "configs" / "witness.example.toml")
    assert settings.key_file == REPO / "configs" / "witness.key"
    assert [entry.origin for entry in settings.logs] == ["voltproof.example/gw-1"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no \\[\\[logs\\]\\] configured"),
        ('[[logs]]\norigin = "a"\nkeys = ["x+y+z"]\n', "log key 'x\\+y\\+z'"),
        (
            f'[[logs]]\norigin = "a"\nkeys = ["{LOG_KEY}"]\n' * 2,
            "logs configured twice: a",
        ),
        ('prefix = "/w/"\n', "prefix must be empty"),
    ],
)
def test_bad_configs_refused(tmp_path: Path, text: str, message: str) -> None:
    """Configurations the witness cannot use are refused with the setting named."""
    config = tmp_path / "witness.toml"
    config.write_text(text)
    with pytest.raises(WitnessConfigError, match=message):
        load_settings(config)


def main(argv: list[str]) -> int:
    """``voltproof witness ARGV``, as the console script runs it (argparse exits on errors)."""
    try:
        return voltproof_main(["witness", *argv])
    except SystemExit as exc:
        return int(exc.code or 0)


def test_keys_new_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """keys new writes a 0600 seed file and prints a type-0x04 vkey; show prints it again."""
    out = tmp_path / "w.key"
    assert main(["keys", "new", "--name", "lessor.example/w1", "--out", str(out)]) == 0
    vkey = capsys.readouterr().out.strip()
    assert parse_witness_key(vkey).name == "lessor.example/w1"
    assert out.stat().st_mode & 0o777 == 0o600
    assert main(["keys", "show", str(out)]) == 0
    assert capsys.readouterr().out.strip() == vkey
    assert main(["keys", "new", "--name", "lessor.example/w1", "--out", str(out)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No --config, an unknown option or a missing file: exit 2."""
    assert main([]) == 2
    assert main(["--bogus"]) == 2
    assert main(["--config", str(tmp_path / "missing.toml")]) == 2
    assert "no witness configuration" in capsys.readouterr().err
