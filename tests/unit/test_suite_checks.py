"""Every test in tests/ checks something: an assert, an expected error, or an asserting helper."""

from __future__ import annotations

import ast

from tests.support.paths import REPO

TESTS = REPO / "tests"

# Calls that check: pytest's error/warning/failure forms, playwright's ``expect`` (it asserts),
# and helpers whose name says they assert (``assert_quarantined``), check, expect, or verify (a
# verifier raises on failure).
CHECKING_CALLS = frozenset({"raises", "warns", "fail", "deprecated_call", "expect"})
CHECKING_PREFIXES = ("assert_", "check_", "expect_", "verify_", "_assert_", "_check_")


def _called(node: ast.Call) -> str:
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    if isinstance(node.func, ast.Name):
        return node.func.id
    return ""


def _checks(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for node in ast.walk(function):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call):
            name = _called(node)
            if name in CHECKING_CALLS or name.startswith(CHECKING_PREFIXES):
                return True
    return False


def unchecked_tests(source: str, filename: str) -> list[str]:
    """``name:line`` of every test function in ``source`` that checks nothing."""
    tree = ast.parse(source, filename=filename)
    return [
        f"{filename}:{node.lineno} {node.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test")
        and not _checks(node)
    ]


def test_every_test_checks_something() -> None:
    """No test function passes merely because it ran without an exception."""
    offenders = [
        found
        for path in sorted(TESTS.rglob("*.py"))
        for found in unchecked_tests(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    ]
    assert offenders == []


def test_scan_finds_a_test_without_a_check() -> None:
    """The scan flags a test that only calls code, and accepts each checking form."""
    source = (
        "def test_runs():\n    open_and_close()\n"
        "def test_asserts():\n    assert f() == 1\n"
        "def test_raises():\n    with pytest.raises(E):\n        f()\n"
        "async def test_helper():\n    assert_quarantined(await f(), R)\n"
    )
    assert unchecked_tests(source, "m.py") == ["m.py:1 test_runs"]
