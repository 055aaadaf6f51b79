"""configs/systemd: a unit for each long-running voltproof service, each runnable as written."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from tests.support.paths import REPO
from voltproof.cli import build_parser

UNITS = REPO / "configs" / "systemd"
SERVICES = ("agent", "api", "gateway", "witness")


def directives(unit: Path) -> dict[str, list[str]]:
    """``{key: [values]}`` of a unit file (keys may repeat, as systemd allows)."""
    found: dict[str, list[str]] = {}
    for line in unit.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_every_service_has_a_unit() -> None:
    """Gateway, API and witness have units beside the agent's."""
    assert sorted(p.stem for p in UNITS.glob("*.service")) == [
        f"voltproof-{name}" for name in SERVICES
    ]


@pytest.mark.parametrize("name", SERVICES)
def test_unit_runs_a_known_command_as_an_unprivileged_user(name: str) -> None:
    """ExecStart parses with voltproof's own parser; no unit runs as root; SIGTERM stops it."""
    unit = directives(UNITS / f"voltproof-{name}.service")
    (exec_start,) = unit["ExecStart"]
    program, *argv = shlex.split(exec_start)
    assert program == "/usr/bin/voltproof"
    args = build_parser().parse_args(argv)
    assert args.command == name
    assert unit.get("DynamicUser") == ["yes"] or unit.get("User") == ["voltproof"]
    assert unit["KillSignal"] == ["SIGTERM"]
    assert unit["NoNewPrivileges"] == ["yes"]
    assert unit["CapabilityBoundingSet"] == [""]
