"""Dashboard queries over the gateway store's read interface (:class:`gateway.store.StoreReader`).

Samples are stored one block per message and kind (:mod:`gateway.store.blocks`) and read as
numpy column arrays (:mod:`gateway.store.samples`); downsampling is one sort and three
``reduceat`` over those arrays. No SQL here: every read is a reader method.

Which samples an asset has (:func:`asset_columns`): an agent's bus or pack its own kind's
columns; a GB/T 32960 terminal's bus (its messages are frames) the bus columns and the pack
columns its frames fill (``ledger.gbt32960.TERMINAL_COLUMNS``), never the fills that only
make its blocks fit the schema.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from gateway.store import DeviceRecord, LeafRecord, StoreError, StoreReader, samples
from gateway.store.blocks import DERIVED
from ledger.errors import VoltproofError
from ledger.gbt32960 import TERMINAL_COLUMNS, GbtError, is_envelope, read_leaf
from ledger.telemetry import FIELDS, Kind

from .access import ALL_TIME, Principal, Role, Window

NUMERIC: Final = {kind: frozenset(spec.attr for spec in specs) for kind, specs in FIELDS.items()}
Columns = dict[Kind, tuple[str, ...]]
"""Per kind of sample an asset has, the columns (memory names, derived ones last) it carries."""


def _with_derived(names: tuple[str, ...]) -> tuple[str, ...]:
    derived = tuple(d for d, sources in DERIVED.items() if set(sources) <= set(names))
    return names + derived


_AGENT_COLUMNS: Final[Columns] = {
    kind: _with_derived(tuple(spec.attr for spec in FIELDS[kind])) for kind in ("bus", "pack")
}
_TERMINAL_COLUMNS: Final[Columns] = {
    kind: _with_derived(
        tuple(spec.attr for spec in FIELDS[kind] if spec.key in TERMINAL_COLUMNS[kind])
    )
    for kind in ("bus", "pack")
}


def asset_columns(kind: Kind, *, terminal: bool) -> Columns:
    """The samples an asset has: its own kind's columns (a pack's with the derived cell spread),
    or for a GB/T 32960 terminal's bus the bus and pack columns its frames fill."""
    return dict(_TERMINAL_COLUMNS) if terminal else {kind: _AGENT_COLUMNS[kind]}


class QueryError(VoltproofError):
    """The gateway database cannot be read."""


def _evidence(leaf: bytes) -> str:
    """The evidence label of a stored message leaf (its frame's edition for a terminal)."""
    if not is_envelope(leaf):
        return "signed-by-device"
    try:
        return read_leaf(leaf).evidence
    except GbtError:
        return "undecodable"  # the audit reports such a leaf; the label says so too


@dataclass(frozen=True, slots=True, kw_only=True)
class LastMessage:
    """A device's newest message in a window."""

    leaf_index: int
    seq: int
    t_ms: int
    received_at_ms: int
    evidence: str = "signed-by-device"
    """What the message proves (``ledger.verify_terminal`` labels): a GB/T 32960 2016 frame
    is ``received-only``, a 2025 frame ``signed-by-terminal``."""
    terminal: bool = False
    """Whether the message is a GB/T 32960 frame (the device is a terminal's bus)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Newest:
    """What a device's row of the fleet shows: its newest message (and its bytes, for the
    bus <-> pack relation) and its newest sample, inside the caller's latest window."""

    last: LastMessage | None
    latest: dict[str, Any]
    cose: bytes | None

    def columns(self, kind: Kind) -> Columns:
        """The samples the device (of ``kind``) has, as its newest message shows."""
        return _columns(kind, self.last)


def _columns(kind: Kind, last: LastMessage | None) -> Columns:
    """The samples a device of ``kind`` has, as its newest message ``last`` shows (none: its
    own kind's)."""
    return asset_columns(kind, terminal=last is not None and last.terminal)


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


def _last_message(leaf: LeafRecord) -> LastMessage | None:
    if leaf.seq is None or leaf.t_ms is None:
        return None
    return LastMessage(leaf_index=leaf.leaf_index, seq=leaf.seq, t_ms=leaf.t_ms,
                       received_at_ms=leaf.received_at_ms, evidence=_evidence(leaf.cose),
                       terminal=is_envelope(leaf.cose))  # fmt: skip


def _sample_row(kind: Kind, found: samples.Samples) -> dict[str, Any]:
    """One sample as ``{"t_ms", "leaf_index", field: value, ...}``."""
    names = ("t_ms", "leaf_index", *(spec.attr for spec in FIELDS[kind]))
    (row,) = found.rows(names[2:])
    return dict(zip(names, row, strict=True))


