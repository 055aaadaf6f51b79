"""The pieces a real deployment needs: broker accounts, the anchor export, keys, placeholders."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import shlex
import sqlite3
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest
from rich.console import Console

from firmware_sim.agent.config import AgentConfigError
from firmware_sim.agent.config import load_settings as load_agent_settings
from gateway.config import ConfigError, load_settings
from ledger.anchors.local import LocalAnchorBackend
from ledger.keys import create_key_file, load_key_file
from tests.support.gateway_devices import FakeDevice
from tests.support.paths import REPO
from voltproof.broker import password_line
from voltproof.cli import main
from voltproof.cli.progress import stages
from voltproof.demo import DEFAULT_DEVICES, SPARE_PACKS, buses_for, command_line


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A configured deployment (gateway.toml, gateway and operator keys), never started."""
    (tmp_path / "keys").mkdir()
    create_key_file(tmp_path / "keys" / "operator.key", name="operator")
    create_key_file(tmp_path / "keys" / "gateway.key", name="example.test/gw")
    (tmp_path / "gateway.toml").write_text(
        'origin = "example.test/gw"\nfleets = ["fleet-1"]\n', encoding="utf-8"
    )
    return tmp_path


def enroll(workdir: Path, device_id: str) -> None:
    """Enrol ``device_id`` in fleet-1 through the command line."""
    key = base64.b64encode(FakeDevice(device_id=device_id).public_key).decode()
    assert main(["devices", "--workdir", str(workdir), "enroll", "--id", device_id,
                 "--kind", "pack", "--fleet", "fleet-1", "--public-key", key]) == 0  # fmt: skip


def credentials(workdir: Path) -> int:
    """Run ``voltproof broker-credentials`` into ``workdir/broker``."""
    out = ["--out-dir", str(workdir / "broker"), "--passwords", str(workdir / "new-passwords")]
    return main(["broker-credentials", "--workdir", str(workdir), *out])


def matches(hash_line: str, user: str, password: str) -> bool:
    """Whether a mosquitto ``$7$`` line holds ``password`` for ``user``."""
    salt = base64.b64decode(hash_line.split("$")[3])
    return password_line(user, password, salt=salt) == hash_line


