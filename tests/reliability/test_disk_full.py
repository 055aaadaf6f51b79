"""A full disk under the gateway: it stops acknowledging, says why, and resumes losing nothing.

The gateway's data directory is a real, tiny filesystem (tmpfs mounted with ``size=``).
Once a filler file takes the last free byte, every commit fails with SQLite's "database or
disk is full"; the gateway holds the batch, logs ``store_unavailable_not_acknowledging``
with that reason, and acknowledges nothing, so the broker keeps the messages in the
gateway's persistent session. When the filler is deleted the held batch commits and the
rest follows: every published message is logged exactly once and the store checks clean.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from gateway.audit import check_store
from ledger.keys import load_key_file
from tests.support.gateway_world import Deployment, write_deployment
from tests.support.processes import (
    connect_publisher,
    gateway_log,
    publish_rounds,
    start_gateway,
    wait_for_line,
    wait_for_log_size,
    wait_until_started,
)
from voltproof.broker import MosquittoBroker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FS_SIZE = "4m"
CHUNK = 64 * 1024


@contextlib.contextmanager
def tiny_filesystem(path: Path) -> Iterator[Path]:
    """Mount a ``FS_SIZE`` tmpfs on ``path`` (root only); unmount afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]  # root, or sudo without a prompt
    mounted = subprocess.run(
        [*sudo, "mount", "-t", "tmpfs", "-o", f"size={FS_SIZE}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(
            f"a tiny tmpfs cannot be mounted here (needs root or sudo without a password, as "
            f"scripts/setup.sh does): {mounted.stderr.strip()}"
        )
    try:
        yield path
    finally:
        subprocess.run([*sudo, "umount", "-l", str(path)], check=True)


def fill(directory: Path) -> Path:
    """Write a filler file until the filesystem has no byte left."""
    filler = directory / "filler"
    chunk = b"\0" * CHUNK
    with filler.open("wb", buffering=0) as out:
        while True:
            try:
                out.write(chunk)
            except OSError:
                break
        while True:  # the last partial chunk
            try:
                out.write(b"\0" * 512)
            except OSError:
                break
    return filler


def test_full_disk_holds_acks_and_resumes(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    """While the disk is full nothing is acknowledged; after freeing it nothing is lost."""
    deployment = write_deployment(tmp_path / "gw", mosquitto, devices=3, every_s=0.3)
    data_dir = deployment.settings.data_dir
    enrolled = data_dir.with_name("enrolled")
    shutil.move(data_dir, enrolled)
    registry = len(deployment.devices)
    with tiny_filesystem(data_dir):
        for item in enrolled.iterdir():
            shutil.copy2(item, data_dir / item.name)
        gateway = start_gateway(deployment)
        publisher = connect_publisher(mosquitto, "disk-full-publisher")
        try:
            wait_until_started(deployment)
            sent = publish_rounds(publisher, deployment, 5)
            wait_for_log_size(deployment.settings.db_path, registry + len(sent))
            filler = fill(data_dir)
            held = publish_rounds(publisher, deployment, 40)
            wait_for_line(deployment, '"store_unavailable_not_acknowledging"', count=2)
            size_while_full = _log_size(deployment)
            time.sleep(1.0)  # the broker keeps redelivering nothing: the batch is held
            assert _log_size(deployment) == size_while_full
            assert gateway.poll() is None, gateway_log(deployment)[-3000:]
            filler.unlink()
            wait_for_log_size(deployment.settings.db_path, registry + len(sent) + len(held))
            sent += held
        finally:
            publisher.loop_stop()
            publisher.disconnect()
            gateway.send_signal(signal.SIGTERM)
            code = gateway.wait(30)
        assert code == 0, gateway_log(deployment)[-3000:]
        logged = _logged(deployment, registry)
        key = load_key_file(deployment.settings.key_file)
        report = check_store(
            deployment.settings.db_path,
            origin=deployment.settings.origin,
            key_name=key.name,
            public_key=key.public_key,
            anchors_path=data_dir / "anchors.db",
        )
    lines = [line for line in gateway_log(deployment).splitlines() if "not_acknowledging" in line]
    assert "database or disk is full" in lines[0]
    lost = len(set(sent) - set(logged))
    duplicated = len(logged) - len(set(logged))
    print(
        f"disk full: published {len(sent)} ({len(held)} while full), logged {len(logged)}, "
        f"lost {lost}, duplicated {duplicated}, refusals logged {len(lines)}"
    )
    assert (lost, duplicated, len(logged)) == (0, 0, len(sent))
    assert report.problems == ()


def _log_size(deployment: Deployment) -> int:
    with closing(sqlite3.connect(deployment.settings.db_path)) as db:
        return int(db.execute("SELECT size FROM merkle_size").fetchone()[0])


def _logged(deployment: Deployment, registry: int) -> list[bytes]:
    with closing(sqlite3.connect(deployment.settings.db_path)) as db:
        rows = db.execute(
            "SELECT cose FROM leaves WHERE leaf_index >= ? ORDER BY leaf_index", (registry,)
        )
        return [bytes(cose) for (cose,) in rows]
