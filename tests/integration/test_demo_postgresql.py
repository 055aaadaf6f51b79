"""`voltproof demo --store postgresql`: three gateways on one log in the demo's own cluster.

The demo starts PostgreSQL kept in its work directory, runs three gateway processes on one
MQTT 5 shared subscription, says which one signs, checks a lessor's evidence offline and stops
the cluster, leaving no server process behind, whether it ends by ``--duration`` or Ctrl-C.
"""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.support.binaries import require_binary
from tests.support.cli_process import run_voltproof as voltproof
from voltproof.broker import free_port
from voltproof.postgres_cluster import INSTALL_HINT, PostgresCluster, pids_naming, server_bin_dir

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVER = re.compile(r"PostgreSQL listens on \S+ \(server (\S+)\)")


@pytest.fixture(autouse=True)
def _postgresql_installed() -> None:
    found = server_bin_dir()
    require_binary(None if found is None else str(found), "PostgreSQL (initdb)", INSTALL_HINT)


def _server_dir(stdout: str) -> str:
    found = SERVER.search(stdout)
    assert found is not None, stdout
    return found.group(1)


def _pump(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def _drain(lines: queue.Queue[str]) -> list[str]:
    found = []
    while not lines.empty():
        found.append(lines.get_nowait())
    return found


def _committed_leaves(log: Path) -> set[int]:
    """The leaf indexes one gateway's batches were given (``batch_committed`` events)."""
    leaves: set[int] = set()
    for line in log.read_text(encoding="utf-8").splitlines():
        if '"batch_committed"' not in line:
            continue
        event = json.loads(line)
        first, accepted = event.get("first_leaf"), event["accepted"]
        if accepted and first is not None:
            leaves.update(range(first, first + accepted))
    return leaves


def test_demo_runs_three_gateways_on_one_postgresql_log(tmp_path: Path) -> None:
    """Three gateways append to one log, one signs, the evidence verifies, no server is left,
    and the kept cluster, started again, holds a log the auditor finds clean."""
    workdir = tmp_path / "demo"
    demo = voltproof(
        "demo", "--workdir", str(workdir), "--duration", "25", "--devices", "4",
        "--api-port", "0", "--store", "postgresql",
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "Traceback" not in demo.stderr
    for number in (1, 2, 3):
        assert re.search(
            rf"  gateway-{number} +pid \d+  http://127\.0\.0\.1:\d+/metrics", demo.stdout
        )
    assert re.search(r"gateway-\d \(pid \d+\) is the elected checkpoint signer", demo.stdout)
    assert "  VALID, COMPLETE, independently anchored" in demo.stdout
    # The server is gone: no process runs on its data, and (as root) its run folder is deleted.
    server = _server_dir(demo.stdout)
    assert pids_naming(server) == []
    assert "stopping PostgreSQL" in demo.stdout
    if not server.startswith(str(workdir)):
        assert not Path(server).exists()
    assert (workdir / "postgresql" / "data" / "PG_VERSION").is_file()

    # Each gateway committed messages of its own, at leaf indexes no other gateway was given.
    per_gateway = [_committed_leaves(workdir / "logs" / f"gateway-{n}.log") for n in (1, 2, 3)]
    assert all(per_gateway), [len(leaves) for leaves in per_gateway]
    assert sum(map(len, per_gateway)) == len(set().union(*per_gateway))
    accepted = re.search(r"messages accepted by gateway-1 (\d+), gateway-2 (\d+), gateway-3 (\d+)",
                         demo.stdout)  # fmt: skip
    assert accepted is not None, demo.stdout
    assert all(int(count) > 0 for count in accepted.groups())

    # The kept cluster starts again on the port the configuration names: one log holding every
    # leaf the gateways committed, audited clean.
    with (workdir / "gateway.toml").open("rb") as config:
        url = tomllib.load(config)["store"]["url"]
    cluster = PostgresCluster.keep_in(workdir / "postgresql", port=urlsplit(url).port)
    try:
        with psycopg.connect(url) as db:
            row = db.execute("SELECT count(*) FROM leaves").fetchone()
        assert row is not None
        assert max(set().union(*per_gateway)) < row[0]
        audited = voltproof("audit", "--workdir", str(workdir), "--quiet")
        assert audited.returncode == 0, audited.stdout + audited.stderr
    finally:
        cluster.stop()
    assert cluster.server_pids() == []


def test_demo_on_the_server_of_a_url(tmp_path: Path, postgres_url: str) -> None:
    """With a URL the demo starts no cluster: its three gateways append to that database, and
    the evidence verifies."""
    workdir = tmp_path / "demo"
    demo = voltproof(
        "demo", "--workdir", str(workdir), "--duration", "20", "--devices", "4",
        "--api-port", "0", "--store", postgres_url,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "starting PostgreSQL" not in demo.stdout
    assert "stopping PostgreSQL" not in demo.stdout
    assert not (workdir / "postgresql").exists()
    assert "  VALID, COMPLETE, independently anchored" in demo.stdout
    per_gateway = [_committed_leaves(workdir / "logs" / f"gateway-{n}.log") for n in (1, 2, 3)]
    assert all(per_gateway), [len(leaves) for leaves in per_gateway]
    with psycopg.connect(postgres_url) as db:
        row = db.execute("SELECT count(*) FROM leaves").fetchone()
    assert row is not None
    assert max(set().union(*per_gateway)) < row[0]


def test_ctrl_c_stops_the_demo_and_its_postgresql(tmp_path: Path) -> None:
    """Ctrl-C while the demo runs stops every service and the cluster; nothing is left."""
    workdir = tmp_path / "demo"
    command = [
        sys.executable, "-m", "voltproof", "demo", "--workdir", str(workdir), "--devices", "4",
        "--api-port", "0", "--store", "postgresql",
    ]  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    said: list[str] = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        reader = threading.Thread(target=_pump, args=(process.stdout, lines))
        reader.start()
        deadline = time.monotonic() + 180
        try:
            while not said or "is the elected checkpoint signer" not in said[-1]:
                try:
                    said.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
                except queue.Empty:
                    pytest.fail("the demo did not say which gateway signs:\n" + "".join(said))
            server = _server_dir("".join(said))
            assert pids_naming(server), "".join(said)
            process.send_signal(signal.SIGINT)
            process.wait(timeout=180)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            reader.join(timeout=10)
        errors = process.stderr.read() if process.stderr is not None else ""
    out = "".join(said) + "".join(_drain(lines))
    assert process.returncode in (0, 1), out + errors
    assert "Traceback" not in errors
    assert "stopping PostgreSQL" in out
    assert pids_naming(server) == []
    assert (workdir / "postgresql" / "data" / "PG_VERSION").is_file()


def test_demo_refuses_a_bad_store_without_a_traceback(tmp_path: Path) -> None:
    """A store that is no PostgreSQL URL is a usage error (2); a server that does not answer
    fails the command (1) with the reason; the password shows in neither."""
    wrong = voltproof("demo", "--workdir", str(tmp_path / "a"), "--store", "mysql://u:hunter2@h/x")
    assert wrong.returncode == 2, wrong.stderr
    assert "--store must be sqlite, postgresql or a postgresql://... URL" in wrong.stderr
    unreachable = voltproof(
        "demo", "--workdir", str(tmp_path / "b"), "--devices", "4",
        "--store", f"postgresql://voltproof:hunter2@127.0.0.1:{free_port()}/voltproof",
    )  # fmt: skip
    assert unreachable.returncode == 1, unreachable.stdout + unreachable.stderr
    assert "cannot use the PostgreSQL store" in unreachable.stderr
    for result in (wrong, unreachable):
        assert "Traceback" not in result.stderr
        assert "hunter2" not in result.stdout + result.stderr


def test_demo_refuses_to_mix_sqlite_and_postgresql_in_one_workdir(tmp_path: Path) -> None:
    """A work directory whose log is in SQLite is not continued on PostgreSQL (the devices'
    chains would continue from a log the new store does not hold), and the other way round."""
    sqlite_dir = tmp_path / "sqlite"
    (sqlite_dir / "gateway").mkdir(parents=True)
    (sqlite_dir / "gateway" / "gateway.db").touch()
    refused = voltproof("demo", "--workdir", str(sqlite_dir), "--store", "postgresql")
    assert refused.returncode == 1
    assert "keeps its log in SQLite" in refused.stderr
    postgresql_dir = tmp_path / "postgresql"
    (postgresql_dir / "postgresql").mkdir(parents=True)
    refused = voltproof("demo", "--workdir", str(postgresql_dir))
    assert refused.returncode == 1
    assert "keeps its log on PostgreSQL" in refused.stderr
    assert "Traceback" not in refused.stderr