def test_broker_credentials_hash_passwords_and_scope_the_acl(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One hashed account per device and the gateway; each device writes only its topics."""
    enroll(workdir, "pack-1")
    enroll(workdir, "pack-2")
    assert credentials(workdir) == 0
    passwd = (workdir / "broker" / "passwd").read_text().splitlines()
    new = dict(line.split(":", 1) for line in (workdir / "new-passwords").read_text().splitlines())
    assert sorted(new) == ["pack-1", "pack-2", "voltproof-gateway"]
    assert stat.S_IMODE((workdir / "new-passwords").stat().st_mode) == 0o600
    assert stat.S_IMODE((workdir / "broker" / "passwd").stat().st_mode) == 0o600
    by_user = {line.split(":", 1)[0]: line for line in passwd}
    assert all(matches(by_user[user], user, pw) for user, pw in new.items())
    assert not any(pw in "\n".join(passwd) for pw in new.values())
    acl = (workdir / "broker" / "acl").read_text()
    assert "user pack-1\ntopic write voltproof/fleet-1/pack-1/telemetry\n" in acl
    assert (
        "user voltproof-gateway\ntopic read voltproof/+/+/telemetry\n"
        "topic read voltproof/+/+/status\ntopic write voltproof/+/+/receipt\n"
    ) in acl
    # Receipts: only the gateway writes them, a device reads only its own.
    assert "topic write voltproof/+/+/receipt\n" in acl.split("user pack-1")[0]
    assert "topic read voltproof/fleet-1/pack-1/receipt\n" in acl
    assert "pack-2/receipt" not in acl.split("user pack-2")[0]


def test_broker_credentials_keep_existing_accounts_and_drop_revoked(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second run adds only the new device; a revoked device loses its account."""
    enroll(workdir, "pack-1")
    assert credentials(workdir) == 0
    first = (workdir / "broker" / "passwd").read_text()
    enroll(workdir, "pack-2")
    assert main(["devices", "--workdir", str(workdir), "revoke", "pack-1"]) == 0
    capsys.readouterr()
    assert credentials(workdir) == 0
    out = capsys.readouterr().out
    assert "new: pack-2" in out
    assert "removed (revoked or no longer enrolled): pack-1" in out
    passwd = (workdir / "broker" / "passwd").read_text()
    gateway_line = next(x for x in first.splitlines() if x.startswith("voltproof-gateway:"))
    assert gateway_line in passwd
    assert "pack-1:" not in passwd
    assert "user pack-1\n" not in (workdir / "broker" / "acl").read_text()


def test_broker_credentials_without_a_store(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before any enrolment there is nothing to write: exit 1 with the reason."""
    assert credentials(workdir) == 1
    assert "enrol the devices first" in capsys.readouterr().err


def test_broker_credentials_refuse_a_device_named_like_the_gateway(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A device account may not take the gateway's username."""
    enroll(workdir, "voltproof-gateway")
    assert credentials(workdir) == 2
    assert "is also a device id" in capsys.readouterr().err


def test_broker_credentials_refuse_a_corrupt_password_file(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A password file that is not mosquitto's is named, not overwritten."""
    enroll(workdir, "pack-1")
    (workdir / "broker").mkdir()
    (workdir / "broker" / "passwd").write_text("not a password line\n")
    assert credentials(workdir) == 2
    assert "not a mosquitto password line" in capsys.readouterr().err


def test_anchor_export_writes_the_local_table(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``anchors export`` writes the table ``verify --anchors`` reads; none yet is a failure."""
    out = workdir / "anchors.json"
    assert main(["anchors", "export", "--workdir", str(workdir), "--out", str(out)]) == 1
    assert "has the gateway anchored yet" in capsys.readouterr().err
    (workdir / "gateway").mkdir()
    seed = load_key_file(workdir / "keys" / "gateway.key").seed

    async def create() -> None:
        await (
            await LocalAnchorBackend.open(workdir / "gateway" / "anchors.db", seed=seed)
        ).aclose()

    asyncio.run(create())
    assert main(["anchors", "export", "--workdir", str(workdir), "--out", str(out)]) == 0
    assert "0 anchors exported" in capsys.readouterr().out
    assert '"entries": []' in out.read_text()


def test_anchor_export_of_an_evm_deployment_is_a_usage_error(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An EVM deployment has no local table to export: the lessor uses ``verify --rpc``."""
    (workdir / "gateway.toml").write_text(
        'origin = "example.test/gw"\n[anchors]\nbackend = "evm"\nrpc_url = "http://127.0.0.1:1"'
        '\ncontract = "0x' + "00" * 20 + '"\nkey_file = "k"\n'
    )
    assert main(["anchors", "export", "--workdir", str(workdir), "--out", "x.json"]) == 2
    assert "verify --rpc" in capsys.readouterr().err


def test_keys_new_creates_missing_folders(tmp_path: Path) -> None:
    """``keys new deploy/keys/gateway.key`` works on a fresh machine (folders made 0700)."""
    assert main(["keys", "new", str(tmp_path / "deploy" / "keys" / "g.key"), "--name", "g"]) == 0
    assert stat.S_IMODE((tmp_path / "deploy" / "keys").stat().st_mode) == 0o700


def test_keys_new_under_a_file_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder that cannot be made is named (exit 1), never a traceback."""
    (tmp_path / "f").write_text("")
    assert main(["keys", "new", str(tmp_path / "f" / "g.key"), "--name", "g"]) == 1
    assert "cannot create" in capsys.readouterr().err


@pytest.mark.parametrize("password", ["...", "change-me", "  ", "example"])
def test_gateway_refuses_placeholder_passwords(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, password: str
) -> None:
    """The docs' example value ``...`` is refused like every placeholder."""
    monkeypatch.setenv("VOLTPROOF_GATEWAY__MQTT__PASSWORD", password)
    with pytest.raises(ConfigError, match="placeholder"):
        load_settings(workdir / "gateway.toml")


def test_agent_refuses_the_docs_placeholder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent refuses ``...`` as its MQTT password too."""
    config = tmp_path / "agent.toml"
    config.write_text(
        'device_id = "pack-1"\nfleet = "f"\nkind = "pack"\n[mqtt]\nusername = "pack-1"\n'
    )
    monkeypatch.setenv("VOLTPROOF_AGENT_MQTT__PASSWORD", "...")
    with pytest.raises(AgentConfigError, match="placeholder"):
        load_agent_settings(config)


def test_gateway_migrate_reports_the_schema_version(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``gateway migrate`` brings a store to this code's version; twice is a no-op."""
    assert main(["gateway", "migrate", "--workdir", str(workdir)]) == 1
    assert "no gateway database" in capsys.readouterr().err
    enroll(workdir, "pack-1")
    assert main(["gateway", "migrate", "--workdir", str(workdir)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_gateway_migrate_refuses_a_newer_store(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store written by a newer voltproof is refused with the versions, never changed."""
    enroll(workdir, "pack-1")
    with sqlite3.connect(workdir / "gateway" / "gateway.db") as db:
        db.execute("INSERT INTO schema_version (version) VALUES (999)")
    db.close()
    assert main(["gateway", "migrate", "--workdir", str(workdir)]) == 1
    assert "newer than this code" in capsys.readouterr().err


def test_sim_writes_no_state_beside_the_fleet_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad broker URL writes nothing; a run keeps its keys in the user's state folder."""
    checkout = tmp_path / "checkout" / "configs"
    checkout.mkdir(parents=True)
    fleet = checkout / "fleet.toml"
    fleet.write_text((REPO / "configs" / "fleet.example.toml").read_text(encoding="utf-8"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with pytest.raises(SystemExit) as exit_info:
        main(["sim", "--fleet", str(fleet), "--broker", "mqtt://bad:99999"])
    assert exit_info.value.code == 2
    assert list(checkout.iterdir()) == [fleet]
    assert not (tmp_path / "state").exists()
    unreachable = ["--broker", "mqtt://127.0.0.1:1", "--duration", "0.2"]
    assert main(["sim", "--fleet", str(fleet), *unreachable]) == 0
    assert list(checkout.iterdir()) == [fleet]
    assert any((tmp_path / "state" / "voltproof" / "sim" / "fleet" / "keys").iterdir())
    assert "acknowledged by the broker 0" in capsys.readouterr().out


def test_demo_help_tells_the_device_count_it_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """``demo --help`` names the default device count, and that is what the fleet holds."""
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    assert f"default {DEFAULT_DEVICES}:" in " ".join(capsys.readouterr().out.split())
    for devices in (DEFAULT_DEVICES, 4, 10):
        assert 2 * buses_for(devices) + SPARE_PACKS == devices


def test_demo_closing_command_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command the demo's closing lines print works even without voltproof on PATH."""
    monkeypatch.setenv("PATH", "")
    line = command_line()
    assert line.endswith("-m voltproof")
    result = subprocess.run(
        [*shlex.split(line), "--version"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("voltproof ")


def test_pyproject_license_is_an_spdx_string() -> None:
    """``project.license`` is an SPDX expression (a table makes setuptools print a deprecation
    banner), with a setuptools that reads it."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["license"] == "Apache-2.0"
    assert "setuptools>=77" in project["build-system"]["requires"]


def test_progress_bar_draws_on_a_terminal_and_stays_silent_in_a_pipe(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Long commands show their steps on a terminal; captured output is unchanged."""
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with stages("verify big.bundle", 2, console=console) as step:
        step("reading")
        step("checking 90000 messages")
    assert "verify big.bundle" in screen.getvalue()
    with stages("bundle pack-1", 3) as step:  # stderr is not a terminal under pytest
        step("selecting")
    assert capsys.readouterr().err == ""
