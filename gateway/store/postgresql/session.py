"""One psycopg connection, spoken to as the store's statements speak to aiosqlite.

The store's statements (``gateway/store/writes.py``, ``reads.py``, ...) are plain SQL with
``?`` placeholders, the subset both SQLite and PostgreSQL understand; :func:`translate`
turns them into psycopg's ``%s`` form once per statement. A :class:`Session` offers the few
connection methods the statements use (``execute`` as an awaitable or an async context
manager, ``executemany``, ``execute_fetchall``) so one copy of each query serves both
backends. Rows are fetched whole: every query of the store is bounded (by a ``LIMIT``, a
page or a key list).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine, Generator, Iterable, Sequence
from functools import lru_cache
from types import TracebackType
from typing import Any

from psycopg import AsyncConnection


@lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """``sql`` with each ``?`` placeholder as ``%s`` and each literal ``%`` doubled.

    Placeholders inside quoted literals are left alone. Numbered placeholders (``?1``) are
    not used by the store and are refused rather than misread.
    """
    out: list[str] = []
    quote: str | None = None
    for position, char in enumerate(sql):
        if quote is not None:
            out.append("%%" if char == "%" else char)
            if char == quote:
                quote = None
            continue
        if char in "'\"":
            quote = char
            out.append(char)
        elif char == "?":
            following = sql[position + 1 : position + 2]
            if following.isdigit():
                raise ValueError(f"numbered placeholders are not supported: {sql!r}")
            out.append("%s")
        elif char == "%":
            out.append("%%")
        else:
            out.append(char)
    return "".join(out)


class Rows:
    """The fetched result of one statement, shaped like an aiosqlite cursor."""

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount
        self.lastrowid: int | None = None

    async def fetchone(self) -> tuple[Any, ...] | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    async def fetchall(self) -> list[tuple[Any, ...]]:
        rest = self._rows[self._next :]
        self._next = len(self._rows)
        return rest

    def __aiter__(self) -> AsyncIterator[tuple[Any, ...]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[tuple[Any, ...]]:
        while (row := await self.fetchone()) is not None:
            yield row

    async def close(self) -> None:
        self._next = len(self._rows)


class Execution:
    """An executing statement: ``await`` it or use it as ``async with``, as with aiosqlite."""

    def __init__(self, run: Coroutine[Any, Any, Rows]) -> None:
        self._run = run

    def __await__(self) -> Generator[Any, None, Rows]:
        return self._run.__await__()

    async def __aenter__(self) -> Rows:
        return await self._run

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None


class Session:
    """The aiosqlite-shaped face of one pooled psycopg connection."""

    def __init__(self, connection: AsyncConnection[Any]) -> None:
        self.connection = connection

    def execute(self, sql: str, parameters: Sequence[object] = ()) -> Execution:
        return Execution(self._execute(sql, parameters))

    async def _execute(self, sql: str, parameters: Sequence[object]) -> Rows:
        async with self.connection.cursor() as cursor:
            await cursor.execute(translate(sql), tuple(parameters))
            rows = await cursor.fetchall() if cursor.description is not None else []
            return Rows(rows, cursor.rowcount)

    async def executemany(self, sql: str, parameters: Iterable[Sequence[object]]) -> None:
        batch = [tuple(row) for row in parameters]
        if not batch:
            return
        async with self.connection.cursor() as cursor:
            await cursor.executemany(translate(sql), batch)

    async def execute_fetchall(
        self, sql: str, parameters: Sequence[object] = ()
    ) -> list[tuple[Any, ...]]:
        return await (await self.execute(sql, parameters)).fetchall()

    async def close(self) -> None:
        """The pool owns the connection: nothing to do."""
