"""Dashboard reads over the gateway database, on a read-only SQLite connection.

Every query is served by an index of the gateway schema: sample blocks and leaves by
``(device, t_ms)``, leaves by ``leaf_index``, alarms by ``(device, t_ms)``, quarantine by
``id``, checkpoints by ``size``. Samples are stored one block per message
(:mod:`gateway.store.blocks`) and read as numpy column arrays (:mod:`gateway.store.samples`);
downsampling is one sort and three ``reduceat`` over those arrays.
Proofs come from the gateway store itself (:class:`gateway.store.SqliteStore`).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Self

import aiosqlite

from gateway.store import samples
from gateway.store.errors import StoreError
from ledger.message import MessageError, decode_message
from ledger.telemetry import FIELDS, Kind

from .access import Window

NUMERIC: Final = {kind: frozenset(spec.attr for spec in specs) for kind, specs in FIELDS.items()}


class QueryError(Exception):
    """The gateway database cannot be read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceRow:
    """A registered device."""

    device_id: str
    kind: Kind
    fleet: str
    status: str
    public_key: bytes
    enrolled_leaf: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LastMessage:
    """A device's newest message in a window."""

    leaf_index: int
    seq: int
    t_ms: int
    received_at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Bucket:
    """Min, max and mean of one column over ``[t_ms, t_ms + bucket)``."""

    t_ms: int
    count: int
    min: float
    max: float
    avg: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Stint:
    """A pack installed in a bus from ``from_ms`` to ``to_ms`` (its first and last message)."""

    bus: str
    from_ms: int
    to_ms: int
    messages: int


@contextmanager
def _translated() -> Iterator[None]:
    """A damaged sample block becomes a :class:`QueryError`."""
    try:
        yield
    except StoreError as exc:
        raise QueryError(f"gateway database holds a damaged sample block: {exc}") from exc


def _probe(uri: str) -> None:
    sqlite3.connect(uri, uri=True).close()


