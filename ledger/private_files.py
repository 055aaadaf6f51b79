"""Files only their owner may read: databases, logs and secrets 0600 in directories 0700.

The evidence store, the anchor table, the API's key hashes and the logs hold data of every
tenant; group or world access would hand it to any local user. Used by every adapter that
creates such a file (the core itself creates none; :mod:`ledger.keys` writes key files the same
way with ``O_EXCL``). An existing file or directory is tightened to these modes on open, so a
deployment made by an older voltproof is corrected the next time it runs.

SQLite creates a database's ``-wal``, ``-shm`` and ``-journal`` files with the database file's
own mode, so making the database 0600 before SQLite first opens it covers them.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Final

FILE_MODE: Final = 0o600
DIR_MODE: Final = 0o700


def _make_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents, each new one 0700 (``mkdir(parents=True)``
    would give the parents the umask's mode)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=DIR_MODE, exist_ok=True)
        directory.chmod(DIR_MODE)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents, 0700) if needed and make it 0700; ``path``.

    Raises ``NotADirectoryError`` when ``path`` is a file (whose mode is left alone).
    """
    _make_dirs(path)
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))
    path.chmod(DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty (0600, never following a link) if missing, else make it 0600.

    Its directory must exist (a missing one is a mistake to report, not to paper over) and is
    left as it is (it may be shared, like a working directory: the apps make the directories
    they own 0700 with :func:`private_dir`). Raises ``OSError`` when it cannot.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


def open_private_log(path: Path) -> int:
    """A file descriptor appending to the log ``path`` (0600, its directory made 0700)."""
    private_dir(path.parent)
    private_file(path)
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
