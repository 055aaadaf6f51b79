"""Three gateway processes on one PostgreSQL log, one mosquitto shared subscription, kill -9.

A publisher streams signed messages at QoS 1 while, trial after trial, the checkpoint signer
or a random gateway is killed with SIGKILL and started again. Afterwards: every message the
broker acknowledged is in the log exactly once, every checkpoint is signed by the gateway key
and consistent with the next, no two checkpoints of one size have different roots (as stored
and as logged by every signer), the store audits clean, and ``voltproof gateway check`` and
``voltproof audit`` say so on the shared database.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.shared_log import SharedLog, streaming, verdict, write_shared_log
from voltproof.broker import MosquittoBroker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GATEWAYS = 3
TRIALS = int(os.environ.get("VOLTPROOF_PG_KILL9_TRIALS", "10"))


def _wait_for_signer(shared: SharedLog, pids: set[int], timeout_s: float = 30.0) -> int:
    """The pid of the signer, once one of ``pids`` holds the lock."""
    deadline = time.monotonic() + timeout_s
    while (pid := shared.signer_pid()) not in pids:
        assert time.monotonic() < deadline, f"no signer among {pids}\n{shared.logs()}"
        time.sleep(0.05)
    assert pid is not None
    return pid


def test_three_gateways_survive_kill9_of_signer_and_others(
    tmp_path: Path, mosquitto: MosquittoBroker, postgres_url: str
) -> None:
    """Lost, duplicated or foreign messages, inconsistent or forked checkpoints: all zero."""
    shared = write_shared_log(tmp_path / "deployment", mosquitto, postgres_url, count=GATEWAYS)
    rng = random.Random(20261206)
    gateways = [shared.start(n) for n in range(GATEWAYS)]
    shared.wait_for_events("gateway_started", GATEWAYS)
    _wait_for_signer(shared, {g.pid for g in gateways})
    takeovers = 0
    with streaming(shared, gateways, mosquitto) as streamer:
        for trial in range(TRIALS):
            time.sleep(rng.uniform(0.3, 1.0))
            signer = _wait_for_signer(shared, {g.pid for g in gateways})
            victim = (
                next(n for n, g in enumerate(gateways) if g.pid == signer)
                if trial % 2 == 0
                else rng.randrange(GATEWAYS)
            )
            was_signer = gateways[victim].pid == signer
            gateways[victim].send_signal(signal.SIGKILL)
            gateways[victim].wait(10)
            if was_signer:
                survivors = {g.pid for n, g in enumerate(gateways) if n != victim}
                _wait_for_signer(shared, survivors)  # another takes over, victim still down
                takeovers += 1
            gateways[victim] = shared.start(victim)
    result = verdict(shared, streamer.sent)
    elections = len(shared.events("signer_elected"))
    print(f"3 gateways, kill -9 trials {TRIALS} ({takeovers} of the signer), {elections} "
          f"elections: {result}")  # fmt: skip
    assert (result.lost, result.duplicated, result.foreign) == (0, 0, 0)
    assert result.forked_sizes == ()
    assert result.report.ok, result.report.problems
    assert elections >= takeovers + 1
    for command in (["gateway", "check"], ["audit"]):
        checked = subprocess.run(
            [sys.executable, "-m", "voltproof", *command, "--config", str(shared.configs[1])],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stdout + checked.stderr
