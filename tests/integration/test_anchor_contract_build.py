"""The committed AnchorRegistry artefact is exactly what the pinned solc-js compiles."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ledger.anchors.registry import ARTIFACT, REGISTRY_ABI
from tests.support.binaries import require_binary
from tests.support.paths import REPO

pytestmark = pytest.mark.integration

COMMITTED = REPO / "ledger" / "anchors" / "AnchorRegistry.json"


def test_recompiled_artefact_is_byte_identical(tmp_path: Path) -> None:
    """``node contracts/compile.mjs`` reproduces the committed JSON byte for byte."""
    node = require_binary(shutil.which("node"), "node", "apt-get install nodejs npm")
    solc = REPO / "node_modules" / "solc" / "package.json"
    require_binary(str(solc) if solc.is_file() else None, "solc-js", "npm ci")
    out = tmp_path / "AnchorRegistry.json"
    subprocess.run(
        [node, str(REPO / "contracts" / "compile.mjs"), "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert out.read_bytes() == COMMITTED.read_bytes()


def test_artefact_matches_lockfile_and_settings() -> None:
    """The artefact names the solc version pinned in package-lock.json, paris and the optimizer."""
    lock = json.loads((REPO / "package-lock.json").read_text(encoding="utf-8"))
    pinned = lock["packages"]["node_modules/solc"]["version"]
    assert ARTIFACT["compiler"].startswith(f"solc-js {pinned}+")
    assert ARTIFACT["settings"]["evmVersion"] == "paris"
    assert ARTIFACT["settings"]["optimizer"]["enabled"] is True
    names = {item.get("name") for item in REGISTRY_ABI}
    assert {"anchor", "rootAt", "latestSize", "Anchored", "NotWriter", "SizeNotIncreasing"} <= names
