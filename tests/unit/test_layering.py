"""The layering holds in the source: packages import one way, and ``ledger/`` is a pure core.

Three checks, each over every module of every package:

1. direction: a package never imports one above it (ledger <- firmware_sim <- gateway <- api,
   all <- voltproof);
2. pure core: no module under ``ledger/`` does I/O, reads the clock or the environment, sets up
   logging or parses a command line, except the anchor backends' adapter modules
   (``ADAPTERS``), which the core itself must not import either;
3. at run time: importing the offline verifier, the bundle format or the report loads no I/O
   library.

Inside ``firmware_sim`` the device agent never imports the fleet simulator
(``INNER_FORBIDDEN``).

Every module, path and name a rule mentions must exist, so a rule cannot rot into checking
nothing.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paths import REPO

# The application packages, bottom to top. Every top-level package of the repository is either
# here or in NOT_LAYERED.
PACKAGES = ("ledger", "firmware_sim", "gateway", "api", "voltproof")
NOT_LAYERED = {
    "tests": "the test suite imports every layer",
    "bench": "benchmarks drive every layer, like the tests",
}

# package -> modules it must never import (a name forbids the module and its submodules)
FORBIDDEN: dict[str, frozenset[str]] = {
    "ledger": frozenset({"gateway", "firmware_sim", "api", "voltproof"}),
    "firmware_sim": frozenset({"gateway", "api", "voltproof"}),
    "gateway": frozenset({"api", "voltproof"}),
    # the API reads the store; it never talks MQTT
    "api": frozenset({"firmware_sim", "voltproof", "paho", "aiomqtt"}),
}

# Inside a package: folder -> modules its code must never import, with the reason.
INNER_FORBIDDEN: dict[str, dict[str, str]] = {
    "firmware_sim/agent": {
        "firmware_sim.sim": "the device agent is handed its sample source; the fleet simulator "
        "runs agents, never the reverse",
    },
}

# The store seam: the gateway's database is reached only through gateway/store/ (StoreReader,
# Store). Outside it, no module imports a database driver or holds an SQL statement, but
# these, which keep databases of their own (or run a database server), with the reason.
DATABASE_DRIVERS = frozenset({"sqlite3", "aiosqlite", "psycopg", "psycopg_pool"})
STORE = "gateway/store/"
OWN_DATABASES: dict[str, str] = {
    "ledger/anchors/evm_store.py": "the EVM transaction journal (an anchor adapter)",
    "ledger/anchors/local.py": "the local anchor table (an anchor adapter)",
    "ledger/anchors/sqlite_open.py": "the one SQLite open, for the anchor tables and the store",
    "firmware_sim/agent/store.py": "the device's outbox and chain state",
    "voltproof/witness/state.py": "the witness's own state",
    "voltproof/postgres_cluster.py": "starts a PostgreSQL server and creates its database",
    "voltproof/cli/demo.py": "parses a PostgreSQL URL with the driver's own parser",
}
SQL_STATEMENT = re.compile(
    r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+TABLE)\b",
    re.DOTALL | re.IGNORECASE,
)

# The pure core may not import these modules at all.
PURE_CORE_FORBIDDEN_MODULES: dict[str, str] = {
    "asyncio": "an event loop belongs to the apps; the core is synchronous",
    "socket": "network I/O",
    "ssl": "network I/O",
    "selectors": "network I/O",
    "sqlite3": "storage is an adapter (gateway/store)",
    "aiosqlite": "storage is an adapter (gateway/store)",
    "subprocess": "starting processes is an app's business",
    "signal": "process signals are an app's business",
    "multiprocessing": "process pools are an app's business",
    "shutil": "file-tree and PATH lookups (shutil.which) are an app's business",
    "argparse": "command lines live in voltproof/cli",
    "logging.config": "logging set-up belongs to the apps",
    "time": "the clock: callers pass times in",
    "gc": "switching the collector is process-wide, an app's decision",
    "web3": "EVM access is an anchor adapter",
    "aiohttp": "network I/O",
    "httpx": "network I/O",
    "urllib.request": "network I/O",
    "http.client": "network I/O",
    "paho": "MQTT is an adapter",
    "aiomqtt": "MQTT is an adapter",
}

# ...nor use these names (module attributes, reached as ``os.environ`` or ``from os import
# environ``). The rest of ``os`` stays allowed: ledger/keys.py writes key files 0600 with
# os.open/fsync/link and draws seeds from os.urandom, which are the core's own key-file format.
PURE_CORE_FORBIDDEN_NAMES: dict[str, str] = {
    "os.environ": "the environment: settings are passed in",
    "os.getenv": "the environment: settings are passed in",
    "os.putenv": "the environment",
    "os.unsetenv": "the environment",
    "os.getcwd": "the working directory: paths are passed in",
    "os.chdir": "the working directory",
    "os.system": "starting processes",
    "os.popen": "starting processes",
    "os.fork": "starting processes",
    "os.kill": "signalling processes",
    "datetime.datetime.now": "the clock: callers pass times in",
    "datetime.datetime.utcnow": "the clock",
    "datetime.datetime.today": "the clock",
    "datetime.date.today": "the clock",
    "sys.argv": "the command line lives in voltproof/cli",
    "sys.exit": "exit codes are decided in voltproof/cli",
    "sys.stdin": "the console belongs to the apps",
    "sys.stdout": "the console belongs to the apps",
    "sys.stderr": "the console belongs to the apps",
    "logging.basicConfig": "logging set-up belongs to the apps",
}

# The anchor backends' adapter modules: they do I/O by design. The verifier does not import
# them (it is handed an anchor checker), and no core module may.
ADAPTERS: dict[str, str] = {
    "ledger/anchors/sqlite_open.py": "the one SQLite open (aiosqlite), for the anchor tables "
    "and the store",
    "ledger/anchors/local.py": "the local anchor table in SQLite (aiosqlite), stamped by the clock",
    "ledger/anchors/evm.py": "the EVM backend: a web3 client and its polling loop",
    "ledger/anchors/evm_chain.py": "reads the AnchorRegistry contract over web3",
    "ledger/anchors/evm_deploy.py": "deploys the AnchorRegistry contract over web3",
    "ledger/anchors/evm_key.py": "loads EVM account keys from key files or the environment",
    "ledger/anchors/evm_rpc.py": "JSON-RPC over aiohttp with asyncio back-off",
    "ledger/anchors/evm_store.py": "the EVM transaction journal in SQLite",
    "ledger/anchors/evm_tx.py": "sends and follows transactions over web3",
    "ledger/anchors/evm_verify.py": "checks a receipt against an EVM node over RPC",
    "ledger/anchors/evm_checker.py": "checks a receipt on an EVM node (web3, an event loop); "
    "the command line hands it to the verifier",
}

# Loaded by ``import ledger.<name>`` in a fresh interpreter: never these.
IO_LIBRARIES = ("sqlite3", "aiosqlite", "asyncio", "web3", "paho")


def module_name(path: Path) -> str:
    """``ledger/anchors/evm.py`` -> ``ledger.anchors.evm``; a package's ``__init__`` -> itself."""
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, skipping ``if TYPE_CHECKING:`` bodies (they never run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            for other in node.orelse:
                yield other
                yield from _runtime_nodes(other)
            continue
        yield node
        yield from _runtime_nodes(node)


def _with_parents(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[: i + 1]) for i in range(len(parts))}


