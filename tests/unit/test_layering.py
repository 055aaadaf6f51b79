"""The import direction between packages (DESIGN.md layout) holds in the source."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package -> top-level modules it must never import
FORBIDDEN: dict[str, frozenset[str]] = {
    "ledger": frozenset({"gateway", "firmware_sim", "api", "voltproof"}),
    "firmware_sim": frozenset({"gateway", "api", "voltproof"}),
    "gateway": frozenset({"api", "voltproof"}),
    "api": frozenset({"firmware_sim", "voltproof", "paho", "aiomqtt", "gateway.mqtt"}),
}

# Modules of the pure core: no I/O, no clock, no environment.
PURE_CORE_FORBIDDEN = frozenset({"asyncio", "socket", "sqlite3", "aiosqlite", "os", "time"})
PURE_CORE = ("ledger/merkle", "ledger/note.py", "ledger/message.py", "ledger/cbor")


def imported_modules(path: Path) -> set[str]:
    """Every absolute module name that ``path`` imports (``a.b`` yields ``a`` and ``a.b``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found = [node.module]
        else:
            continue
        for name in found:
            parts = name.split(".")
            names.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return names


def python_files(relative: str) -> list[Path]:
    target = ROOT / relative
    if target.is_file():
        return [target]
    return sorted(target.rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_point_one_way(package: str) -> None:
    """No package imports a package above it in the layering."""
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in python_files(package)
        for name in sorted(imported_modules(path) & FORBIDDEN[package])
    ]
    assert offenders == []


def test_pure_core_does_no_io() -> None:
    """The pure core modules import nothing that does I/O or reads the clock."""
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for relative in PURE_CORE
        if (ROOT / relative).exists()
        for path in python_files(relative)
        for name in sorted(imported_modules(path) & PURE_CORE_FORBIDDEN)
    ]
    assert offenders == []


def test_checker_sees_imports(tmp_path: Path) -> None:
    """The checker itself finds both import forms (so the tests above can fail)."""
    module = tmp_path / "m.py"
    module.write_text("import gateway.mqtt\nfrom api import app\n", encoding="utf-8")
    assert {"gateway", "gateway.mqtt", "api"} <= imported_modules(module)


def _loads_numpy(modules: str) -> bool:
    script = f"import sys\nimport {modules}\nprint('numpy' in sys.modules)"
    found = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return found.stdout.strip() == "True"


def test_the_gateway_process_does_not_load_numpy() -> None:
    """Writing sample blocks needs no numpy (about 15 MiB per process); reading them does."""
    assert not _loads_numpy("gateway.app, gateway.cli, gateway.store.blocks")
    assert _loads_numpy("gateway.store.samples")
