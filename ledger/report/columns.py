"""The telemetry of many payloads decoded at once: one numpy array per column and kind.

The report reads every sample of a period, so it decodes columns, not samples: each
column's RFC 8746 typed arrays (one per message) are joined into one array, and the range
checks of :func:`ledger.telemetry.decode_columns` run once per column over all messages.

Validation is exactly ``decode_columns``'s: a payload of the plain form (no events, no cell
rows, every key and column typed as expected) is checked here; any other payload goes
through ``decode_columns`` itself; and when a range check fails, the payloads are decoded
again one by one with ``decode_columns``, so the error raised is the one ``decode_columns``
raises for the first bad payload, in the order given.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NoReturn, cast

import numpy as np
import numpy.typing as npt

from ..cbor import TypedArray
from ..telemetry import (
    ENVELOPE_KEYS,
    FIELDS,
    KINDS,
    MAX_DT_MS,
    MAX_ID_LEN,
    MAX_SAMPLES,
    MIN_DT_MS,
    U63,
    Event,
    FieldSpec,
    Kind,
    TelemetryError,
    decode_columns,
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_PLAIN_KEYS: Final = {
    "pack": ENVELOPE_KEYS | {"kind", "dt", "s", "host"},
    "bus": ENVELOPE_KEYS | {"kind", "dt", "s", "pack"},
}
_COLUMN_KEYS: Final = {
    kind: frozenset(spec.key for spec in specs) for kind, specs in FIELDS.items()
}
_LAYOUT: Final = {
    kind: tuple((spec.key, spec.element.tag, spec.element.width) for spec in specs)
    for kind, specs in FIELDS.items()
}
"""Per kind, each column's key, typed-array tag and element width, in FIELDS order."""
# Where the elements start in a typed array's encoding (tag head 2 bytes + byte-string head),
# by the byte-string head's first byte (a TypedArray always holds a deterministic encoding).
_DATA_START: Final = {**dict.fromkeys(range(0x40, 0x58), 3), 0x58: 4, 0x59: 5, 0x5A: 7, 0x5B: 11}
_EXACT: Final = 2**53
"""Integers up to this size convert to float exactly, so ``wire / per_unit`` is the same
correctly rounded division in numpy as in Python."""


