"""configs/systemd: systemd itself reads every unit without a warning (``systemd-analyze verify``).

``tests/unit/test_systemd_units.py`` parses each ``ExecStart`` with voltproof's own parser;
this one hands each unit to systemd, which reports a misspelt directive or a value it
cannot parse (and ignores it at boot: a sandboxing line that silently does nothing). The
units name ``/usr/bin/voltproof``, which systemd checks is executable; the copies checked
here name a stand-in with the same arguments.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.binaries import require_binary
from tests.support.paths import REPO

pytestmark = pytest.mark.integration

UNITS = sorted((REPO / "configs" / "systemd").glob("*.service"))
INSTALLED = "/usr/bin/voltproof"


def _verify(unit: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` of a copy of ``unit`` whose program is an executable stub."""
    analyze = require_binary(
        shutil.which("systemd-analyze"), "systemd-analyze", "apt-get install -y systemd"
    )
    stub = tmp_path / "bin" / "voltproof"
    stub.parent.mkdir(exist_ok=True)
    stub.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    stub.chmod(0o755)
    text = unit.read_text(encoding="utf-8")
    assert f"ExecStart={INSTALLED} " in text
    copy = tmp_path / unit.name
    copy.write_text(text.replace(f"ExecStart={INSTALLED} ", f"ExecStart={stub} "), "utf-8")
    return subprocess.run(
        [analyze, "verify", "--man=no", str(copy)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize("unit", UNITS, ids=[u.stem for u in UNITS])
def test_systemd_reads_the_unit_without_a_warning(unit: Path, tmp_path: Path) -> None:
    """No unknown directive, no value systemd would ignore, exit 0."""
    result = _verify(unit, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_a_misspelt_directive_is_reported(tmp_path: Path) -> None:
    """The check can fail: a misspelt directive and an unparsable value are named."""
    broken = tmp_path / "src" / "voltproof-gateway.service"
    broken.parent.mkdir()
    text = (REPO / "configs" / "systemd" / "voltproof-gateway.service").read_text("utf-8")
    broken.write_text(
        text.replace("ProtectHome=yes", "ProtectHomme=yes").replace(
            "Restart=always", "Restart=sometimes"
        ),
        encoding="utf-8",
    )
    result = _verify(broken, tmp_path)
    assert "Unknown key 'ProtectHomme'" in result.stderr
    assert "sometimes" in result.stderr
