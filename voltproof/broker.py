"""Start and stop a local mosquitto broker with the project's configuration.

Used by the demo and by the integration tests (each on a free port of 127.0.0.1, with its
own persistence directory), so that what is tested is the configuration that ships: the
limits of ``configs/mosquitto/limits.conf`` always; with a password file, client ids bound
to usernames (``use_username_as_clientid``) and the ACL; with :class:`TlsFiles`, a second
listener that speaks TLS only. ``persistence=False`` gives an amnesiac broker (it forgets
sessions, queues and retained messages at every restart), for the reliability tests.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from ledger.errors import VoltproofError
from ledger.private_files import open_private_log, private_dir

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "mosquitto"
LIMITS_CONF = CONFIGS / "limits.conf"
ACL_CONF = CONFIGS / "acl.conf"
# mosquitto 2.x password hashes: $7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512>
PASSWORD_ITERATIONS = 101
PASSWORD_SALT_BYTES = 12
INSTALL_HINT = "apt-get install -y mosquitto"


class BrokerError(VoltproofError, RuntimeError):
    """The broker could not be found, started or stopped."""


def find_mosquitto() -> str | None:
    """Return the path of the mosquitto binary, or None when it is not installed."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def password_line(username: str, password: str, *, salt: bytes | None = None) -> str:
    """One line of a mosquitto 2.x ``password_file`` for ``username``."""
    if not username or ":" in username or "\n" in username:
        raise ValueError(f"invalid broker username {username!r}")
    salt = salt if salt is not None else os.urandom(PASSWORD_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PASSWORD_ITERATIONS)
    b64 = base64.b64encode
    return f"{username}:$7${PASSWORD_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


def write_password_file(path: Path, credentials: Mapping[str, str]) -> Path:
    """Write a mosquitto password file (mode 0600) for ``{username: password}``."""
    lines = "".join(password_line(user, pw) + "\n" for user, pw in sorted(credentials.items()))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(lines)
    return path


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsFiles:
    """PEM files of a TLS listener: the CA that signed the broker's certificate, and that pair."""

    cafile: Path
    certfile: Path
    keyfile: Path


@dataclass(kw_only=True)
class MosquittoBroker:
    """One mosquitto process listening on ``host:port`` with state kept in ``workdir``.

    ``password_file`` and ``acl_file`` switch off anonymous access (see
    ``configs/mosquitto/mosquitto.conf`` for the production layout).
    """

    workdir: Path
    host: str = "127.0.0.1"
    port: int = 0
    binary: str | None = None
    password_file: Path | None = None
    acl_file: Path | None = None
    tls: TlsFiles | None = None
    tls_port: int = 0
    persistence: bool = True
    startup_timeout_s: float = 10.0
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.port == 0:
            self.port = free_port(self.host)
        if self.tls is not None and self.tls_port == 0:
            self.tls_port = free_port(self.host)

    @property
    def tls_url(self) -> str | None:
        """The TLS listener as ``mqtts://host:port``, when there is one."""
        return f"mqtts://{self.host}:{self.tls_port}" if self.tls is not None else None

    @property
    def url(self) -> str:
        """The broker address as ``mqtt://host:port``."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path:
        """Where the broker writes its log."""
        return self.workdir / "mosquitto.log"

    def config_text(self) -> str:
        """The configuration this broker runs with: listener, persistence and the limits."""
        lines = [
            f"listener {self.port} {self.host}",
            f"persistence_location {self.workdir}/",
            # stderr (redirected to log_path) is unbuffered; a log file is not.
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            # Started as root, mosquitto would switch to its own user and lose access to
            # workdir; it keeps the user that started it instead (ignored for non-root).
            f"user {getpass.getuser()}",
        ]
        if self.password_file is None:
            lines.append("allow_anonymous true")
        else:
            # A client id is its username: one device's password can take over only that
            # device's own session (mosquitto refuses a client without a username then).
            lines += [
                "allow_anonymous false",
                f"password_file {self.password_file}",
                "use_username_as_clientid true",
            ]
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        if self.tls is not None:
            lines += [
                f"listener {self.tls_port} {self.host}",
                f"cafile {self.tls.cafile}",
                f"certfile {self.tls.certfile}",
                f"keyfile {self.tls.keyfile}",
                "tls_version tlsv1.2",
            ]
        limits = LIMITS_CONF.read_text(encoding="utf-8")
        if not self.persistence:
            limits = limits.replace("persistence true", "persistence false")
        return "\n".join(lines) + "\n" + limits

    def start(self) -> None:
        """Start the broker and wait until it accepts connections."""
        if self.running:
            return
        binary = self.binary or find_mosquitto()
        if binary is None:
            raise BrokerError(f"mosquitto is not installed; install it with: {INSTALL_HINT}")
        private_dir(self.workdir)
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self.config_text(), encoding="utf-8")
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with os.fdopen(open_private_log(self.log_path), "ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [binary, "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + self.startup_timeout_s
        while not (self._logged_running(log_offset) and _port_open(self.host, self.port)):
            if self._process.poll() is not None:
                code = self._process.returncode
                self._terminate(signal.SIGKILL, 1.0)
                raise BrokerError(f"mosquitto exited with {code}: {self._log_tail(log_offset)}")
            if time.monotonic() > deadline:
                self.kill()
                raise BrokerError(f"mosquitto did not listen on {self.host}:{self.port} in time")
            time.sleep(0.02)

    def _logged_running(self, offset: int) -> bool:
        """True once this start's log says the broker runs (the port alone may be another's)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return b" running" in log.read()
        except FileNotFoundError:
            return False

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the broker gracefully (SIGTERM: it saves its persistence file)."""
        self._terminate(signal.SIGTERM, timeout_s)

    def kill(self) -> None:
        """Kill the broker at once (SIGKILL), as a power cut would."""
        self._terminate(signal.SIGKILL, 10.0)

    def restart(self) -> None:
        """Stop gracefully and start again on the same port with the same state."""
        self.stop()
        self.start()

    def _log_tail(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace").strip()[-500:]
        except FileNotFoundError:
            return "(no log written)"

    def _terminate(self, sig: signal.Signals, timeout_s: float) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(BrokerError):
            self.stop()
