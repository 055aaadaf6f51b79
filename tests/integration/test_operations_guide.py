"""docs/operations.md is a test: every ``sh`` block runs, in order, against real processes.

The blocks run in one ``bash -euo pipefail`` session in an empty temporary directory (so a
variable or a function one block defines is there for the next), with the variables the guide
documents: ``$VOLTPROOF`` (this checkout's command), ``$CONFIGS`` (its ``configs/``) and free
ports ``$MQTT_PORT`` and ``$API_PORT``. The blocks start mosquitto, the gateway, two agents and
the API themselves, write their process ids to ``run/*.pid`` and stop them in the last block;
whatever a failing run left behind is stopped here, by those ids.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.binaries import require_binary
from tests.support.paths import REPO
from voltproof.broker import INSTALL_HINT, find_mosquitto, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GUIDE = REPO / "docs" / "operations.md"
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)
RUN_TIMEOUT_S = 600  # a hung process fails the test instead of hanging CI; not a measurement


def sh_blocks(text: str) -> list[str]:
    """The ``sh`` blocks of a markdown text, in order."""
    return [match.group(1) for match in SH_BLOCK.finditer(text)]


def guide_script(blocks: list[str]) -> str:
    """One bash script running ``blocks`` in order, naming the block that failed."""
    parts = [
        "set -euo pipefail",
        "BLOCK=0",
        "trap 'echo \"operations guide: block $BLOCK failed (script line $LINENO)\" >&2' ERR",
    ]
    for number, block in enumerate(blocks, start=1):
        parts += [f"BLOCK={number}", block]
    parts.append('echo "operations guide: all $BLOCK blocks ran"')
    return "\n".join(parts) + "\n"


def test_the_guide_has_the_deployment_in_order() -> None:
    """The guide walks the whole deployment, and nothing is left running at its end."""
    blocks = sh_blocks(GUIDE.read_text(encoding="utf-8"))
    text = "\n".join(blocks)
    steps = [
        "keys new deploy/keys/gateway.key",
        "devices --workdir deploy enroll",
        "broker-credentials",
        "openssl req -x509",
        "mosquitto -c",
        "gateway --workdir deploy",
        "agent --config",
        "api keys create",
        "leases add",
        "anchors export",
        "verify lessor/",
        "rotate pack-0001",
        "revoke bus-0001",
        ".backup",
        "gateway check",
        "gateway migrate",
    ]
    positions = [text.find(step) for step in steps]
    assert -1 not in positions, [s for s, p in zip(steps, positions, strict=True) if p < 0]
    assert positions == sorted(positions)
    assert "kill" in blocks[-1]


def test_guide_script_names_the_failing_block(tmp_path: Path) -> None:
    """A failing block stops the run and is named (so a broken doc is found at once)."""
    script = guide_script(["true", "echo two", "false", "echo never"])
    result = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "block 3 failed" in result.stderr
    assert "never" not in result.stdout


def _pids(run_dir: Path) -> dict[str, int]:
    """The process id each ``run/<name>.pid`` file names, by name."""
    pids = {}
    for path in sorted(run_dir.glob("*.pid")):
        text = path.read_text(encoding="utf-8").strip()
        if text.isdigit():
            pids[path.stem] = int(text)
    return pids


@pytest.fixture
def deployment_dir(tmp_path: Path) -> Iterator[Path]:
    """An empty folder; whatever the guide started there and left running is stopped."""
    yield tmp_path
    for pid in _pids(tmp_path / "run").values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _logs(folder: Path) -> str:
    tails = []
    for path in sorted((folder / "logs").glob("*.log")):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        tails.append(f"--- {path.name} (last 15 lines)\n" + "\n".join(lines[-15:]))
    return "\n".join(tails)


def test_operations_guide_runs(deployment_dir: Path) -> None:
    """Every shell block of docs/operations.md succeeds, in order, against real processes."""
    require_binary(find_mosquitto(), "mosquitto", INSTALL_HINT)
    for tool, package in (("openssl", "openssl"), ("sqlite3", "sqlite3"), ("curl", "curl")):
        require_binary(shutil.which(tool), tool, f"apt-get install -y {package}")
    env = {
        **os.environ,
        "VOLTPROOF": f"{sys.executable} -m voltproof",
        "CONFIGS": str(REPO / "configs"),
        "MQTT_PORT": str(free_port()),
        "API_PORT": str(free_port()),
        "PYTHONPATH": str(REPO),
        "PATH": f"{Path(find_mosquitto() or 'mosquitto').parent}:{os.environ.get('PATH', '')}",
    }
    script = guide_script(sh_blocks(GUIDE.read_text(encoding="utf-8")))
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=deployment_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, (
        f"{result.stderr[-4000:]}\n--- stdout\n{result.stdout[-3000:]}\n{_logs(deployment_dir)}"
    )
    assert "all" in result.stdout
    assert "VALID" in result.stdout
    left_running = [name for name, pid in _pids(deployment_dir / "run").items() if _alive(pid)]
    assert not left_running, f"still running after the guide's last block: {left_running}"


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie that an init without reaping keeps is not running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
        return stat.rpartition(")")[2].split()[0] != "Z"
    return True
