"""Checks that databases, logs and secrets are readable by their owner only."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Final

PRIVATE_SUFFIXES: Final = (
    ".db", ".db-wal", ".db-shm", ".sqlite3", ".sqlite3-wal", ".sqlite3-shm",
    ".log", ".key", ".passwd", ".txt",
)  # fmt: skip
"""What a deployment or demo holds that only its owner may read (public files such as the
verifier key text are named in :data:`PUBLIC_NAMES`)."""

PUBLIC_NAMES: Final = frozenset({"gateway-verifier-key.txt"})


def mode(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


def private_paths(root: Path) -> list[Path]:
    """Every database, log and secret under ``root`` (and everything under ``secrets/``)."""
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name in PUBLIC_NAMES:
            continue
        if path.name.endswith(PRIVATE_SUFFIXES) or "secrets" in path.relative_to(root).parts:
            found.append(path)
    return found


def assert_private(root: Path, *, directories: bool = True) -> None:
    """Every private file under ``root`` is 0600 and (``directories``) every directory
    holding one 0700."""
    files = private_paths(root)
    assert files, f"no database, log or secret under {root}"
    wrong = {str(p.relative_to(root)): oct(mode(p)) for p in files if mode(p) != 0o600}
    dirs = {p.parent for p in files} if directories else set()
    wrong |= {str(d.relative_to(root)) + "/": oct(mode(d)) for d in dirs if mode(d) != 0o700}
    assert not wrong, f"not private: {wrong}"
