"""The log export (``voltproof log export``): every leaf and signed checkpoint as JSON lines.

One JSON object per line, in this order:

1. a header ``{"format": "voltproof-log-export/1", "origin": ..., "size": N,
   "operator_key": <base64 32-byte Ed25519 public key>}``;
2. every signed checkpoint, ``{"checkpoint": <signed note text>}``, by size;
3. every leaf, ``{"index": i, "cose": <base64 COSE bytes>}``, by index ``0..N-1``.

The header's operator key is what the exporter says; an auditor who knows the operator's
key passes it (``voltproof audit --operator-key``) and the header's is then ignored. Nothing
else in the file is trusted: ``voltproof audit --leaves FILE --gateway-key KEY`` replays it
(:mod:`gateway.audit.replay`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, TextIO

from ..store import AnchorStatus, StoreReader
from .replay import AuditDisagreementError, AuditSummary, LogReplay

__all__ = [
    "EXPORT_FORMAT",
    "ExportHeader",
    "export_log",
    "read_export",
    "replay_export",
    "replay_store",
]

EXPORT_FORMAT: Final = "voltproof-log-export/1"
_PAGE: Final = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportHeader:
    """The export's first line."""

    origin: str
    size: int
    operator_key: bytes


async def export_log(
    reader: StoreReader,
    out: TextIO,
    *,
    origin: str,
    operator_key: bytes,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the store's whole log to ``out`` in one snapshot; return the number of leaves."""
    async with reader.snapshot():
        size = await reader.stored_size()
        header = {
            "format": EXPORT_FORMAT,
            "origin": origin,
            "size": size,
            "operator_key": base64.b64encode(operator_key).decode("ascii"),
        }
        out.write(json.dumps(header, sort_keys=True) + "\n")
        records = await reader.checkpoints_in(list(AnchorStatus))
        for record in sorted(records, key=lambda record: record.size):
            out.write(json.dumps({"checkpoint": record.note}) + "\n")
        after = -1
        while page := await reader.leaves_page(after=after, limit=_PAGE):
            for leaf in page:
                if leaf.leaf_index >= size:
                    return after + 1
                cose = base64.b64encode(leaf.cose).decode("ascii")
                out.write(json.dumps({"index": leaf.leaf_index, "cose": cose}) + "\n")
            after = page[-1].leaf_index
            if progress is not None:
                progress(after + 1)
    return size


def _line(text: str, number: int) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AuditDisagreementError(f"line {number} of the export is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise AuditDisagreementError(f"line {number} of the export is not a JSON object")
    return value


def _b64(value: object, what: str, number: int) -> bytes:
    if not isinstance(value, str):
        raise AuditDisagreementError(f"line {number}: {what} is not a base64 string")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise AuditDisagreementError(f"line {number}: {what} is not base64: {exc}") from exc


def _header(text: str) -> ExportHeader:
    value = _line(text, 1)
    if value.get("format") != EXPORT_FORMAT:
        raise AuditDisagreementError(
            f"line 1 of the export is not a {EXPORT_FORMAT} header: {text[:80]!r}"
        )
    origin, size = value.get("origin"), value.get("size")
    if not isinstance(origin, str) or type(size) is not int or size < 0:
        raise AuditDisagreementError("the export header needs an origin text and a size >= 0")
    key = _b64(value.get("operator_key"), "operator_key", 1)
    if len(key) != 32:
        raise AuditDisagreementError(
            f"the export header's operator key is {len(key)} bytes, not 32"
        )
    return ExportHeader(origin=origin, size=size, operator_key=key)


def read_export(
    lines: Iterator[str],
) -> tuple[ExportHeader, list[str], Iterator[tuple[int, bytes]]]:
    """The header, the checkpoint notes and a lazy iterator over ``(index, COSE bytes)``.

    Malformed lines raise :class:`AuditDisagreementError` naming the line, when they are reached.
    """
    first = next(lines, None)
    if first is None:
        raise AuditDisagreementError("the export is empty")
    header = _header(first)
    notes: list[str] = []
    number = 1
    pending: dict[str, Any] | None = None
    for text in lines:
        number += 1
        value = _line(text, number)
        if "checkpoint" not in value:
            pending = value
            break
        if set(value) != {"checkpoint"} or not isinstance(value["checkpoint"], str):
            raise AuditDisagreementError(
                f"line {number}: a checkpoint line is {{'checkpoint': note}}"
            )
        notes.append(value["checkpoint"])

    def leaves() -> Iterator[tuple[int, bytes]]:
        count = number
        value = pending
        while value is not None:
            if set(value) != {"index", "cose"} or type(value["index"]) is not int:
                raise AuditDisagreementError(
                    f"line {count}: a leaf line is {{'index': int, 'cose': base64}}"
                    + (" (checkpoints come before the leaves)" if "checkpoint" in value else "")
                )
            yield value["index"], _b64(value["cose"], "cose", count)
            text = next(lines, None)
            count += 1
            value = None if text is None else _line(text, count)

    return header, notes, leaves()


async def replay_store(
    reader: StoreReader,
    *,
    gateway_key: str,
    operator_key: bytes,
    origin: str,
    progress: Callable[[int], None] | None = None,
) -> AuditSummary:
    """Replay the store's whole log, in one snapshot, through :class:`LogReplay`."""
    async with reader.snapshot():
        size = await reader.stored_size()
        records = await reader.checkpoints_in(list(AnchorStatus))
        replay = LogReplay(
            checkpoints=[record.note for record in records],
            gateway_key=gateway_key,
            operator_key=operator_key,
            origin=origin,
            progress=progress,
        )
        after = -1
        while page := await reader.leaves_page(after=after, limit=_PAGE):
            for leaf in page:
                if leaf.leaf_index < size:
                    replay.feed(leaf.leaf_index, leaf.cose)
            after = page[-1].leaf_index
        return _finish(replay, size)


def replay_export(
    lines: Iterator[str],
    *,
    gateway_key: str,
    operator_key: bytes | None,
    progress: Callable[[int], None] | None = None,
) -> tuple[ExportHeader, AuditSummary]:
    """Replay an export (``operator_key`` ``None``: the one its header names)."""
    header, notes, leaves = read_export(lines)
    replay = LogReplay(
        checkpoints=notes,
        gateway_key=gateway_key,
        operator_key=header.operator_key if operator_key is None else operator_key,
        origin=header.origin,
        progress=progress,
    )
    for index, cose in leaves:
        replay.feed(index, cose)
    return header, _finish(replay, header.size)


def _finish(replay: LogReplay, size: int) -> AuditSummary:
    summary = replay.finish()
    if summary.leaves != size:
        raise AuditDisagreementError(f"the log holds {size} leaves, {summary.leaves} were given")
    return summary