def _dtype(spec: FieldSpec) -> np.dtype[Any]:
    element = spec.element
    order = "<" if element.little_endian else ">"
    return np.dtype(f"{order}{'i' if element.signed else 'u'}{element.width}")


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageInfo:
    """One message: its device, kind, time base, sample count and events."""

    dev: str
    kind: Kind
    t_ms: int
    dt_ms: int
    n: int
    row: int
    """Where the message's samples start in :attr:`Decoded.wire` of its kind."""
    events: tuple[Event, ...]
    host: str | None = None
    """A pack message's host bus (``host``), if it names one."""
    packs: tuple[str, ...] = ()
    """A bus message's installed packs (``pack``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Decoded:
    """Messages in the order given, and per kind the wire columns of their samples."""

    messages: tuple[MessageInfo, ...]
    wire: Mapping[str, Mapping[str, npt.NDArray[Any]]]
    """``wire[kind][column key]``: the wire integers of every sample of that kind, message
    after message in the order of :attr:`messages`."""


class _Collector:
    """Chunks of column bytes per kind, and the messages they came from."""

    def __init__(self) -> None:
        self.messages: list[MessageInfo] = []
        self.rows = dict.fromkeys(KINDS, 0)
        self.chunks: dict[str, dict[str, list[bytes | memoryview]]] = {
            kind: {spec.key: [] for spec in FIELDS[kind]} for kind in KINDS
        }

    def add_plain(self, payload: Mapping[str, Any]) -> bool:
        """Take a payload of the plain form; False (nothing taken) for any other payload."""
        header = _plain_header(payload)
        if header is None:
            return False
        kind, t_ms, dt_ms, columns = header
        host, packs = _names(payload)
        found = _plain_columns(kind, columns)
        if found is None:
            return False
        n, data = found
        chunks = self.chunks[kind]
        for spec, view in zip(FIELDS[kind], data, strict=True):
            chunks[spec.key].append(view)
        self.messages.append(
            MessageInfo(dev=payload["dev"], kind=kind, t_ms=t_ms, dt_ms=dt_ms, n=n,
                        row=self.rows[kind], events=(), host=host, packs=packs)
        )  # fmt: skip
        self.rows[kind] += n
        return True

    def add_decoded(self, payload: Mapping[str, Any]) -> None:
        """Take a payload through ``decode_columns`` (raises its :class:`TelemetryError`)."""
        decoded = decode_columns(payload)
        chunks = self.chunks[decoded.kind]
        for spec in FIELDS[decoded.kind]:
            values = np.asarray(decoded.columns[spec.key], dtype=np.int64).astype(_dtype(spec))
            chunks[spec.key].append(values.tobytes())
        self.messages.append(
            MessageInfo(dev=payload["dev"], kind=decoded.kind, t_ms=decoded.t_ms,
                        dt_ms=decoded.dt_ms, n=decoded.n, row=self.rows[decoded.kind],
                        events=decoded.events, host=decoded.host, packs=decoded.packs)
        )  # fmt: skip
        self.rows[decoded.kind] += decoded.n

    def wire(self) -> dict[str, dict[str, npt.NDArray[Any]]] | None:
        """The joined columns, or None when a value is outside its column's range."""
        result: dict[str, dict[str, npt.NDArray[Any]]] = {}
        for kind in KINDS:
            result[kind] = {}
            for spec in FIELDS[kind]:
                column = np.frombuffer(b"".join(self.chunks[kind][spec.key]), dtype=_dtype(spec))
                if column.size and (column.min() < spec.lo or column.max() > spec.hi):
                    return None
                result[kind][spec.key] = column
        return result