class Reads:
    """Read-only queries; open with :meth:`open`."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> Self:
        """Open ``path`` read-only (the gateway owns the file and its schema)."""
        if not await asyncio.to_thread(path.is_file):
            raise QueryError(f"no gateway database at {path}; start the gateway first")
        try:
            uri = f"file:{os.fspath(path)}?mode=ro"
            await asyncio.to_thread(_probe, uri)
            db = await aiosqlite.connect(uri, uri=True)
            await db.execute("PRAGMA busy_timeout = 5000")
        except sqlite3.Error as exc:
            raise QueryError(f"cannot open {path} read-only: {exc}") from exc
        return cls(db)

    async def close(self) -> None:
        """Close the connection."""
        await self._db.close()

    async def rows(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        """Run one query; SQLite errors become :class:`QueryError`."""
        try:
            async with self._db.execute(sql, params) as cursor:
                return list(await cursor.fetchall())
        except sqlite3.Error as exc:
            raise QueryError(f"gateway database query failed: {exc}") from exc

    async def devices(self) -> list[DeviceRow]:
        """Every registered device, by id."""
        rows = await self.rows(
            "SELECT id, kind, fleet, status, public_key, enrolled_leaf FROM devices ORDER BY id"
        )
        return [
            DeviceRow(device_id=r[0], kind=r[1], fleet=r[2], status=r[3],
                      public_key=bytes(r[4]), enrolled_leaf=r[5])
            for r in rows
        ]  # fmt: skip

    async def device(self, device_id: str) -> DeviceRow | None:
        """One device, or ``None``."""
        found = await self._device_rows(device_id)
        return found[0] if found else None

    async def _device_rows(self, device_id: str) -> list[DeviceRow]:
        rows = await self.rows(
            "SELECT id, kind, fleet, status, public_key, enrolled_leaf FROM devices WHERE id = ?",
            (device_id,),
        )
        return [
            DeviceRow(device_id=r[0], kind=r[1], fleet=r[2], status=r[3],
                      public_key=bytes(r[4]), enrolled_leaf=r[5])
            for r in rows
        ]  # fmt: skip

    async def last_message(self, device_id: str, window: Window) -> LastMessage | None:
        """The device's newest message with ``t`` in ``window``."""
        rows = await self.rows(
            "SELECT leaf_index, seq, t_ms, received_at_ms FROM leaves WHERE device = ? "
            "AND seq IS NOT NULL AND t_ms >= ? AND t_ms < ? ORDER BY t_ms DESC LIMIT 1",
            (device_id, window.from_ms, window.to_ms),
        )
        if not rows:
            return None
        r = rows[0]
        return LastMessage(leaf_index=r[0], seq=r[1], t_ms=r[2], received_at_ms=r[3])

    async def latest_sample(self, kind: Kind, device_id: str, window: Window) -> dict[str, Any]:
        """The device's newest sample in ``window`` (empty when it has none)."""
        with _translated():
            found = await samples.newest(
                self.rows, kind, device_id, from_ms=window.from_ms, to_ms=window.to_ms
            )
        if not len(found):
            return {}
        names = ("t_ms", "leaf_index", *(spec.attr for spec in FIELDS[kind]))
        (row,) = found.rows(names[2:])
        return dict(zip(names, row, strict=True))

    async def samples(
        self, kind: Kind, device_id: str, fields: Sequence[str], window: Window, *, limit: int
    ) -> list[tuple[Any, ...]]:
        """Raw samples ``(t_ms, leaf_index, *fields)`` in ``window``, oldest first."""
        self._check_fields(kind, fields)
        with _translated():
            found = await samples.window(
                self.rows, kind, device_id, from_ms=window.from_ms, to_ms=window.to_ms,
                fields=fields, limit=limit,
            )  # fmt: skip
        return found.rows(fields)

    async def sample_bounds(self, kind: Kind, device_id: str, window: Window) -> Window | None:
        """The times of the device's first and last sample in ``window`` (``to`` exclusive)."""
        with _translated():
            last = await samples.newest(
                self.rows, kind, device_id, from_ms=window.from_ms, to_ms=window.to_ms, fields=()
            )
            if not len(last):
                return None
            first = await samples.window(
                self.rows, kind, device_id, from_ms=window.from_ms, to_ms=window.to_ms,
                fields=(), limit=1,
            )  # fmt: skip
        return Window(from_ms=int(first.t_ms[0]), to_ms=int(last.t_ms[0]) + 1)

    async def buckets(
        self, kind: Kind, device_id: str, field: str, window: Window, *, bucket_ms: int
    ) -> list[Bucket]:
        """``field`` downsampled to buckets of ``bucket_ms`` (min, max, mean)."""
        self._check_fields(kind, [field])
        with _translated():
            found = await samples.window(
                self.rows, kind, device_id, from_ms=window.from_ms, to_ms=window.to_ms,
                fields=[field],
            )  # fmt: skip
        return [
            Bucket(t_ms=window.from_ms + b.bucket * bucket_ms, count=b.count, min=b.min,
                   max=b.max, avg=b.avg)
            for b in samples.aggregate(found, field, from_ms=window.from_ms, bucket_ms=bucket_ms)
        ]  # fmt: skip

    @staticmethod
    def _check_fields(kind: Kind, fields: Sequence[str]) -> None:
        unknown = sorted(set(fields) - NUMERIC[kind])
        if unknown or not fields:
            raise ValueError(f"unknown {kind} field(s) {unknown}; known: {sorted(NUMERIC[kind])}")

    async def pack_stints(self, pack_id: str, window: Window, *, limit: int) -> list[Stint]:
        """The buses a pack was installed in, from the ``host`` its own signed messages name."""
        rows = await self.rows(
            "SELECT leaf_index, t_ms, cose FROM leaves WHERE device = ? AND seq IS NOT NULL "
            "AND t_ms >= ? AND t_ms < ? ORDER BY t_ms LIMIT ?",
            (pack_id, window.from_ms, window.to_ms, limit),
        )
        stints: list[Stint] = []
        for index, t_ms, cose in rows:
            try:
                host = decode_message(bytes(cose)).payload.get("host")
            except MessageError as exc:
                raise QueryError(f"stored leaf {index} does not decode: {exc}") from exc
            bus = host if isinstance(host, str) else ""
            last = stints[-1] if stints else None
            if last is not None and last.bus == bus:
                stints[-1] = Stint(bus=bus, from_ms=last.from_ms, to_ms=t_ms,
                                   messages=last.messages + 1)  # fmt: skip
            else:
                stints.append(Stint(bus=bus, from_ms=t_ms, to_ms=t_ms, messages=1))
        return stints
