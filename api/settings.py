"""API settings: one pydantic-settings model, defaults in TOML, overridable by environment.

The API serves one deployment: it reads the gateway's configuration (``gateway_config``) to
find the gateway database, the operator key and the local anchor table, and keeps its own
access-control database (``api.db``) next to the gateway database. Relative paths in the
file are resolved against the file's directory. ``VOLTPROOF_API__PORT=8081`` overrides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from gateway.config import (
    CONFIG_NAME,
    DEFAULT_WORKDIR,
    ConfigError,
    GatewaySettings,
    TomlFileSettings,
    load_settings,
)
from ledger.batterypass import PASSPORT_SETTING_NAME

API_CONFIG_NAME = "api.toml"


class ApiSettings(TomlFileSettings):
    """Everything the dashboard API needs; see ``configs/api.example.toml``."""

    model_config = SettingsConfigDict(
        env_prefix="VOLTPROOF_API__", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    gateway_config: Path = Path(CONFIG_NAME)
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    access_db: Path | None = None
    """Access-control database; default ``api.db`` next to the gateway database."""
    anchor_db: Path | None = None
    """The local anchor table; default ``anchors.db`` next to the gateway database."""
    online_window_s: Annotated[int, Field(ge=1)] = 30
    """A device is online when its newest message arrived at most this long ago (agents send
    every 10 s: three missed messages make it offline)."""
    tile_url: str | None = None
    """Map tiles, a Leaflet URL template (``https://tile.example/{z}/{x}/{y}.png``); without
    one the map draws positions and routes on a plain background (offline)."""
    tile_attribution: str = ""
    """The tile provider's attribution, shown on the map (OpenStreetMap requires one)."""
    max_points: Annotated[int, Field(ge=10, le=100_000)] = 5000
    """Largest page of raw samples and most buckets of a downsampled series."""
    passport: Path | None = None
    """The passport setting (``docs/operations.md``): the static sections of the packs' battery
    passport as JSON; default ``passport.json`` next to the gateway configuration."""
    log_level: str = "INFO"


class Deployment:
    """Resolved paths of the deployment the API serves."""

    def __init__(self, *, api: ApiSettings, gateway: GatewaySettings) -> None:
        self.api = api
        self.gateway = gateway
        data_dir = gateway.data_dir
        self.gateway_db = gateway.db_path
        self.access_db = api.access_db or data_dir / "api.db"
        self.anchor_db = api.anchor_db or data_dir / "anchors.db"
        self.passport = api.passport or api.gateway_config.parent / PASSPORT_SETTING_NAME


def load_deployment(config: Path | None = None, *, workdir: Path | None = None) -> Deployment:
    """Settings from ``config`` (an ``api.toml``), else ``workdir/api.toml`` if present, else
    defaults over ``workdir/gateway.toml``."""
    base: Path
    if config is None:
        root = workdir or DEFAULT_WORKDIR
        candidate = root / API_CONFIG_NAME
        if not candidate.is_file():
            api = ApiSettings(gateway_config=root / CONFIG_NAME)
            return Deployment(api=api, gateway=load_settings(api.gateway_config))
        config = candidate
    if not config.is_file():
        raise ConfigError(f"no API configuration at {config} (see configs/api.example.toml)")
    api = ApiSettings.from_file(config)
    base = config.resolve().parent
    api = api.model_copy(
        update={
            name: (value if value is None or value.is_absolute() else base / value)
            for name, value in (
                ("gateway_config", api.gateway_config),
                ("access_db", api.access_db),
                ("anchor_db", api.anchor_db),
                ("passport", api.passport),
            )
        }
    )
    return Deployment(api=api, gateway=load_settings(api.gateway_config))