def _names(payload: Mapping[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    """The host (pack) and installed packs (bus) of a payload of the plain form."""
    host = payload.get("host")
    packs = payload.get("pack")
    return (host if isinstance(host, str) else None,
            tuple(packs) if isinstance(packs, list | tuple) else ())  # fmt: skip


def _plain_header(payload: Mapping[str, Any]) -> tuple[Kind, int, int, dict[str, Any]] | None:
    """Kind, ``t``, ``dt`` and columns of a payload of the plain form; None otherwise."""
    kind = payload.get("kind")
    if kind == "pack":
        host = payload.get("host")
        ids_ok = host is None or (type(host) is str and 1 <= len(host) <= MAX_ID_LEN)
    elif kind == "bus":
        packs = payload.get("pack")
        ids_ok = isinstance(packs, list | tuple) and all(
            type(p) is str and 1 <= len(p) <= MAX_ID_LEN for p in packs
        )
    else:
        return None
    t_ms: Any = payload.get("t")
    dt_ms: Any = payload.get("dt")
    columns: Any = payload.get("s")
    plain = (
        ids_ok
        and payload.keys() <= _PLAIN_KEYS[kind]
        and type(t_ms) is int
        and 0 <= t_ms <= U63
        and type(dt_ms) is int
        and MIN_DT_MS <= dt_ms <= MAX_DT_MS
        and type(columns) is dict
        and columns.keys() == _COLUMN_KEYS[kind]
    )
    return (cast("Kind", kind), t_ms, dt_ms, columns) if plain else None


def _plain_columns(kind: Kind, columns: dict[str, Any]) -> tuple[int, list[memoryview]] | None:
    """The sample count and element bytes of well-typed, equally long columns; else None."""
    data: list[memoryview] = []
    counts: set[int] = set()
    for key, tag, width in _LAYOUT[kind]:
        raw = columns[key]
        if type(raw) is not TypedArray:
            return None
        encoded = raw.encoded
        if encoded[1] != tag:
            return None
        view = memoryview(encoded)[_DATA_START[encoded[2]] :]
        counts.add(len(view) // width)
        data.append(view)
    if len(counts) != 1:
        return None
    n = counts.pop()
    return (n, data) if 1 <= n <= MAX_SAMPLES else None


def decode_all(payloads: Sequence[Mapping[str, Any]]) -> Decoded:
    """Validate and decode the telemetry of ``payloads`` (same errors as ``decode_columns``)."""
    joined = _decode_joined(payloads)
    return joined if joined is not None else _decode_each(payloads)


def _decode_each(payloads: Sequence[Mapping[str, Any]]) -> Decoded:
    """:func:`decode_all` one payload and column at a time (the definition of its result)."""
    collector = _Collector()
    failure: TelemetryError | None = None
    for payload in payloads:
        if collector.add_plain(payload):
            continue
        try:
            collector.add_decoded(payload)
        except TelemetryError as exc:
            failure = exc  # raised below unless an earlier plain payload is out of range
            break
    wire = collector.wire()
    if wire is None:
        _raise_first_error(payloads)
    if failure is not None:
        raise failure
    return Decoded(messages=tuple(collector.messages), wire=wire)


def _raise_first_error(payloads: Sequence[Mapping[str, Any]]) -> NoReturn:
    for payload in payloads:
        decode_columns(payload)
    raise AssertionError("a column range check failed but every payload decodes")


_COLUMNS_OF: Final = {
    kind: operator.itemgetter(*(key for key, _, _ in layout)) for kind, layout in _LAYOUT.items()
}
_ENCODED: Final = operator.attrgetter("encoded")
_TYPED_ONLY: Final = {TypedArray}
_SKIP: Final = np.full(256, -1, dtype=np.int64)
_SKIP[list(_DATA_START)] = list(_DATA_START.values())


@dataclass(slots=True)
class _Pending:
    """One message of the joined decode; ``n`` is None until its columns are checked."""

    dev: str
    kind: Kind
    t_ms: int
    dt_ms: int
    n: int | None
    events: tuple[Event, ...]
    host: str | None = None
    packs: tuple[str, ...] = ()


def _decode_joined(payloads: Sequence[Mapping[str, Any]]) -> Decoded | None:
    """:func:`decode_all` with each column's typed arrays joined and checked in numpy.

    A payload of the plain form whose columns are all typed arrays is taken whole (its
    encodings); the tags and the sample counts of every column are then checked for all
    messages at once. When any of them is not what ``_plain_columns`` accepts, None: the
    caller decodes one payload at a time (:func:`_decode_each`), which names the error.
    """
    pending: list[_Pending] = []
    chunks: dict[str, list[tuple[bytes, ...]]] = {kind: [] for kind in KINDS}
    plain: dict[str, list[bool]] = {kind: [] for kind in KINDS}
    failure: TelemetryError | None = None
    for payload in payloads:
        header = _plain_header(payload)
        if header is not None:
            kind, t_ms, dt_ms, columns = header
            raws: tuple[Any, ...] = _COLUMNS_OF[kind](columns)
            if set(map(type, raws)) == _TYPED_ONLY:
                host, packs = _names(payload)
                pending.append(_Pending(dev=payload["dev"], kind=kind, t_ms=t_ms, dt_ms=dt_ms,
                                        n=None, events=(), host=host, packs=packs))  # fmt: skip
                chunks[kind].append(tuple(map(_ENCODED, raws)))
                plain[kind].append(True)
                continue
        try:
            decoded = decode_columns(payload)
        except TelemetryError as exc:
            failure = exc  # raised below unless an earlier plain payload is out of range
            break
        pending.append(_Pending(dev=payload["dev"], kind=decoded.kind, t_ms=decoded.t_ms,
                                dt_ms=decoded.dt_ms, n=decoded.n,
                                events=decoded.events, host=decoded.host,
                                packs=decoded.packs))  # fmt: skip
        chunks[decoded.kind].append(tuple(
            np.asarray(decoded.columns[spec.key], dtype=np.int64).astype(_dtype(spec)).tobytes()
            for spec in FIELDS[decoded.kind]
        ))  # fmt: skip
        plain[decoded.kind].append(False)
    wire: dict[str, dict[str, npt.NDArray[Any]]] = {}
    counts: dict[str, list[int]] = {}
    for kind in KINDS:
        joined = _join_kind(kind, chunks[kind], plain[kind], pending)
        if joined is None:
            return None
        wire[kind], counts[kind] = joined
    for kind in KINDS:
        if not _in_range(kind, wire[kind]):
            _raise_first_error(payloads)
    if failure is not None:
        raise failure
    rows = dict.fromkeys(KINDS, 0)
    sizes = {kind: iter(counts[kind]) for kind in KINDS}
    messages = []
    for item in pending:
        n = next(sizes[item.kind])
        messages.append(MessageInfo(dev=item.dev, kind=item.kind, t_ms=item.t_ms,
                                    dt_ms=item.dt_ms, n=n, row=rows[item.kind],
                                    events=item.events, host=item.host,
                                    packs=item.packs))  # fmt: skip
        rows[item.kind] += n
    return Decoded(messages=tuple(messages), wire=wire)


def _join_kind(
    kind: Kind, chunks: list[tuple[bytes, ...]], plain: list[bool], pending: list[_Pending]
) -> tuple[dict[str, npt.NDArray[Any]], list[int]] | None:
    """The wire columns of one kind's messages and their sample counts; None to decode each.

    A plain message's chunk is a typed array's encoding (tag head, byte-string head,
    elements); a decoded message's chunk is the element bytes alone.
    """
    decoded_n = np.array([m.n for m in pending if m.kind == kind and m.n is not None], np.int64)
    has_head = np.array(plain, dtype=bool)
    n = np.zeros(len(plain), dtype=np.int64)
    n[~has_head] = decoded_n
    columns = list(zip(*chunks, strict=True)) if chunks else [() for _ in _LAYOUT[kind]]
    wire: dict[str, npt.NDArray[Any]] = {}
    for c, ((key, tag, width), spec) in enumerate(zip(_LAYOUT[kind], FIELDS[kind], strict=True)):
        parts = columns[c]
        lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
        data = np.frombuffer(b"".join(parts), dtype=np.uint8)
        starts = (np.cumsum(lengths) - lengths)[has_head]
        if starts.size and not (data[starts + 1] == tag).all():
            return None
        skip = _SKIP[data[starts + 2]] if starts.size else starts
        if (skip < 0).any():
            return None
        found = (lengths[has_head] - skip) // width
        if c == 0:
            n[has_head] = found
            if ((found < 1) | (found > MAX_SAMPLES)).any():
                return None
        elif not np.array_equal(found, n[has_head]):
            return None
        keep = np.ones(data.size, dtype=bool)
        for offset in range(int(skip.max(initial=0))):
            keep[starts[skip > offset] + offset] = False
        wire[key] = data[keep].view(_dtype(spec))
    return wire, n.tolist()


def _in_range(kind: Kind, wire: Mapping[str, npt.NDArray[Any]]) -> bool:
    """Every value of every column of ``kind`` lies in its column's range."""
    for spec in FIELDS[kind]:
        column = wire[spec.key]
        if column.size and (column.min() < spec.lo or column.max() > spec.hi):
            return False
    return True


def memory_values(spec: FieldSpec, wire: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A column in memory units: the floats (or integers) ``decode_batch`` gives, as numpy."""
    if spec.integral:
        return wire.astype(np.int64)
    if wire.size and (int(wire.max()) > _EXACT or int(wire.min()) < -_EXACT):
        return np.array([value / spec.per_unit for value in wire.tolist()], dtype=np.float64)
    return wire.astype(np.float64) / spec.per_unit
