"""``[store]`` in gateway.toml and ``voltproof gateway --store``: what is accepted, refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, GatewaySettings, StoreSettings
from voltproof.cli.gateway import with_store_url


def test_no_url_means_the_sqlite_file() -> None:
    """Unset, the store is data_dir/gateway.db."""
    settings = GatewaySettings(data_dir=Path("gw"))
    assert settings.store.url is None
    assert settings.db_path == Path("gw") / "gateway.db"


def test_url_must_be_postgresql() -> None:
    """A URL of another scheme is refused when the settings are read."""
    with pytest.raises(ValueError, match="postgresql:// URL"):
        StoreSettings.model_validate({"url": "mysql://db/voltproof"})


def test_store_option_overrides_and_is_validated() -> None:
    """--store replaces store.url, keeps the other store settings, and is validated."""
    settings = GatewaySettings(store=StoreSettings(pool_size=7))
    updated = with_store_url(settings, "postgresql://gw:real-secret@db:5432/ledger")
    assert updated.store.url is not None
    assert updated.store.url.get_secret_value().endswith("@db:5432/ledger")
    assert updated.store.pool_size == 7
    assert with_store_url(settings, None) is settings
    with pytest.raises(ConfigError, match=r"--store: .*postgresql:// URL"):
        with_store_url(settings, "gateway.db")


def test_placeholder_password_in_url_is_refused() -> None:
    """The example config's password is refused, as mqtt.password's is."""
    with pytest.raises(ConfigError, match=r"password in store\.url is a placeholder"):
        with_store_url(GatewaySettings(), "postgresql://gw:CHANGE-ME@db/ledger")


def test_url_is_a_secret_in_reprs() -> None:
    """The URL (with its password) never appears in a repr of the settings."""
    settings = with_store_url(GatewaySettings(), "postgresql://gw:real-secret@db/ledger")
    assert "real-secret" not in repr(settings)
