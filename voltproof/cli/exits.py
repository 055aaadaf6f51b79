"""Exit codes of the ``voltproof`` console script, decided here and nowhere else.

Contract 5 (``docs/architecture.md``, "The command line"): 0 success or valid, 1 invalid
or failed, 2 usage error (including a missing or unreadable configuration, key or anchor
file), 3 valid but incomplete or not independently anchored (``verify``; evidence v2). A command
handler returns an :class:`ExitCode` for an outcome it reached, or raises a
:class:`CommandError` subclass naming what went wrong; :func:`exit_code` turns either, and
any other exception, into the process's exit code, and :func:`error_line` into the one line
the user reads. No traceback reaches the user unless they ask for it (``--debug`` or
``VOLTPROOF_DEBUG=1``).
"""

from __future__ import annotations

import os
from enum import IntEnum

from ledger.errors import VoltproofError

DEBUG_ENV = "VOLTPROOF_DEBUG"


class ExitCode(IntEnum):
    """What a ``voltproof`` process tells its caller."""

    OK = 0
    """Success, or a bundle that is valid (and, under evidence v2, complete and anchored)."""
    FAILED = 1
    """The evidence is invalid, or the command failed (the reason on stderr)."""
    USAGE = 2
    """Wrong arguments, or a configuration, key or anchor file that cannot be read."""
    INCOMPLETE = 3
    """``verify``: valid, but incomplete or not independently anchored (evidence v2)."""
    INTERRUPTED = 130
    """Ctrl-C (128 + SIGINT, as shells report it)."""


class CommandError(VoltproofError):
    """A command stopped for a reason the user can act on; ``str()`` is the one-line reason."""

    label = "error"


class CommandFailedError(CommandError):
    """The command could not do its job (exit 1)."""


class InvalidEvidenceError(CommandError):
    """The evidence checked is invalid (exit 1); printed as ``INVALID: ...``."""

    label = "INVALID"


class UsageError(CommandError):
    """Wrong arguments or an unreadable configuration, key or anchor file (exit 2)."""


def unwrap(error: BaseException) -> BaseException:
    """The one exception inside nested single-member groups (a ``TaskGroup`` wraps its failure)."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def exit_code(outcome: ExitCode | int | BaseException | None) -> ExitCode:
    """The exit code for what a handler returned or raised: the whole policy in one place."""
    if outcome is None:
        return ExitCode.OK
    if isinstance(outcome, int):
        return ExitCode(outcome)
    outcome = unwrap(outcome)
    if isinstance(outcome, UsageError):
        return ExitCode.USAGE
    if isinstance(outcome, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(outcome, BrokenPipeError):
        # The reader went away (``voltproof report B | head``): not an error of ours.
        return ExitCode.OK
    return ExitCode.FAILED


def error_line(prog: str, error: BaseException) -> str:
    """The one line printed on stderr for ``error`` raised by the command ``prog``."""
    error = unwrap(error)
    if isinstance(error, CommandError):
        return f"{prog}: {error.label}: {error}"
    if isinstance(error, KeyboardInterrupt):
        return f"{prog}: interrupted"
    detail = f": {error}" if str(error) else ""
    return (
        f"{prog}: unexpected error: {type(error).__name__}{detail} "
        f"(run with --debug or {DEBUG_ENV}=1 for the traceback)"
    )


def debug_requested(flag: bool) -> bool:
    """Whether the user asked for tracebacks (``--debug`` or ``VOLTPROOF_DEBUG=1``)."""
    return flag or os.environ.get(DEBUG_ENV, "") not in ("", "0")
