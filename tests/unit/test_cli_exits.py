"""The console script's exit-code policy and its one top-level error handler."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import pytest

from voltproof import cli
from voltproof.cli.exits import (
    CommandFailedError,
    ExitCode,
    InvalidEvidenceError,
    UsageError,
    error_line,
    exit_code,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (None, 0),
        (ExitCode.OK, 0),
        (ExitCode.INCOMPLETE, 3),
        (1, 1),
        (UsageError("x"), 2),
        (CommandFailedError("x"), 1),
        (InvalidEvidenceError("x"), 1),
        (KeyboardInterrupt(), 130),
        (BrokenPipeError(), 0),
        (RuntimeError("boom"), 1),
        (ExceptionGroup("tg", [UsageError("x")]), 2),
        (ExceptionGroup("tg", [ValueError("a"), ValueError("b")]), 1),
    ],
)
def test_exit_code_policy(outcome: object, code: int) -> None:
    """Each outcome maps to the documented code: 0 ok, 1 failed, 2 usage, 3 incomplete."""
    assert exit_code(outcome) == code  # type: ignore[arg-type]


def test_error_lines() -> None:
    """Known errors read ``prog: label: reason``; others name the type and the debug switch."""
    assert error_line("voltproof x", UsageError("bad")) == "voltproof x: error: bad"
    assert error_line("voltproof x", InvalidEvidenceError("no")) == "voltproof x: INVALID: no"
    line = error_line("voltproof x", ValueError("odd"))
    assert line.startswith("voltproof x: unexpected error: ValueError: odd")
    assert "VOLTPROOF_DEBUG=1" in line
    grouped = ExceptionGroup("unhandled errors in a TaskGroup", [UsageError("bad")])
    assert error_line("voltproof x", grouped) == "voltproof x: error: bad"


def _crash(args: argparse.Namespace) -> int:
    raise RuntimeError("a bug")


@pytest.fixture
def crashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """``voltproof report`` replaced by a handler that raises an unexpected error."""
    monkeypatch.setattr(cli.report, "_report", _crash)


@pytest.mark.usefixtures("crashing")
def test_unexpected_error_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception prints one line, no traceback, and exits 1."""
    monkeypatch.delenv("VOLTPROOF_DEBUG", raising=False)
    assert cli.main(["report", "b.json"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip() == (
        "voltproof report: unexpected error: RuntimeError: a bug "
        "(run with --debug or VOLTPROOF_DEBUG=1 for the traceback)"
    )


@pytest.mark.usefixtures("crashing")
def test_debug_shows_the_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--debug`` or ``VOLTPROOF_DEBUG=1`` adds the traceback; the exit code stays 1."""
    monkeypatch.delenv("VOLTPROOF_DEBUG", raising=False)
    assert cli.main(["--debug", "report", "b.json"]) == 1
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("VOLTPROOF_DEBUG", "1")
    assert cli.main(["report", "b.json"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_interrupt_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C is ``interrupted`` and 130, never a traceback."""

    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.report, "_report", interrupted)
    assert cli.main(["report", "b.json"]) == 130
    assert capsys.readouterr().err.strip() == "voltproof report: interrupted"


@pytest.mark.parametrize("package", ["ledger", "gateway", "api", "firmware_sim"])
def test_only_the_cli_parses_arguments(package: str) -> None:
    """No module outside ``voltproof/cli/`` imports argparse."""
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )  # fmt: skip
            if "argparse" in names:
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