def _latest(columns: Columns, rows: dict[Kind, dict[str, Any]]) -> dict[str, Any]:
    """The newest sample of each kind the asset has, as one row: the time and leaf of the
    first kind's (its own), then every column it carries (a name both kinds have, such as
    ``charge_state``, from its own kind). A terminal's newest pack values are those of its
    newest frame that carried them."""
    merged: dict[str, Any] = {}
    for kind, names in columns.items():
        row = rows.get(kind, {})
        if row and not merged:
            merged.update(t_ms=row["t_ms"], leaf_index=row["leaf_index"])
        merged.update((name, row[name]) for name in names if name in row and name not in merged)
    return merged


class DashboardQueries:
    """The dashboard's questions, answered from a :class:`~gateway.store.StoreReader`."""

    def __init__(self, reader: StoreReader) -> None:
        self._reader = reader

    async def devices(self) -> list[DeviceRecord]:
        """Every registered device, by id."""
        return await self._reader.list_devices()

    async def devices_of(self, device_ids: Sequence[str]) -> list[DeviceRecord]:
        """The registered devices among ``device_ids``, by id."""
        found = await self._reader.devices(device_ids)
        return [found[i] for i in sorted(found)]

    async def visible_devices(
        self, user: Principal, *, after: str | None, limit: int, kind: Kind | None = None
    ) -> tuple[list[DeviceRecord], bool]:
        """A keyset page of the devices ``user`` may read (of ``kind``, or both), by id after
        ``after``; and whether more follow. Operators page the registry (their fleet's part);
        a lessor's page is cut from the assets it holds; an auditor reads no asset."""
        if not user.reads_telemetry:
            return [], False
        if user.role is Role.OPERATOR:
            rows = await self._reader.devices_page(
                after=after, limit=limit + 1, kind=kind, fleet=user.fleet
            )
        else:
            held = sorted({g.asset for g in user.grants if after is None or g.asset > after})
            rows = [
                d for d in await self.devices_of(held)
                if kind in {None, d.kind} and user.windows(d.device_id, d.fleet)
            ][: limit + 1]  # fmt: skip
        return rows[:limit], len(rows) > limit

    async def device(self, device_id: str) -> DeviceRecord | None:
        """One device, or ``None``."""
        return (await self._reader.devices([device_id])).get(device_id)

    async def last_message(self, device_id: str, window: Window) -> LastMessage | None:
        """The device's newest message with ``t`` in ``window``."""
        leaf = await self._reader.newest_message(
            device_id, t_from=window.from_ms, t_to=window.to_ms
        )
        return None if leaf is None else _last_message(leaf)

    async def newest_of(
        self, user: Principal, devices: Sequence[DeviceRecord], *, samples: bool
    ) -> dict[str, Newest]:
        """:class:`Newest` of each of ``devices`` as ``user`` may see it (``samples``: with
        the newest sample). Devices read over all time (operators) are read in batches: a
        few queries for hundreds of devices instead of three per device."""
        found: dict[str, Newest] = {}
        whole = [d for d in devices if user.default_window(d.device_id, d.fleet) == ALL_TIME]
        if whole:
            ids = [d.device_id for d in whole]
            with _translated():
                leaves = await self._reader.newest_messages(ids)
                last = {i: _last_message(leaf) for i, leaf in leaves.items()}
                columns = {d.device_id: _columns(d.kind, last.get(d.device_id)) for d in whole}
                rows: dict[str, dict[Kind, dict[str, Any]]] = {i: {} for i in ids}
                for kind in ("bus", "pack") if samples else ():
                    of_kind = [i for i in ids if kind in columns[i]]
                    for device_id, one in (
                        await self._reader.newest_samples(kind, of_kind)
                    ).items():
                        rows[device_id][kind] = _sample_row(kind, one)
            for d in whole:
                leaf = leaves.get(d.device_id)
                found[d.device_id] = Newest(
                    last=last.get(d.device_id),
                    latest=_latest(columns[d.device_id], rows[d.device_id]),
                    cose=None if leaf is None else leaf.cose,
                )
        for d in devices:
            window = user.default_window(d.device_id, d.fleet)
            if d.device_id in found or window is None:
                continue
            message = await self.last_message(d.device_id, window)
            kinds = _columns(d.kind, message)
            latest = {
                kind: await self.latest_sample(kind, d.device_id, window)
                for kind in (kinds if samples else ())
            }
            found[d.device_id] = Newest(
                last=message,
                latest=_latest(kinds, latest),
                cose=None
                if message is None
                else (await self._reader.leaf(message.leaf_index)).cose,
            )
        return found

    async def columns_of(self, user: Principal, device: DeviceRecord) -> Columns:
        """The samples ``device`` has (:func:`asset_columns`), as its newest message in the
        caller's latest window shows (none: its own kind's)."""
        window = user.default_window(device.device_id, device.fleet)
        last = None if window is None else await self.last_message(device.device_id, window)
        return _columns(device.kind, last)

    async def latest_sample(self, kind: Kind, device_id: str, window: Window) -> dict[str, Any]:
        """The device's newest sample in ``window`` (empty when it has none)."""
        with _translated():
            found = await self._reader.newest_sample(
                kind, device_id, t_from=window.from_ms, t_to=window.to_ms
            )
        return _sample_row(kind, found) if len(found) else {}

    async def samples(
        self,
        kind: Kind,
        device_id: str,
        fields: Sequence[str],
        window: Window,
        *,
        limit: int,
        known: Sequence[str] | None = None,
    ) -> list[tuple[Any, ...]]:
        """Raw samples ``(t_ms, leaf_index, *fields)`` in ``window``, oldest first; ``known``:
        the columns the asset carries (default: every stored column of ``kind``)."""
        self._check_fields(kind, fields, known)
        with _translated():
            found = await self._reader.sample_window(
                kind, device_id, t_from=window.from_ms, t_to=window.to_ms, fields=fields,
                limit=limit,
            )  # fmt: skip
        return found.rows(fields)

    async def sample_bounds(self, kind: Kind, device_id: str, window: Window) -> Window | None:
        """The times of the device's first and last sample in ``window`` (``to`` exclusive)."""
        with _translated():
            last = await self._reader.newest_sample(
                kind, device_id, t_from=window.from_ms, t_to=window.to_ms, fields=()
            )
            if not len(last):
                return None
            first = await self._reader.sample_window(
                kind, device_id, t_from=window.from_ms, t_to=window.to_ms, fields=(), limit=1
            )
        return Window(from_ms=int(first.t_ms[0]), to_ms=int(last.t_ms[0]) + 1)

    async def buckets(
        self,
        kind: Kind,
        device_id: str,
        field: str,
        window: Window,
        *,
        bucket_ms: int,
        known: Sequence[str] | None = None,
    ) -> list[Bucket]:
        """``field`` downsampled to buckets of ``bucket_ms`` (min, max, mean); ``known`` as
        for :meth:`samples`."""
        self._check_fields(kind, [field], known)
        with _translated():
            found = await self._reader.sample_window(
                kind, device_id, t_from=window.from_ms, t_to=window.to_ms, fields=[field]
            )
        return [
            Bucket(t_ms=window.from_ms + b.bucket * bucket_ms, count=b.count, min=b.min,
                   max=b.max, avg=b.avg)
            for b in samples.aggregate(found, field, from_ms=window.from_ms, bucket_ms=bucket_ms)
        ]  # fmt: skip

    @staticmethod
    def _check_fields(kind: Kind, fields: Sequence[str], known: Sequence[str] | None) -> None:
        allowed = NUMERIC[kind] if known is None else NUMERIC[kind] & set(known)
        unknown = sorted(set(fields) - allowed)
        if unknown or not fields:
            raise ValueError(f"unknown {kind} field(s) {unknown}; known: {sorted(allowed)}")

    async def pack_stints(
        self, pack_id: str, window: Window, *, limit: int, after: tuple[int, int] | None = None
    ) -> tuple[list[Stint], tuple[int, int] | None]:
        """The buses a pack was installed in, from the ``host`` its own signed messages name:
        the stints of at most ``limit`` messages after the ``(t, leaf_index)`` key ``after``,
        and the key of the last one read when more follow (``None``: none).

        The hosts come from the store's summary rows (written with each message, checked
        against the signed bytes by ``voltproof gateway check``): a year of messages is one
        indexed read, not a CPU-second of decoding.
        """
        try:
            found = await self._reader.message_hosts(
                pack_id, t_from=window.from_ms, t_to=window.to_ms, limit=limit + 1, after=after
            )
        except StoreError as exc:
            raise QueryError(str(exc)) from exc
        more = len(found) > limit
        found = found[:limit]
        last = (found[-1][1], found[-1][0]) if more else None
        return _stints(found), last


def _stints(hosts: Sequence[tuple[int, int, str | None]]) -> list[Stint]:
    """Consecutive messages naming the same ``host``, as stints."""
    stints: list[Stint] = []
    for _index, t_ms, host in hosts:
        bus = host or ""
        last = stints[-1] if stints else None
        if last is not None and last.bus == bus:
            stints[-1] = Stint(bus=bus, from_ms=last.from_ms, to_ms=t_ms,
                               messages=last.messages + 1)  # fmt: skip
        else:
            stints.append(Stint(bus=bus, from_ms=t_ms, to_ms=t_ms, messages=1))
    return stints
