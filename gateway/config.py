"""Gateway settings: one pydantic-settings model, defaults in TOML, overridable by environment.

A deployment is a directory (the *workdir*) holding ``gateway.toml``, the database and the
keys; ``--workdir DIR`` on the command line means ``--config DIR/gateway.toml``. Relative
paths in the file are resolved against the file's directory. Environment variables override
the file: ``VOLTPROOF_GATEWAY__MQTT__PASSWORD=...`` (sections joined by ``__``).
"""

from __future__ import annotations

import contextvars
import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ledger.backoff import Backoff
from ledger.cosignature import CosignatureError, parse_witness_key
from ledger.errors import VoltproofError
from ledger.placeholders import has_placeholder_password, is_placeholder
from ledger.protocol import MAX_MESSAGE_SIZE, TELEMETRY_FILTER

CONFIG_NAME = "gateway.toml"
DEFAULT_WORKDIR = Path("voltproof-demo")

_CONFIG_FILE: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "voltproof_config_file", default=None
)


class ConfigError(VoltproofError, ValueError):
    """The configuration cannot be used; the message names the setting and the fix."""


class TomlFileSettings(BaseSettings):
    """Settings from explicit arguments, then the environment, then one TOML file.

    :meth:`from_file` reads the file; constructing the class directly reads none. The
    gateway's and the API's settings share this order, so an environment variable always
    beats the file.
    """

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
        """The settings of ``config`` under the environment; a ConfigError naming the file."""
        token = _CONFIG_FILE.set(config)
        try:
            return cls()
        except ValueError as exc:
            raise ConfigError(f"{config}: {exc}") from exc
        finally:
            _CONFIG_FILE.reset(token)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttSettings(_Section):
    """How the gateway reaches the broker."""

    url: str = "mqtt://127.0.0.1:1883"
    client_id: str = "voltproof-gateway-1"
    username: str | None = None
    password: SecretStr | None = None
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # MQTT 5 shared subscription group: several gateway processes split the load. Empty:
    # a plain subscription (one gateway). mosquitto 2.0.11 does not restore a persistent
    # session's shared subscription after a broker restart: messages published before the
    # gateway reconnects are lost there (docs/reliability.md); a plain one is restored.
    share_group: str = "voltproof-gateways"
    topic_filter: str = TELEMETRY_FILTER
    # Persistent session: the broker keeps queued messages while the gateway is away.
    session_expiry_s: Annotated[int, Field(ge=0)] = 7 * 24 * 3600
    # MQTT 5 Receive Maximum: unacknowledged messages the broker may send at once.
    receive_maximum: Annotated[int, Field(ge=1, le=65535)] = 1000
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    # Delays before reconnecting: the one jittered backoff (ledger.backoff) from min to max,
    # reset once a connection is subscribed again.
    reconnect_min_s: Annotated[float, Field(gt=0)] = 0.5
    reconnect_max_s: Annotated[float, Field(gt=0, lt=math.inf)] = 30.0
    # Publish a signed end-to-end receipt per device after each commit (ledger.receipt).
    receipts: bool = True

    @field_validator("url")
    @classmethod
    def _url_is_mqtt(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
            raise ValueError(
                f"broker url must look like mqtt://host:port or mqtts://host:port, got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _reconnect_range(self) -> Self:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError(
                f"mqtt.reconnect_min_s {self.reconnect_min_s} exceeds "
                f"mqtt.reconnect_max_s {self.reconnect_max_s}"
            )
        return self

    @property
    def reconnect(self) -> Backoff:
        """The schedule of the delays before reconnecting to the broker."""
        return Backoff(base_s=self.reconnect_min_s, cap_s=self.reconnect_max_s)

    @property
    def host(self) -> str:
        """Broker host name."""
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        """Broker port (1883, or 8883 for mqtts, unless the url says otherwise)."""
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def uses_tls(self) -> bool:
        """True for mqtts:// urls or when a CA file is configured."""
        return urlsplit(self.url).scheme == "mqtts" or self.tls_ca is not None

    @property
    def subscription(self) -> str:
        """The filter the gateway subscribes to: shared, or plain when ``share_group`` is empty."""
        if not self.share_group:
            return self.topic_filter
        return f"$share/{self.share_group}/{self.topic_filter}"


class PipelineSettings(_Section):
    """Batching and bounds of the verification pipeline."""

    queue_max: Annotated[int, Field(ge=1)] = 4000
    batch_max: Annotated[int, Field(ge=1)] = 500
    batch_wait_ms: Annotated[int, Field(ge=0)] = 20
    max_message_bytes: Annotated[int, Field(ge=256, le=MAX_MESSAGE_SIZE)] = MAX_MESSAGE_SIZE
    max_future_skew_s: Annotated[int, Field(ge=0)] = 120
    # A message may start at most this long before its device's enrolment (device clock skew).
    max_enrolment_skew_s: Annotated[int, Field(ge=0)] = 600
    # A message further ahead of its device's head is stored (one gap range) with an alarm.
    max_seq_jump: Annotated[int, Field(ge=0)] = 10_000
    quarantine_max_rows: Annotated[int, Field(ge=1)] = 100_000
    # Threads for the signature, schema and clock checks (PyNaCl releases the GIL). One
    # thread already overlaps the checks with the commit; more threads mostly contend for
    # the GIL (measured: two gateway processes with 1 worker each 4,400-5,600 msgs/s, with
    # 2 each 3,900-4,500). Scale out with gateway processes on a shared subscription instead.
    workers: Annotated[int, Field(ge=1, le=64)] = 1


class CheckpointSettings(_Section):
    """When the gateway signs a checkpoint (every N new leaves or T seconds), and whether."""

    every_leaves: Annotated[int, Field(ge=1)] = 1000
    every_s: Annotated[float, Field(gt=0)] = 5.0
    # Whether this process signs checkpoints and anchors them. Several gateway processes
    # may share one deployment (one database, one log); exactly one of them keeps this on.
    enabled: bool = True


class GbtSettings(_Section):
    """The GB/T 32960 TCP listener (``[gbt32960]``; off unless enabled)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 32960
    # A terminal that sends nothing for this long is disconnected (GB/T 32960 terminals
    # send a heartbeat well within it); a frame cut mid-way waits at most this long too.
    idle_timeout_s: Annotated[float, Field(gt=0)] = 300.0
    max_connections: Annotated[int, Field(ge=1)] = 10_000
    # Processes that verify 2025 frames' SM2 signatures (pure Python, ~10 ms of CPU each):
    # off the event loop, so MQTT intake never waits on them, and over every core. 0: one
    # per CPU.
    sm2_workers: Annotated[int, Field(ge=0, le=256)] = 0


class StoreSettings(_Section):
    """Where the gateway keeps its state: the SQLite file in ``data_dir`` or PostgreSQL."""

    # postgresql://user:password@host:port/dbname: several gateway processes on one database
    # share one log (docs/operations.md, "Several gateways"). Unset: data_dir/gateway.db.
    url: SecretStr | None = None
    pool_size: Annotated[int, Field(ge=1, le=100)] = 4
    # How often a gateway that does not sign tries to become the signer, and how often the
    # signer checks that it still holds the signer lock (PostgreSQL only).
    signer_poll_s: Annotated[float, Field(gt=0, le=60)] = 1.0

    @field_validator("url")
    @classmethod
    def _url_is_postgresql(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("postgresql://", "postgres://")
        ):
            raise ValueError("store.url must be a postgresql:// URL (or be left unset)")
        return value


class AnchorBackendName(StrEnum):
    """Which ledger checkpoints are anchored on."""

    LOCAL = "local"
    MEMORY = "memory"
    EVM = "evm"


class AnchorSettings(_Section):
    """The anchor backend (contract 3)."""

    backend: AnchorBackendName = AnchorBackendName.LOCAL
    refresh_s: Annotated[float, Field(gt=0)] = 2.0
    rpc_url: str | None = None
    contract: str | None = None
    key_file: Path | None = None
    confirmations: Annotated[int, Field(ge=0)] = 2
    chain_id: int | None = None
    poa: bool = False

    @model_validator(mode="after")
    def _evm_needs_chain(self) -> Self:
        if self.backend is AnchorBackendName.EVM:
            missing = [n for n in ("rpc_url", "contract", "key_file") if getattr(self, n) is None]
            if missing:
                raise ValueError(
                    f"anchors.backend = 'evm' needs anchors.{', anchors.'.join(missing)}"
                )
        return self


class MetricsSettings(_Section):
    """Prometheus /metrics endpoint (port 0 disables it)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 9464


class WitnessEndpoint(_Section):
    """One witness the gateway submits its checkpoints to (``[[witnesses]]``, contract 7)."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    """A label for logs and metrics (e.g. ``lessor``)."""
    url: str
    """The witness's submission prefix: the gateway POSTs to ``<url>/add-checkpoint``."""
    key: str
    """The witness's cosignature/v1 vkey; every answer is verified against it."""
    timeout_s: Annotated[float, Field(gt=0)] = 10.0
    retry_max_s: Annotated[float, Field(gt=0)] = 60.0
    max_clock_skew_s: Annotated[int, Field(ge=0)] = 300
    """How far a cosignature's timestamp may lie outside the gateway's clock."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"witness url {url!r} is not an http(s) URL with a host")
        if parts.query or parts.fragment:
            raise ValueError(f"witness url {url!r} must not have a query or fragment")
        return url.rstrip("/")

    @field_validator("key")
    @classmethod
    def _witness_key(cls, key: str) -> str:
        try:
            parse_witness_key(key)
        except CosignatureError as exc:
            raise ValueError(f"witness key {key!r}: {exc}") from exc
        return key


class GatewaySettings(TomlFileSettings):
    """Everything the gateway needs; see ``configs/gateway.example.toml``."""

    model_config = SettingsConfigDict(
        env_prefix="VOLTPROOF_GATEWAY__",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    origin: str = "voltproof.example/gw-1"
    data_dir: Path = Path("gateway")
    key_file: Path = Path("keys/gateway.key")
    operator_key_file: Path = Path("keys/operator.key")
    fleets: tuple[str, ...] = ()
    mqtt: MqttSettings = MqttSettings()
    pipeline: PipelineSettings = PipelineSettings()
    checkpoints: CheckpointSettings = CheckpointSettings()
    anchors: AnchorSettings = AnchorSettings()
    store: StoreSettings = StoreSettings()
    metrics: MetricsSettings = MetricsSettings()
    witnesses: tuple[WitnessEndpoint, ...] = ()
    gbt32960: GbtSettings = GbtSettings()
    log_level: str = "INFO"
    shutdown_timeout_s: Annotated[float, Field(gt=0)] = 30.0

    @field_validator("origin")
    @classmethod
    def _origin_is_one_line(cls, value: str) -> str:
        if not value or any(ch.isspace() for ch in value):
            raise ValueError("origin must be a non-empty string without white space")
        return value

    @field_validator("witnesses")
    @classmethod
    def _distinct_witnesses(
        cls, witnesses: tuple[WitnessEndpoint, ...]
    ) -> tuple[WitnessEndpoint, ...]:
        for what in ("name", "key"):
            values = [getattr(witness, what) for witness in witnesses]
            repeated = sorted({value for value in values if values.count(value) > 1})
            if repeated:
                raise ValueError(f"witnesses: {what} {repeated[0]!r} is listed twice")
        return witnesses

    @property
    def db_path(self) -> Path:
        """The gateway's SQLite database."""
        return self.data_dir / "gateway.db"

    def refuse_placeholders(self) -> None:
        """Raise ConfigError when a secret still holds an example value."""
        password = self.mqtt.password
        if password is not None and is_placeholder(password.get_secret_value()):
            raise ConfigError("mqtt.password is a placeholder; set a real one (or remove it)")
        if self.store.url is not None and has_placeholder_password(
            self.store.url.get_secret_value()
        ):
            raise ConfigError("the password in store.url is a placeholder; set a real one")


def load_settings(config: Path | None = None, *, workdir: Path | None = None) -> GatewaySettings:
    """Load settings from ``config`` (or ``workdir/gateway.toml``), resolving relative paths."""
    if config is None:
        config = (workdir or DEFAULT_WORKDIR) / CONFIG_NAME
    if not config.is_file():
        raise ConfigError(
            f"no gateway configuration at {config} (see configs/gateway.example.toml)"
        )
    settings = GatewaySettings.from_file(config)
    base = config.resolve().parent
    settings = _resolve_paths(settings, base)
    settings.refuse_placeholders()
    return settings


def _resolve(base: Path, path: Path | None) -> Path | None:
    if path is None:
        return None
    return path if path.is_absolute() else base / path


def _resolve_paths(settings: GatewaySettings, base: Path) -> GatewaySettings:
    mqtt = settings.mqtt.model_copy(
        update={
            "tls_ca": _resolve(base, settings.mqtt.tls_ca),
            "tls_cert": _resolve(base, settings.mqtt.tls_cert),
            "tls_key": _resolve(base, settings.mqtt.tls_key),
        }
    )
    anchors = settings.anchors.model_copy(
        update={"key_file": _resolve(base, settings.anchors.key_file)}
    )
    return settings.model_copy(
        update={
            "data_dir": _resolve(base, settings.data_dir),
            "key_file": _resolve(base, settings.key_file),
            "operator_key_file": _resolve(base, settings.operator_key_file),
            "mqtt": mqtt,
            "anchors": anchors,
        }
    )
