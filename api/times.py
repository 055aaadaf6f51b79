"""Times in query strings: Unix milliseconds or ISO 8601, one parser for every route.

``from=1767225600000``, ``from=2026-01-01``, ``from=2026-01-01T00:00:00Z`` and
``from=2026-01-01T08:00:00+08:00`` name the same instant. A time without a zone is UTC.
Anything else is a 422 that names the value and both accepted forms.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final

from fastapi import Query
from pydantic import BeforeValidator, Field

from ledger.errors import VoltproofError

from .access import FOREVER

TIME_HELP: Final = "Unix ms, or ISO 8601 (2026-01-01, 2026-01-01T08:00:00+08:00; no zone = UTC)"


class TimeFormatError(VoltproofError, ValueError):
    """A query time is neither Unix ms nor ISO 8601."""


def parse_time(text: str) -> int:
    """Unix ms from ``text`` (digits: Unix ms; otherwise ISO 8601)."""
    value = text.strip()
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise TimeFormatError(
            f"{text!r} is neither Unix ms nor an ISO 8601 time (e.g. 2026-01-01T00:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _query_time(value: object) -> object:
    return parse_time(value) if isinstance(value, str) else value


TimeMs = Annotated[
    Annotated[int, Field(ge=0, le=FOREVER)] | None,
    BeforeValidator(_query_time),
    Query(description=TIME_HELP),
]
"""A query-string time, Unix ms after validation. The bounds sit on the integer, so that the
OpenAPI document states them as ``minimum``/``maximum`` (on the union they were written out
as the non-standard keywords ``ge``/``le``, which no client or schema fuzzer reads)."""
