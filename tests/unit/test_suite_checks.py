"""The suite's own rules: every test checks something (an assert, an expected error, or an
asserting helper), and no module imports a test module (shared code lives in tests/support)."""

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


def _is_test_module(name: str) -> bool:
    return name.rsplit(".", 1)[-1].startswith("test_") or name.endswith("conftest")


def imported_test_modules(source: str, filename: str, package: str) -> list[str]:
    """``filename:line name`` of every import of a test module (``test_*`` or conftest) in
    ``source``, a module of ``package`` (relative imports resolve against it)."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = node.module or ""
            if node.level:
                base = ".".join([*parts[: len(parts) - node.level + 1], *filter(None, [base])])
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found += [f"{filename}:{node.lineno} {name}" for name in names if _is_test_module(name)]
    return found


def test_no_module_imports_a_test_module() -> None:
    """Test modules share code only through tests/support, never by importing each other."""
    offenders = []
    for path in sorted([*TESTS.rglob("*.py"), *(REPO / "bench").rglob("*.py")]):
        package = ".".join(path.relative_to(REPO).parent.parts)
        source = path.read_text(encoding="utf-8")
        offenders += imported_test_modules(source, str(path.relative_to(REPO)), package)
    assert offenders == []


def test_support_holds_no_test_module() -> None:
    """A file named ``test_*.py`` in tests/support would be collected as a test module."""
    assert sorted(p.name for p in (TESTS / "support").rglob("test_*.py")) == []


def test_scan_finds_an_imported_test_module() -> None:
    """Absolute, from- and relative imports of a test module are found; support code is not."""
    source = (
        "import tests.unit.test_audit\n"
        "from tests.integration.test_demo import world\n"
        "from .test_bundle import build\n"
        "from tests.support import store_world\n"
        "from . import conftest\n"
    )
    assert imported_test_modules(source, "m.py", "tests.unit") == [
        "m.py:1 tests.unit.test_audit",
        "m.py:2 tests.integration.test_demo",
        "m.py:3 tests.unit.test_bundle",
        "m.py:5 tests.unit.conftest",
    ]
