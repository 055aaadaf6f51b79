"""No secret ever reaches a log line or an error message.

``voltproof demo`` runs the broker with per-device passwords, the gateway (its MQTT password
from the environment), the simulated fleet (its device passwords and key seeds) and the
API (hashed API keys), all logging at their configured levels. While it runs, the API is
called with a valid key and with a wrong one. Afterwards no log file and no line of the
demo's error output holds any password, API key or private key seed, in any of the
encodings they are stored in. A gateway refused by the broker names the refusal, not the
password.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ledger.keys import load_key_file
from tests.support.gateway_world import write_deployment
from voltproof.broker import MosquittoBroker, write_password_file

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DASHBOARD = re.compile(r"dashboard\s+(http://127\.0\.0\.1:\d+)")
KEY = re.compile(r"(operator|lessor) key\s+(vpk_\S+)")


def _seed_forms(seed: bytes) -> set[str]:
    """The ways a seed can appear in text: hex, base64 (alone and as a key file writes it)."""
    return {
        seed.hex(),
        base64.b64encode(seed).decode(),
        base64.urlsafe_b64encode(seed).decode().rstrip("="),
        base64.b64encode(b"\x01" + seed).decode(),
    }


def _secrets(workdir: Path, api_keys: set[str]) -> set[str]:
    found: set[str] = set(api_keys)
    for key_file in [*workdir.rglob("*.key")]:
        found |= _seed_forms(load_key_file(key_file).seed)
    secrets_dir = workdir / "secrets"
    for line in (secrets_dir / "device-passwords.txt").read_text(encoding="utf-8").splitlines():
        found.add(line.split(":", 1)[1])
    for name in secrets_dir.glob("*.json"):
        data = json.loads(name.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            found |= {value for value in data.values() if isinstance(value, str)}
    return {secret for secret in found if len(secret) >= 8}


def _call(url: str, key: str) -> int:
    request = urllib.request.Request(f"{url}/api/assets", headers={"X-API-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_demo_logs_hold_no_secret(tmp_path: Path) -> None:
    """Gateway, simulator, API and broker logs and the demo's stderr contain no secret."""
    workdir = tmp_path / "demo"
    demo = subprocess.Popen(
        [sys.executable, "-m", "voltproof", "demo", "--workdir", str(workdir),
         "--duration", "30", "--devices", "4", "--api-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert demo.stdout is not None
    url = None
    deadline = time.monotonic() + 60
    shown: list[str] = []
    while url is None and time.monotonic() < deadline:
        line = demo.stdout.readline()
        shown.append(line)
        if match := DASHBOARD.search(line):
            url = match.group(1)
    assert url is not None, "".join(shown)
    keys: dict[str, str] = {}
    while len(keys) < 2 and time.monotonic() < deadline:
        line = demo.stdout.readline()
        shown.append(line)
        if match := KEY.search(line):
            keys[match.group(1)] = match.group(2)
    assert set(keys) == {"operator", "lessor"}, "".join(shown)
    statuses = {_call(url, key) for key in keys.values()}
    refused = _call(url, "vpk_" + "x" * 40)
    time.sleep(2)
    demo.send_signal(signal.SIGINT)
    _out, err = demo.communicate(timeout=60)
    assert demo.returncode == 0, err[-3000:]
    assert statuses <= {200, 403}
    assert refused == 401
    secrets = _secrets(workdir, set(keys.values()))
    assert len(secrets) >= 10
    logs = {path: path.read_text(encoding="utf-8", errors="replace") for path in
            workdir.rglob("*.log")}  # fmt: skip
    logs[Path("stderr")] = err
    assert sum(len(text) for text in logs.values()) > 1000
    leaks = [(str(path), secret[:6]) for path, text in logs.items() for secret in secrets
             if secret in text]  # fmt: skip
    print(f"secrets: {len(secrets)} checked in {len(logs)} logs ({sum(map(len, logs.values()))} "
          f"chars): leaks {leaks}")  # fmt: skip
    assert leaks == []


def test_refused_gateway_does_not_echo_its_password(tmp_path: Path) -> None:
    """A gateway whose broker password is wrong exits 1 naming the refusal, not the password."""
    password_file = write_password_file(tmp_path / "passwords", {"gateway": "right-pass-4711"})
    broker = MosquittoBroker(workdir=tmp_path / "broker", password_file=password_file)
    broker.start()
    try:
        deployment = write_deployment(tmp_path / "gw", broker, devices=1)
        config = deployment.config.read_text(encoding="utf-8")
        deployment.config.write_text(
            config.replace("[mqtt]\n", '[mqtt]\nusername = "gateway"\n'), encoding="utf-8"
        )
        wrong = "wrong-pass-0815-secret"
        result = subprocess.run(
            [sys.executable, "-m", "voltproof", "gateway", "--config", str(deployment.config)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "VOLTPROOF_GATEWAY__MQTT__PASSWORD": wrong},
            check=False,
        )
    finally:
        broker.kill()
    assert result.returncode == 1
    assert "voltproof gateway: error:" in result.stderr
    assert wrong not in result.stdout + result.stderr
    assert wrong not in broker.log_path.read_text(encoding="utf-8")
