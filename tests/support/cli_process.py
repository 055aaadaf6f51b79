"""``python -m voltproof ARGS`` as its own process, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO


def run_voltproof(
    *args: str, timeout: float = 300, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """Run the console script of this checkout; output captured as text, never raising on a
    non-zero exit. ``VOLTPROOF_DEBUG`` is left out, so an error is shown as a user sees it.
    ``timeout`` guards against a hang; it is no measurement."""
    env = {k: v for k, v in os.environ.items() if k != "VOLTPROOF_DEBUG"}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "voltproof", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout, check=False,
    )  # fmt: skip
