"""API settings: an api.toml over a gateway configuration, or a bare deployment directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from api.settings import load_deployment
from gateway.config import ConfigError
from tests.support.paths import REPO

GATEWAY = 'origin = "voltproof.example/gw-1"\ndata_dir = "gw"\n'


def test_workdir_without_api_toml_uses_defaults(tmp_path: Path) -> None:
    """A deployment directory without api.toml serves its gateway.toml with defaults."""
    (tmp_path / "gateway.toml").write_text(GATEWAY, encoding="utf-8")
    deployment = load_deployment(workdir=tmp_path)
    assert deployment.gateway_db == tmp_path.resolve() / "gw" / "gateway.db"
    assert deployment.access_db == tmp_path.resolve() / "gw" / "api.db"
    assert deployment.anchor_db == tmp_path.resolve() / "gw" / "anchors.db"
    assert deployment.api.port == 8080


def test_example_config_loads(tmp_path: Path) -> None:
    """configs/api.example.toml loads and resolves paths against its directory."""
    shutil.copy(REPO / "configs" / "api.example.toml", tmp_path / "api.toml")
    (tmp_path / "gateway.toml").write_text(GATEWAY, encoding="utf-8")
    deployment = load_deployment(workdir=tmp_path)
    assert deployment.api.gateway_config == tmp_path.resolve() / "gateway.toml"
    assert deployment.api.online_window_s == 30


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """VOLTPROOF_API__PORT overrides the file."""
    (tmp_path / "gateway.toml").write_text(GATEWAY, encoding="utf-8")
    (tmp_path / "api.toml").write_text("port = 9000\n", encoding="utf-8")
    monkeypatch.setenv("VOLTPROOF_API__PORT", "9100")
    assert load_deployment(tmp_path / "api.toml").api.port == 9100


@pytest.mark.parametrize(
    ("text", "message"),
    [("port = -1\n", "port"), ("colour = 'red'\n", "colour"), ("port = 'x'\n", "port")],
)
def test_bad_config_refused(tmp_path: Path, text: str, message: str) -> None:
    """Invalid values and unknown keys are refused naming the setting."""
    (tmp_path / "api.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_deployment(tmp_path / "api.toml")


def test_missing_files_refused(tmp_path: Path) -> None:
    """A missing api.toml or gateway.toml is named."""
    with pytest.raises(ConfigError, match="no API configuration at"):
        load_deployment(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="no gateway configuration at"):
        load_deployment(workdir=tmp_path)
