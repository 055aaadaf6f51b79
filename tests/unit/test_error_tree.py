"""One error tree: every exception class of every package roots on ``VoltproofError``, and no
two share a name (``ledger/errors.py`` draws the tree)."""

from __future__ import annotations

import importlib
import pkgutil
from collections import defaultdict
from collections.abc import Iterable
from types import ModuleType

from ledger.errors import VerificationError, VoltproofError

PACKAGES = ("ledger", "firmware_sim", "gateway", "api", "voltproof")
NOT_IMPORTED = {"voltproof.__main__": "runs the command line when imported"}


def every_module() -> list[ModuleType]:
    """Every module of every package, imported (a module nothing imports is checked too)."""
    modules = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        modules.append(package)
        modules += [
            importlib.import_module(found.name)
            for found in pkgutil.walk_packages(package.__path__, f"{name}.")
            if found.name not in NOT_IMPORTED
        ]
    return modules


def exception_classes(modules: Iterable[ModuleType]) -> list[type[BaseException]]:
    """The exception classes defined at the top level of ``modules`` (not re-exported ones)."""
    return [
        value
        for module in modules
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, BaseException)
        and value.__module__ == module.__name__
    ]


def tree_faults(classes: Iterable[type[BaseException]]) -> list[str]:
    """One line per class outside the tree and per name two classes share."""
    homes: dict[str, list[str]] = defaultdict(list)
    faults = []
    for cls in classes:
        where = f"{cls.__module__}.{cls.__qualname__}"
        homes[cls.__qualname__].append(cls.__module__)
        if not issubclass(cls, VoltproofError):
            bases = ", ".join(base.__name__ for base in cls.__bases__)
            faults.append(f"{where} roots on {bases}, not VoltproofError")
    faults += [
        f"{name} is defined in {', '.join(sorted(modules))}"
        for name, modules in sorted(homes.items())
        if len(modules) > 1
    ]
    return faults


def test_every_exception_roots_on_voltproof_error() -> None:
    """No exception class of the code stands outside the tree, and no name is used twice."""
    classes = exception_classes(every_module())
    assert len(classes) > 150  # the walk found the code, not an empty tree
    faults = tree_faults(classes)
    assert not faults, "\n" + "\n".join(faults)


def test_verification_error_is_under_the_root() -> None:
    """Evidence that does not check out is one family under the root."""
    assert issubclass(VerificationError, VoltproofError)
    assert VoltproofError.__bases__ == (Exception,)


def test_the_check_sees_a_stray_root_and_a_reused_name() -> None:
    """A class on a builtin root and a name defined in two modules are both reported."""
    first, second = ModuleType("pkg.one"), ModuleType("pkg.two")
    # fixed source written here, to give the check something to find
    exec(
        "from ledger.errors import VoltproofError\n"
        "class Stray(ValueError): pass\n"
        "class Twice(VoltproofError): pass\n",
        vars(first),
    )
    exec(
        "from ledger.errors import VoltproofError\nclass Twice(VoltproofError, KeyError): pass\n",
        vars(second),
    )
    assert tree_faults(exception_classes([first, second])) == [
        "pkg.one.Stray roots on ValueError, not VoltproofError",
        "Twice is defined in pkg.one, pkg.two",
    ]
