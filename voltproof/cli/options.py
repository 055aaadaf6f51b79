"""Options and argument types shared by several command groups."""

from __future__ import annotations

import argparse
import string
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

Handler = Callable[[argparse.Namespace], int | None]


def command(parser: argparse.ArgumentParser, handler: Handler) -> None:
    """Make ``handler`` run when ``parser``'s command is chosen; errors name ``parser.prog``."""
    parser.set_defaults(handler=handler, prog=parser.prog)


def parse_time(text: str) -> int:
    """Unix ms from ISO 8601 (UTC unless an offset is given) or a Unix-ms integer."""
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither ISO 8601 (2026-01-01T06:00:00Z) nor Unix milliseconds"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def add_deployment_options(
    parser: argparse.ArgumentParser,
    *,
    config_help: str = "gateway configuration (TOML)",
    workdir_help: str = "deployment directory",
    default: object = None,
) -> None:
    """``--config FILE`` or ``--workdir DIR`` (mutually exclusive)."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--config", type=Path, metavar="FILE", default=default, help=config_help)
    where.add_argument("--workdir", type=Path, metavar="DIR", default=default, help=workdir_help)


def url(text: str) -> str:
    """A URL with a scheme and a host (``http://127.0.0.1:8545``, ``mqtt://host:1883``)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a URL: {exc}") from exc
    if not parts.scheme or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not a URL (scheme://host[:port])")
    return text


def mqtt_url(text: str) -> str:
    """An ``mqtt://host[:port]`` broker URL, checked before anything is started or written."""
    from urllib.parse import urlsplit

    url(text)
    if urlsplit(text).scheme != "mqtt":
        raise argparse.ArgumentTypeError(f"{text!r} is not mqtt://host[:port]")
    return text


def evm_address(text: str) -> str:
    """A 20-byte EVM address: ``0x`` and 40 hex digits."""
    digits = text.removeprefix("0x")
    if len(text) != 42 or len(digits) != 40 or not all(c in string.hexdigits for c in digits):
        raise argparse.ArgumentTypeError(f"{text!r} is not an EVM address (0x and 40 hex digits)")
    return text


def port(text: str) -> int:
    """A TCP port number, 0 to 65535."""
    try:
        number = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from exc
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{number} is not a port number (0 to 65535)")
    return number
