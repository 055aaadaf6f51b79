"""Witness settings: one pydantic-settings model from a TOML file, overridable by environment.

See ``configs/witness.example.toml``. Environment variables beat the file:
``VOLTPROOF_WITNESS__PORT=7381``. Relative paths are resolved against the file's directory.
"""

from __future__ import annotations

import contextvars
from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ledger.errors import VoltproofError
from ledger.note import NoteError, VerifierKey, parse_verifier_key

from .witness import LogPolicy

__all__ = ["LogSettings", "WitnessConfigError", "WitnessSettings", "load_settings"]

_CONFIG_FILE: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "voltproof_witness_config_file", default=None
)


class WitnessConfigError(VoltproofError, ValueError):
    """The witness configuration cannot be used; the message names the setting."""


class LogSettings(BaseModel):
    """One log the witness cosigns: its origin line and the verifier key(s) trusted for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    origin: Annotated[str, Field(min_length=1)]
    keys: Annotated[list[str], Field(min_length=1)]

    @field_validator("keys")
    @classmethod
    def _parse_keys(cls, keys: list[str]) -> list[str]:
        for key in keys:
            try:
                parse_verifier_key(key)
            except NoteError as exc:
                raise ValueError(f"log key {key!r}: {exc}") from exc
        return keys

    def policy(self) -> LogPolicy:
        """The parsed policy the witness enforces."""
        parsed: tuple[VerifierKey, ...] = tuple(parse_verifier_key(key) for key in self.keys)
        return LogPolicy(origin=self.origin, keys=parsed)


class WitnessSettings(BaseSettings):
    """Everything one witness needs."""

    model_config = SettingsConfigDict(
        env_prefix="VOLTPROOF_WITNESS__", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    key_file: Path = Path("witness.key")
    state_file: Path = Path("witness.sqlite3")
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 7380
    prefix: str = ""
    """Submission prefix: the app answers POST <prefix>/add-checkpoint."""
    max_body_bytes: Annotated[int, Field(ge=1024)] = 65536
    shutdown_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    logs: list[LogSettings] = Field(default_factory=list)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, prefix: str) -> str:
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError("prefix must be empty or start with '/' and not end with '/'")
        return prefix

    @field_validator("logs")
    @classmethod
    def _distinct(cls, logs: list[LogSettings]) -> list[LogSettings]:
        origins = [entry.origin for entry in logs]
        duplicates = sorted({origin for origin in origins if origins.count(origin) > 1})
        if duplicates:
            raise ValueError(f"logs configured twice: {', '.join(duplicates)}")
        return logs

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit arguments, then the environment, then the TOML file."""
        toml_file = _CONFIG_FILE.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @classmethod
    def from_file(cls, config: Path) -> Self:
        """The settings of ``config`` under the environment, relative paths resolved."""
        if not config.is_file():
            raise WitnessConfigError(
                f"no witness configuration at {config} (see configs/witness.example.toml)"
            )
        token = _CONFIG_FILE.set(config)
        try:
            settings = cls()
        except ValueError as exc:
            raise WitnessConfigError(f"{config}: {exc}") from exc
        finally:
            _CONFIG_FILE.reset(token)
        base = config.resolve().parent
        return settings.model_copy(
            update={
                "key_file": base / settings.key_file,
                "state_file": base / settings.state_file,
            }
        )


def load_settings(config: Path) -> WitnessSettings:
    """Load and check the witness settings in ``config``; refuse a witness with no log."""
    settings = WitnessSettings.from_file(config)
    if not settings.logs:
        raise WitnessConfigError(f"{config}: no [[logs]] configured; the witness would refuse all")
    return settings
