"""Settings of one edge agent: a TOML file, overridable by ``VOLTPROOF_AGENT_*`` variables.

Nested keys use ``__`` in variable names: ``VOLTPROOF_AGENT_MQTT__PASSWORD`` overrides
``[mqtt] password``. Environment variables win over the file, so that secrets can stay out
of it (systemd ``LoadCredential=`` or an ``EnvironmentFile=`` readable by root only).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Final, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ledger.errors import VoltproofError
from ledger.note import NoteError, parse_verifier_key
from ledger.placeholders import is_placeholder
from ledger.protocol import TOPIC_ROOT, receipt_topic, status_topic, telemetry_topic

DEVICE_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
DEFAULT_DBC: Final = Path(__file__).resolve().parents[2] / "configs" / "can" / "voltproof_bms.dbc"


class AgentConfigError(VoltproofError, ValueError):
    """The agent configuration cannot be read or is invalid; the message says which key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttSettings(_Section):
    """How to reach the broker (MQTT v5, QoS 1)."""

    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    max_inflight: int = Field(default=100, ge=1, le=65_000)
    topic_prefix: str = TOPIC_ROOT

    @model_validator(mode="after")
    def _check(self) -> Self:
        parts = urlsplit(self.url)
        if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
            raise ValueError(f"url must be mqtt://host[:port] or mqtts://..., not {self.url}")
        if self.password is not None:
            if is_placeholder(self.password.get_secret_value()):
                raise ValueError("password is a placeholder; set the device's real password")
            if self.username is None:
                raise ValueError("password is set but username is not")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (TLS client certificate)")
        return self

    @property
    def host(self) -> str:
        """Broker host name."""
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        """Broker port (1883, or 8883 for mqtts, unless the URL names one)."""
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        """True for mqtts:// or when a CA file is given."""
        return urlsplit(self.url).scheme == "mqtts" or self.ca_file is not None


class OutboxSettings(_Section):
    """Bounds of the local store-and-forward outbox (drop-oldest-unsent when full)."""

    max_messages: int = Field(default=100_000, ge=1)
    max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    synchronous: Literal["FULL", "NORMAL"] = "FULL"


class BackoffSettings(_Section):
    """Reconnect delays (equal jitter, doubling from base to cap)."""

    base_s: float = Field(default=0.5, gt=0)
    cap_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.base_s > self.cap_s:
            raise ValueError(f"base_s {self.base_s} exceeds cap_s {self.cap_s}")
        return self


class ReceiptSettings(_Section):
    """End-to-end receipts: the gateway key that must sign them and the re-send schedule.

    With ``gateway_key`` set (the gateway's C2SP verifier key, ``name+id+base64``), a message
    stays in the outbox until a receipt signed by that key covers it; what no receipt covers
    is published again after ``resend_after_s`` without progress, doubling up to
    ``resend_cap_s``, each delay drawn in ``[d/2, d]`` (``ledger.backoff``). Without it the
    broker's PUBACK releases a message (weaker: a broker that loses its state loses it).
    """

    gateway_key: str | None = None
    resend_after_s: float = Field(default=10.0, gt=0)
    resend_cap_s: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.gateway_key is not None:
            try:
                parse_verifier_key(self.gateway_key)
            except NoteError as exc:
                raise ValueError(f"gateway_key is not a verifier key: {exc}") from exc
        if self.resend_after_s > self.resend_cap_s:
            raise ValueError(
                f"resend_after_s {self.resend_after_s} exceeds resend_cap_s {self.resend_cap_s}"
            )
        return self

    @property
    def gateway_public_key(self) -> bytes | None:
        """The gateway's 32-byte Ed25519 public key, when configured."""
        if self.gateway_key is None:
            return None
        return parse_verifier_key(self.gateway_key).public_key


class SourceSettings(_Section):
    """Where samples come from: the simulated physics or the vehicle CAN bus."""

    type: Literal["sim", "can"] = "sim"
    seed: int = 0
    can_interface: str = "socketcan"
    can_channel: str = "can0"
    can_bitrate: int | None = None
    dbc_file: Path = DEFAULT_DBC
    stale_after_s: float = Field(default=5.0, gt=0)


class AgentSettings(BaseSettings):
    """Everything one agent needs; see ``configs/agent.example.toml``."""

    model_config = SettingsConfigDict(
        env_prefix="VOLTPROOF_AGENT_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    device_id: str = Field(pattern=DEVICE_ID_PATTERN)
    fleet: str = Field(default="fleet", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    kind: Literal["bus", "pack"]
    key_file: Path
    state_file: Path
    period_s: int = Field(default=10, ge=1, le=30)
    pre_fault_s: int = Field(default=30, ge=0, le=120)
    historical_after_s: float | None = Field(default=None, gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    mqtt: MqttSettings = MqttSettings()
    outbox: OutboxSettings = OutboxSettings()
    backoff: BackoffSettings = BackoffSettings()
    receipts: ReceiptSettings = ReceiptSettings()
    source: SourceSettings = SourceSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment first, then the values read from the TOML file."""
        return env_settings, init_settings

    @property
    def historical_after_ms(self) -> int:
        """Age beyond which a published message is marked historical (default 2 periods)."""
        seconds = self.historical_after_s or 2 * self.period_s
        return round(seconds * 1000)

    @property
    def topic(self) -> str:
        """The device's telemetry topic."""
        return telemetry_topic(self.fleet, self.device_id, root=self.mqtt.topic_prefix)

    @property
    def receipt_topic(self) -> str:
        """The retained topic the gateway's receipts for this device arrive on."""
        return receipt_topic(self.fleet, self.device_id, root=self.mqtt.topic_prefix)

    @property
    def status_topic(self) -> str:
        """The device's retained status topic (``online`` / last-will ``offline``)."""
        return status_topic(self.fleet, self.device_id, root=self.mqtt.topic_prefix)


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
        for err in exc.errors()
    )


def settings_from_mapping(data: dict[str, Any]) -> AgentSettings:
    """Validate settings given as a mapping (environment variables still win)."""
    try:
        return AgentSettings(**data)
    except ValidationError as exc:
        raise AgentConfigError(f"invalid agent settings: {_describe(exc)}") from exc


def load_settings(path: Path) -> AgentSettings:
    """Read ``path`` (TOML), apply environment overrides and validate."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AgentConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AgentConfigError(f"{path} is not valid TOML: {exc}") from exc
    try:
        return settings_from_mapping(data)
    except AgentConfigError as exc:
        raise AgentConfigError(f"{path}: {exc}") from exc
