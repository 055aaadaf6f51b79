"""GB/T 32960.3 table 5 time: 6 bytes year-2000, month, day, hour, minute, second in GMT+8."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from .errors import FrameStructureError, TruncatedFrameError

BEIJING: Final = timezone(timedelta(hours=8))
TIME_LEN: Final = 6


def decode_time(data: bytes) -> int:
    """Unix ms of the first 6 bytes of ``data`` (a GB/T 32960 time, GMT+8)."""
    if len(data) < TIME_LEN:
        raise TruncatedFrameError(f"a time is {TIME_LEN} bytes; {len(data)} remain")
    year, month, day, hour, minute, second = data[:TIME_LEN]
    if year > 99:
        raise FrameStructureError(f"time year byte {year} is beyond 99")
    try:
        moment = datetime(2000 + year, month, day, hour, minute, second, tzinfo=BEIJING)
    except ValueError as exc:
        raise FrameStructureError(f"time {data[:TIME_LEN].hex()} is not a date: {exc}") from exc
    return int(moment.timestamp()) * 1000


def encode_time(unix_ms: int) -> bytes:
    """The 6-byte GMT+8 time of ``unix_ms`` (seconds, truncated)."""
    moment = datetime.fromtimestamp(unix_ms // 1000, tz=UTC).astimezone(BEIJING)
    if not 2000 <= moment.year <= 2099:
        raise ValueError(f"{moment.isoformat()} is outside the years 2000..2099")
    return bytes(
        (moment.year - 2000, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    )
