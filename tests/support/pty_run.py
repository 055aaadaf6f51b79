"""Run ``voltproof`` with its stderr on a pseudo-terminal, as a user at a terminal sees it.

Progress bars draw only when stderr is a terminal; a pipe (every other test) sees none. The
terminal's output is read on a thread while the command runs, so a chatty bar never blocks
the command on a full terminal buffer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass

from tests.support.paths import REPO


@dataclass(frozen=True, slots=True)
class TerminalRun:
    """What a command printed on stdout (a pipe) and on its terminal (stderr)."""

    returncode: int
    stdout: str
    terminal: str


def run_on_a_terminal(*args: str, timeout_s: float = 120) -> TerminalRun:
    """``python -m voltproof ARGS`` with stderr on a new pseudo-terminal."""
    main, child = os.openpty()
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(main, 65536)
            except OSError:  # EIO: every holder of the terminal's other end has closed it
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read, name="pty-reader", daemon=True)
    reader.start()
    env = {**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm", "COLUMNS": "120"}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "voltproof", *args],
            stdout=subprocess.PIPE, stderr=child, stdin=subprocess.DEVNULL, text=True,
            env=env, timeout=timeout_s, check=False,
        )  # fmt: skip
    finally:
        os.close(child)
    reader.join(timeout_s)
    os.close(main)
    return TerminalRun(
        returncode=result.returncode,
        stdout=result.stdout,
        terminal=b"".join(chunks).decode("utf-8", errors="replace"),
    )
