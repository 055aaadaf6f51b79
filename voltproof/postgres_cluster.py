"""A throwaway PostgreSQL cluster: ``initdb`` + ``pg_ctl`` in a temporary folder.

The tests, the benchmark and (later) the demo start one when they need a database, as
:mod:`voltproof.broker` starts mosquitto.

Never the server that may already listen on 5432: the cluster listens on a free 127.0.0.1
port and on a socket in its own folder, and is stopped and deleted at the end. Debian keeps
the server binaries in ``/usr/lib/postgresql/<version>/bin`` (``scripts/setup.sh`` installs
the ``postgresql`` package when they are missing); the newest version there is used, then
``PATH``. PostgreSQL refuses to run as root, so as root the cluster belongs to the
``postgres`` system user (created when missing) and the binaries run through ``runuser``.
Every database asked for is new (``createdb``), so tests never see each other's data.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from voltproof.broker import free_port

SERVICE_USER = "postgres"
"""The system user that owns the cluster when the tests run as root (Debian's own)."""
SUPERUSER = "voltproof"
"""The cluster's superuser role; 127.0.0.1 connections are trusted (a throwaway cluster)."""
_TIMEOUT_S = 60


def server_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: Debian's newest version, else ``PATH``."""
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = sorted(
            (entry for entry in debian.iterdir() if (entry / "bin" / "initdb").is_file()),
            key=lambda entry: [int(part) for part in entry.name.split(".") if part.isdigit()],
        )
        if versions:
            return versions[-1] / "bin"
    found = shutil.which("initdb")
    return None if found is None else Path(found).resolve().parent


INSTALL_HINT = "scripts/setup.sh (apt-get install postgresql)"


class PostgresUnavailableError(RuntimeError):
    """The PostgreSQL server binaries are not installed."""


def _service_user() -> str | None:
    """The user the server runs as: ``None`` for the current (non-root) user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(  # noqa: S603 - fixed argv, no shell
            [  # noqa: S607 - useradd from the system PATH (root only)
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_USER,
            ],
            check=True,
            capture_output=True,
        )
    return SERVICE_USER


@dataclass(slots=True, kw_only=True)
class PostgresCluster:
    """A running throwaway cluster; :meth:`start` makes one, :meth:`stop` removes it."""

    bin_dir: Path
    folder: Path
    port: int
    user: str | None
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def log_file(self) -> Path:
        return self.folder / "server.log"

    @classmethod
    def start(cls) -> PostgresCluster:
        """initdb a new cluster in a temporary folder and start it on a free port."""
        bin_dir = server_bin_dir()
        if bin_dir is None:
            raise PostgresUnavailableError(f"PostgreSQL is not installed; run {INSTALL_HINT}")
        user = _service_user()
        folder = Path(tempfile.mkdtemp(prefix="voltproof-pg-"))
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        cluster = cls(bin_dir=bin_dir, folder=folder, port=free_port(), user=user)
        cluster._run(
            "initdb", "-D", str(cluster.data_dir), "-U", SUPERUSER, "--auth=trust",
            "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        cluster.start_server()
        return cluster

    def start_server(self) -> None:
        """Start (or restart after :meth:`stop_server`) the server on the same port and data."""
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200 -c shared_buffers=64MB"
        )
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-o", options, "-l", str(self.log_file),
            "-w", "-t", str(_TIMEOUT_S), "start",
        )  # fmt: skip

    def stop_server(self, *, mode: str = "fast") -> None:
        """Stop the server (``fast``: disconnect clients; ``immediate``: as a crash would)."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def stop(self) -> None:
        """Stop the server and delete the cluster."""
        try:
            self.stop_server(mode="immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """A ``postgresql://`` URL of ``database`` over TCP."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database; its URL."""
        name = f"t{next(self._names)}"
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, name)
        return self.url(name)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        result = subprocess.run(  # noqa: S603 - the server's own binaries, fixed argv, no shell
            command,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
            cwd=self.folder,
        )
        if result.returncode != 0:
            log = self.log_file.read_text(errors="replace") if self.log_file.is_file() else ""
            raise RuntimeError(
                f"{program} failed ({result.returncode}): {result.stderr.strip()}\n{log[-2000:]}"
            )
