"""A throwaway PostgreSQL cluster: ``initdb`` + ``pg_ctl`` in a temporary folder.

The tests and the benchmark start one when they need a database (:meth:`PostgresCluster.start`:
new and deleted at the end), as :mod:`voltproof.broker` starts mosquitto; ``voltproof demo
--store postgresql`` keeps one in its work directory (:meth:`PostgresCluster.keep_in`), so a
later demo continues the same log.

Never the server that may already listen on 5432: the cluster listens on a free 127.0.0.1
port and on a socket in its own folder, and is stopped and deleted at the end. Debian keeps
the server binaries in ``/usr/lib/postgresql/<version>/bin`` (``scripts/setup.sh`` installs
the ``postgresql`` package when they are missing); the newest version there is used, then
``PATH``. PostgreSQL refuses to run as root, so as root the cluster belongs to the
``postgres`` system user (created when missing) and the binaries run through ``runuser``.
Every database asked for is new (``createdb``), so tests never see each other's data.

A kept cluster run by root cannot run from the work directory itself: that folder is private
to root (mode 0700, as are its parents under a temporary directory), and the ``postgres`` user
may not enter it. Its data then runs from a copy in a temporary folder owned by ``postgres`` and
is copied back when the server has stopped (a stopped cluster's data directory is a complete
file-system backup: PostgreSQL documentation, "File System Level Backup"). A root process
killed with SIGKILL loses what that run wrote; the copy in the work directory stays as the last
clean stop left it.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ledger.errors import VoltproofError
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


class PostgresUnavailableError(VoltproofError, RuntimeError):
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
    keep: Path | None = None
    """Where the cluster's data is kept between runs (:meth:`keep_in`); ``None``: deleted."""
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
        bin_dir = _require_bin_dir()
        user = _service_user()
        cluster = cls(bin_dir=bin_dir, folder=_temporary_folder(user), port=free_port(), user=user)
        cluster._initdb(sync=False)
        cluster.start_server()
        return cluster

    @classmethod
    def keep_in(cls, keep: Path, *, port: int | None = None) -> PostgresCluster:
        """Start the cluster kept in ``keep`` (``initdb`` the first time) on ``port`` (default:
        a free one).

        ``keep`` must be a private folder of the current user. A server a killed earlier run
        left running on the same data is stopped first.
        """
        bin_dir = _require_bin_dir()
        user = _service_user()
        kept = keep / "data"
        if user is None:
            folder = keep
        else:
            folder = _temporary_folder(user)
            if kept.is_dir():
                shutil.copytree(kept, folder / "data", symlinks=True)
                _chown_tree(folder / "data", user)
        cluster = cls(
            bin_dir=bin_dir, folder=folder, port=port or free_port(), user=user, keep=keep
        )
        try:
            if not (cluster.data_dir / "PG_VERSION").is_file():
                cluster._initdb(sync=True)
            elif cluster.running():
                cluster.stop_server()
            cluster.start_server()
        except BaseException:
            if user is not None:
                shutil.rmtree(folder, ignore_errors=True)
            raise
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

    def running(self) -> bool:
        """Whether a server runs on this data directory (``pg_ctl status``)."""
        return self._run_status("pg_ctl", "status", "-D", str(self.data_dir)) == 0

    def stop(self) -> None:
        """Stop the server; delete the cluster, or (kept) leave its data in :attr:`keep`.

        A kept cluster stops ``fast`` (clients disconnected, a shutdown checkpoint written), so
        the data left is clean; a throwaway one stops ``immediate``. Calling it again, or after
        the server died, only does what is left.
        """
        if self.keep is None:
            try:
                if self.data_dir.is_dir():
                    self.stop_server(mode="immediate")
            finally:
                shutil.rmtree(self.folder, ignore_errors=True)
            return
        if self.data_dir.is_dir() and self.running():
            self.stop_server(mode="fast")
        if self.folder == self.keep:
            return
        try:
            if (self.data_dir / "PG_VERSION").is_file():
                fresh = self.keep / "data.new"
                shutil.rmtree(fresh, ignore_errors=True)
                shutil.copytree(self.data_dir, fresh, symlinks=True)
                old = self.keep / "data.old"
                if (self.keep / "data").is_dir():
                    (self.keep / "data").rename(old)
                fresh.rename(self.keep / "data")
                shutil.rmtree(old, ignore_errors=True)
            if self.log_file.is_file():
                shutil.copyfile(self.log_file, self.keep / "server.log")
                (self.keep / "server.log").chmod(0o600)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def server_pids(self) -> list[int]:
        """Process ids of every process whose command line names this data directory
        (the postmaster; its children carry only a title), for checks after :meth:`stop`."""
        return pids_naming(str(self.data_dir))

    def url(self, database: str = "postgres") -> str:
        """A ``postgresql://`` URL of ``database`` over TCP."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database; its URL."""
        name = f"t{next(self._names)}"
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, name)
        return self.url(name)

    def ensure_database(self, name: str) -> str:
        """The URL of database ``name``, created if the cluster does not hold it yet."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True) as db:
            found = db.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if found is None:
                db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def _initdb(self, *, sync: bool) -> None:
        # A throwaway cluster skips fsync at initdb; a kept one is written durably.
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust",
            "--encoding=UTF8", "--locale=C.UTF-8", *(() if sync else ("--no-sync",)),
        )  # fmt: skip

    def _command(self, program: str, *args: str) -> list[str]:
        command = [str(self.bin_dir / program), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        return command

    def _run_status(self, program: str, *args: str) -> int:
        """Run ``program`` and return its exit code (no error for a non-zero one)."""
        return subprocess.run(  # noqa: S603 - the server's own binaries, fixed argv, no shell
            self._command(program, *args),
            capture_output=True,
            timeout=_TIMEOUT_S,
            check=False,
            cwd=self.folder,
        ).returncode

    def _run(self, program: str, *args: str) -> None:
        command = self._command(program, *args)
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


def _require_bin_dir() -> Path:
    bin_dir = server_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailableError(f"PostgreSQL is not installed; run {INSTALL_HINT}")
    return bin_dir


def _temporary_folder(user: str | None) -> Path:
    """A new temporary folder the server's user owns."""
    folder = Path(tempfile.mkdtemp(prefix="voltproof-pg-"))
    if user is not None:
        _chown_tree(folder, user)
    return folder


def _chown_tree(root: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    os.chown(root, entry.pw_uid, entry.pw_gid)
    for parent, folders, files in os.walk(root):
        for name in (*folders, *files):
            os.chown(Path(parent) / name, entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def pids_naming(text: str) -> list[int]:
    """Process ids whose command line contains ``text`` (Linux ``/proc``)."""
    return list(_pids_naming(text))


def _pids_naming(text: str) -> Iterator[int]:
    wanted = text.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if wanted in command:
            yield int(entry.name)