def _absolute(node: ast.ImportFrom, package: list[str]) -> str:
    """The absolute module an ``ImportFrom`` in ``package`` reads from (resolves ``.x``)."""
    if node.level == 0:
        return node.module or ""
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imported_modules(path: Path, *, module: str | None = None) -> set[str]:
    """Every module ``path`` imports at run time, absolute, with its parents (``a.b`` -> a, a.b).

    ``from a import b`` also yields ``a.b``, which is the submodule when ``b`` is one. Relative
    imports resolve against ``module`` (by default the module ``path`` is in the repository).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    if module is None:
        module = module_name(path) if path.is_relative_to(REPO) else path.stem
    package = module.split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names |= _with_parents(alias.name)
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, package)
            names |= _with_parents(source)
            names |= {f"{source}.{alias.name}" for alias in node.names if alias.name != "*"}
    return names


def used_names(path: Path) -> set[str]:
    """Dotted names ``path`` reaches through its imports (``os.environ``, ``time.time``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bound: dict[str, str] = {}  # local name -> the dotted name it stands for
    used: set[str] = set()
    nodes = list(_runtime_nodes(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                bound[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                bound[alias.asname or alias.name] = dotted
                used.add(dotted)
    for node in nodes:
        if isinstance(node, ast.Attribute):
            chain: list[str] = []
            current: ast.expr = node
            while isinstance(current, ast.Attribute):
                chain.append(current.attr)
                current = current.value
            if isinstance(current, ast.Name) and current.id in bound:
                used |= _with_parents(".".join([bound[current.id], *reversed(chain)]))
    return used


def python_files(package: str) -> list[Path]:
    """Every .py file of ``package`` (or of a folder of one), however deep."""
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"{package} holds no module: a rule names a folder that is gone"
    return files


def _forbidden(found: set[str], rule: set[str] | frozenset[str]) -> list[str]:
    """The ruled names that ``found`` reaches (``web3`` once, not ``web3.AsyncWeb3`` too)."""
    return sorted(ruled for ruled in rule if any(_within(name, ruled) for name in found))


def _within(name: str, ruled: str) -> bool:
    return name == ruled or name.startswith(ruled + ".")


def core_violations(path: Path, *, module: str | None = None) -> list[str]:
    """What makes ``path`` (a module under ledger/) not pure, one line each."""
    adapters = {module_name(REPO / adapter) for adapter in ADAPTERS}
    imported = imported_modules(path, module=module)
    return [
        *(f"imports {name}" for name in _forbidden(imported, set(PURE_CORE_FORBIDDEN_MODULES))),
        *(f"uses {name}" for name in _forbidden(used_names(path), set(PURE_CORE_FORBIDDEN_NAMES))),
        *(f"imports the adapter {name}" for name in sorted(imported & adapters)),
    ]


# ---------------------------------------------------------------------------------------------
# 1. direction


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_point_one_way(package: str) -> None:
    """No module of a package imports a package above it in the layering."""
    offenders = [
        f"{path.relative_to(REPO)} imports {name}"
        for path in python_files(package)
        for name in _forbidden(imported_modules(path), FORBIDDEN[package])
    ]
    assert not offenders, "\n" + "\n".join(offenders)


@pytest.mark.parametrize("folder", sorted(INNER_FORBIDDEN))
def test_inner_imports_point_one_way(folder: str) -> None:
    """Inside a package, a part never imports the part that drives it."""
    rule = INNER_FORBIDDEN[folder]
    offenders = [
        f"{path.relative_to(REPO)} imports {name}: {rule[name]}"
        for path in python_files(folder)
        for name in _forbidden(imported_modules(path), set(rule))
    ]
    assert not offenders, "\n" + "\n".join(offenders)


def sql_statements(path: Path) -> list[str]:
    """The string constants of ``path`` that hold an SQL statement (their first line)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        node.value.strip().splitlines()[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and SQL_STATEMENT.search(node.value)
    ]


def test_the_store_is_reached_only_through_its_seam() -> None:
    """Outside gateway/store/ no module imports a database driver or holds SQL, but the few
    with a database of their own (OWN_DATABASES)."""
    offenders = []
    for package in PACKAGES:
        for path in python_files(package):
            relative = str(path.relative_to(REPO))
            if relative.startswith(STORE) or relative in OWN_DATABASES:
                continue
            offenders += [
                f"{relative} imports {name}"
                for name in _forbidden(imported_modules(path), DATABASE_DRIVERS)
            ]
            offenders += [f"{relative} holds SQL: {sql}" for sql in sql_statements(path)]
    assert not offenders, "\n" + "\n".join(offenders)


@pytest.mark.parametrize("relative", sorted(OWN_DATABASES))
def test_every_own_database_is_needed(relative: str) -> None:
    """A module listed as keeping its own database still does (or it leaves the list)."""
    path = REPO / relative
    assert path.is_file(), f"{relative} is listed but does not exist"
    assert _forbidden(imported_modules(path), DATABASE_DRIVERS), f"{relative} imports no driver"


def test_sql_check_sees_a_statement(tmp_path: Path) -> None:
    """Queries and writes in either case are found; prose about selecting is not."""
    module = tmp_path / "m.py"
    module.write_text(
        'A = "SELECT seq FROM leaves WHERE device = ?"\n'
        'B = """\n    insert into alarms (device) VALUES (?)"""\n'
        'C = "the dashboard selects a window"\n',
        encoding="utf-8",
    )
    assert sql_statements(module) == [
        "SELECT seq FROM leaves WHERE device = ?",
        "insert into alarms (device) VALUES (?)",
    ]


def test_every_package_is_layered() -> None:
    """A new top-level package cannot escape the rules."""
    found = {path.parent.name for path in REPO.glob("*/__init__.py")}
    assert found == set(PACKAGES) | set(NOT_LAYERED)
    assert set(FORBIDDEN) == set(PACKAGES) - {"voltproof"}  # the top imports anything


# ---------------------------------------------------------------------------------------------
# 2. pure core


def test_pure_core_does_no_io() -> None:
    """Every module under ledger/ but the anchor adapters is free of I/O, clock and environment."""
    exempt = set(ADAPTERS)
    offenders = [
        f"{path.relative_to(REPO)} {violation}"
        for path in python_files("ledger")
        if str(path.relative_to(REPO)) not in exempt
        for violation in core_violations(path)
    ]
    assert not offenders, "\n" + "\n".join(offenders)


@pytest.mark.parametrize("relative", sorted(ADAPTERS))
def test_every_exemption_is_needed(relative: str) -> None:
    """An adapter that has become pure is taken off the list."""
    path = REPO / relative
    assert path.is_file(), f"{relative} is listed but does not exist"
    assert core_violations(path) != [], f"{relative} is pure now: remove it from its list"


# ---------------------------------------------------------------------------------------------
# 3. at run time


def _loaded(module: str) -> list[str]:
    names = ", ".join(repr(name) for name in IO_LIBRARIES)
    script = f"import sys\nimport {module}\nprint(sorted(n for n in ({names}) if n in sys.modules))"
    found = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    return list(ast.literal_eval(found.stdout.strip()))


@pytest.mark.parametrize(
    "module",
    ["ledger.verify", "ledger.verify_v2", "ledger.bundle", "ledger.bundle_v2", "ledger.report"],
)
def test_evidence_modules_load_no_io_library(module: str) -> None:
    """Importing the verifier, the bundle format or the report loads no I/O library."""
    loaded = _loaded(module)
    assert loaded == [], f"import {module} loads {loaded}"


# ---------------------------------------------------------------------------------------------
# rules cannot rot


def _exists(name: str) -> bool:
    """A module in the tree or installed, or an attribute of one (``os.environ``)."""
    if name.split(".", maxsplit=1)[0] in PACKAGES:
        relative = Path(*name.split("."))
        return (REPO / relative).with_suffix(".py").is_file() or (REPO / relative).is_dir()
    if importlib.util.find_spec(name.split(".", maxsplit=1)[0]) is None:
        return False
    try:
        if importlib.util.find_spec(name) is not None:
            return True
    except ModuleNotFoundError:  # the parent is a module, not a package: name is an attribute
        pass
    owner, _, attribute = name.rpartition(".")
    target: object = importlib.import_module(owner.split(".")[0])
    for part in [*owner.split(".")[1:], attribute]:
        if not hasattr(target, part):
            return False
        target = getattr(target, part)
    return True


def test_every_ruled_name_exists() -> None:
    """Each module or name a rule forbids exists (a typo or a removed module fails here)."""
    ruled = {
        *(name for names in FORBIDDEN.values() for name in names),
        *(name for names in INNER_FORBIDDEN.values() for name in names),
        *PURE_CORE_FORBIDDEN_MODULES,
        *PURE_CORE_FORBIDDEN_NAMES,
    }
    assert sorted(name for name in ruled if not _exists(name)) == []


def test_rule_existence_check_fails_on_a_missing_module() -> None:
    """The existence check sees a module that is not in the tree (gateway.mqtt never was)."""
    assert not _exists("gateway.mqtt")
    assert not _exists("os.no_such_name")
    assert _exists("gateway.app")
    assert _exists("os.environ")
    assert _exists("logging.config")


# ---------------------------------------------------------------------------------------------
# the checkers can fail


def test_checker_sees_imports(tmp_path: Path) -> None:
    """The checker finds both import forms (so the direction test can fail)."""
    module = tmp_path / "m.py"
    module.write_text("import gateway.mqtt\nfrom api import app\n", encoding="utf-8")
    assert {"gateway", "gateway.mqtt", "api", "api.app"} <= imported_modules(module)


def test_pure_core_checker_catches_violations(tmp_path: Path) -> None:
    """A core module reading the clock, the environment or an adapter is reported."""
    module = tmp_path / "probe.py"
    module.write_text(
        "import time\nfrom os import environ\nfrom datetime import datetime\n"
        "from .anchors.local import LocalAnchorBackend\n"
        "def f():\n    import asyncio\n    return datetime.now(), environ\n",
        encoding="utf-8",
    )
    assert core_violations(module, module="ledger.probe") == [
        "imports asyncio",
        "imports time",
        "uses datetime.datetime.now",
        "uses os.environ",
        "imports the adapter ledger.anchors.local",
    ]
    typing_only = tmp_path / "t.py"
    typing_only.write_text("if TYPE_CHECKING:\n    import sqlite3\n", encoding="utf-8")
    assert imported_modules(typing_only) == set()


def _loads_numpy(modules: str) -> bool:
    script = f"import sys\nimport {modules}\nprint('numpy' in sys.modules)"
    found = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    return found.stdout.strip() == "True"


def test_the_gateway_process_does_not_load_numpy() -> None:
    """Writing sample blocks needs no numpy (about 15 MiB per process); reading them does."""
    assert not _loads_numpy("gateway.app, voltproof.cli.gateway, gateway.store.blocks")
    assert _loads_numpy("gateway.store.samples")
