"""Where the repository and the vendored test data are (nothing outside the repository is read)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
