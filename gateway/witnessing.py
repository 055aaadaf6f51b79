"""The gateway as a witness client: submit each signed checkpoint, keep the cosignatures.

One task per configured witness (C2SP tlog-witness ``add-checkpoint``). The checkpointer's
``on_signed`` hook calls :meth:`Witnessing.submit`, which only replaces each witness's
*wanted* checkpoint with the newest one and wakes its task: a slow or dead witness never
blocks intake or checkpointing, and only the newest checkpoint matters (a cosignature of
size N covers every leaf below N, and the witness proves consistency itself).

Each attempt sends ``old <size the witness last cosigned>`` with the consistency proof from
that size. The size starts at the largest checkpoint this witness cosigned in the store
(0 if none); a 409 answer tells the real one, and the attempt is repeated from there, as the
spec says. Every answer is checked before anything is stored: a 200 body must hold a
cosignature/v1 line by the configured key that verifies over this checkpoint, with a
timestamp within ``max_clock_skew_s`` of the gateway's clock. Anything else is logged and
counted (``bad_answer``), never stored, and retried with the jittered backoff of
:mod:`ledger.backoff`, as are refusals and network failures.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import httpx

from ledger.backoff import Backoff
from ledger.cosignature import CosignatureError, WitnessKey, parse_witness_key, verify_cosignature
from ledger.errors import VerificationError
from ledger.note import NoteError
from ledger.witness_protocol import SIZE_CONTENT_TYPE, format_add_checkpoint, parse_size

from .config import WitnessEndpoint
from .metrics import GatewayMetrics
from .store import CheckpointRecord, CosignatureRecord, Store, StoreError

log = logging.getLogger(__name__)

MAX_CONFLICTS_IN_A_ROW: Final = 2
"""409 answers followed at once (the second would mean the witness moved meanwhile)."""
MAX_UNCOVERED: Final = 100_000
"""Signed checkpoints remembered per witness for the lag gauges (the oldest are dropped)."""


class Result(StrEnum):
    """The outcome of one submission, as counted in ``voltproof_witness_submissions``."""

    COSIGNED = "cosigned"
    CONFLICT = "conflict"
    REFUSED = "refused"
    UNAVAILABLE = "unavailable"
    BAD_ANSWER = "bad_answer"
    AHEAD = "ahead"
    """The witness holds a larger size than this checkpoint (it saw a checkpoint we did not)."""


class BadAnswerError(VerificationError):
    """A witness answered 200 with something that is not its valid cosignature of the note."""


@dataclass
class WitnessStats:
    """What happened with one witness (also exported as metrics)."""

    cosigned_size: int = 0
    cosigned_timestamp: int | None = None
    results: dict[Result, int] = field(default_factory=lambda: dict.fromkeys(Result, 0))
    last_error: str | None = None


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _cosignature_lines(answer: str, key: WitnessKey) -> str:
    """The lines of ``answer`` signed with ``key`` (name and key id), newline-terminated."""
    mine = []
    for line in answer.splitlines(keepends=True):
        prefix = f"\u2014 {key.name} "
        if not line.startswith(prefix) or not line.endswith("\n"):
            continue
        try:
            raw = base64.b64decode(line[len(prefix) : -1], validate=True)
        except (binascii.Error, ValueError):
            continue
        if raw[:4] == key.key_id:
            mine.append(line)
    return "".join(mine)


def check_answer(
    note: str, answer: bytes, *, key: WitnessKey, not_before: int, not_after: int
) -> tuple[str, int]:
    """The cosignature line(s) by ``key`` in a 200 ``answer`` for ``note``, and their timestamp.

    Raises :class:`BadAnswerError` when the answer is not UTF-8 signature lines, holds no
    line by ``key``, a line does not verify over ``note``'s body (e.g. a cosignature of
    another checkpoint), or its timestamp is outside ``[not_before, not_after]``.
    """
    try:
        text = answer.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadAnswerError("answer is not UTF-8") from exc
    lines = _cosignature_lines(text, key)
    if not lines:
        raise BadAnswerError(f"answer holds no cosignature line by {key}: {text[:80]!r}")
    try:
        timestamp = verify_cosignature(note + lines, witness_key=key, not_after=not_after)
    except (CosignatureError, NoteError) as exc:
        raise BadAnswerError(f"answer does not cosign this checkpoint: {exc}") from exc
    if timestamp < not_before:
        raise BadAnswerError(
            f"cosignature timestamp {timestamp} is before the checkpoint was signed "
            f"({not_before} allowing for skew)"
        )
    return lines, timestamp


class WitnessClient:
    """Submits the newest signed checkpoint to one witness until it is cosigned."""

    def __init__(
        self,
        *,
        endpoint: WitnessEndpoint,
        store: Store,
        http: httpx.AsyncClient,
        metrics: GatewayMetrics | None = None,
        clock_ms: Callable[[], int] = _wall_clock_ms,
        sleep: Callable[[float], Coroutine[Any, Any, None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.endpoint = endpoint
        self.key = parse_witness_key(endpoint.key)
        self.vkey = str(self.key)
        self._store = store
        self._http = http
        self._metrics = metrics
        self._clock_ms = clock_ms
        self._sleep = sleep
        self._jitter = jitter
        self._backoff = Backoff(base_s=min(0.5, endpoint.retry_max_s), cap_s=endpoint.retry_max_s)
        self._wanted: CheckpointRecord | None = None
        self._wake = asyncio.Event()
        self._known_size = 0
        self._uncovered: deque[tuple[int, int]] = deque(maxlen=MAX_UNCOVERED)
        self.stats = WitnessStats()

    @property
    def url(self) -> str:
        """The add-checkpoint URL."""
        return f"{self.endpoint.url}/add-checkpoint"

    async def load(self) -> None:
        """Start from what the store says this witness cosigned; want the newest checkpoint."""
        latest = await self._store.latest_cosigned(self.vkey)
        if latest is not None:
            self._known_size = latest.size
            self.stats.cosigned_size = latest.size
            self.stats.cosigned_timestamp = latest.timestamp
        newest = await self._store.latest_checkpoint()
        if newest is not None and newest.size > self._known_size:
            self.want(newest)

    def want(self, record: CheckpointRecord) -> None:
        """Make ``record`` the checkpoint to submit next (it replaces any older one)."""
        if record.size <= self.stats.cosigned_size:
            return  # already covered by a stored cosignature of this witness
        if self._wanted is None or record.size > self._wanted.size:
            self._wanted = record
            if not self._uncovered or self._uncovered[-1][0] < record.size:
                self._uncovered.append((record.size, record.signed_at_ms))
            self._wake.set()

    @property
    def pending(self) -> CheckpointRecord | None:
        """The checkpoint waiting to be cosigned, if any."""
        return self._wanted

    async def run(self, stop: asyncio.Event) -> None:
        """Submit wanted checkpoints, backing off after failures, until ``stop`` is set."""
        failures = 0
        while not stop.is_set():
            if self._wanted is None:
                await _first(self._wake.wait(), stop.wait())
                self._wake.clear()
                continue
            if await self.attempt():
                failures = 0
                continue
            delay = self._backoff.delay(failures, self._jitter())
            failures += 1
            await _first(self._sleep(delay), stop.wait())

    async def attempt(self) -> bool:
        """Submit the wanted checkpoint once (following 409 answers); True when done."""
        record = self._wanted
        if record is None:
            return True
        for _ in range(MAX_CONFLICTS_IN_A_ROW + 1):
            try:
                result = await self._submit(record)
            except StoreError as exc:  # disk full or locked: retried like an unavailable witness
                self._note_error(f"store: {exc}", level=logging.ERROR)
                return False
            self._count(result)
            if result is not Result.CONFLICT:
                break
        else:
            return False
        if result is Result.COSIGNED or result is Result.AHEAD:
            if self._wanted is record:
                self._wanted = None
            return True
        return False

    async def _submit(self, record: CheckpointRecord) -> Result:
        old = self._known_size
        if old > record.size:
            self._note_error(
                f"witness holds size {old}, above checkpoint {record.size}", level=logging.ERROR
            )
            return Result.AHEAD
        try:
            proof = await self._store.consistency_proof(old, record.size) if old else []
        except (StoreError, VerificationError) as exc:
            # A size the witness learned elsewhere that this log cannot prove from.
            self._note_error(f"no consistency proof from {old}: {exc}", level=logging.ERROR)
            return Result.REFUSED
        body = format_add_checkpoint(old_size=old, proof=proof, checkpoint=record.note)
        try:
            answer = await self._http.post(self.url, content=body, timeout=self.endpoint.timeout_s)
        except httpx.HTTPError as exc:
            self._note_error(f"{type(exc).__name__}: {exc}")
            return Result.UNAVAILABLE
        if answer.status_code == httpx.codes.CONFLICT:
            return self._conflict(answer)
        if answer.status_code != httpx.codes.OK:
            self._note_error(f"HTTP {answer.status_code}: {answer.text[:200]!r}")
            return Result.REFUSED if answer.status_code < 500 else Result.UNAVAILABLE
        return await self._store_answer(record, answer.content)

    def _conflict(self, answer: httpx.Response) -> Result:
        content_type = answer.headers.get("content-type", "").split(";")[0].strip()
        try:
            if content_type != SIZE_CONTENT_TYPE:
                raise BadAnswerError(f"409 answer has content type {content_type!r}")
            self._known_size = parse_size(answer.content)
        except VerificationError as exc:
            self._note_error(f"bad 409 answer: {exc}")
            return Result.BAD_ANSWER
        log.info(
            "witness_size_learned",
            extra={"witness": self.endpoint.name, "size": self._known_size},
        )
        return Result.CONFLICT

    async def _store_answer(self, record: CheckpointRecord, answer: bytes) -> Result:
        now_s = self._clock_ms() // 1000
        skew = self.endpoint.max_clock_skew_s
        try:
            lines, timestamp = check_answer(
                record.note,
                answer,
                key=self.key,
                not_before=record.signed_at_ms // 1000 - skew,
                not_after=now_s + skew,
            )
        except BadAnswerError as exc:
            self._note_error(f"bad answer: {exc}", level=logging.ERROR)
            return Result.BAD_ANSWER
        await self._store.add_cosignature(
            CosignatureRecord(
                size=record.size,
                witness=self.vkey,
                timestamp=timestamp,
                line=lines,
                received_at_ms=self._clock_ms(),
            )
        )
        self._known_size = record.size
        self.stats.cosigned_size = record.size
        self.stats.cosigned_timestamp = timestamp
        self.stats.last_error = None
        while self._uncovered and self._uncovered[0][0] <= record.size:
            self._uncovered.popleft()
        log.info(
            "checkpoint_cosigned",
            extra={"witness": self.endpoint.name, "size": record.size, "timestamp": timestamp},
        )
        return Result.COSIGNED

    def _note_error(self, reason: str, *, level: int = logging.WARNING) -> None:
        self.stats.last_error = reason
        log.log(
            level,
            "witness_submission_failed",
            extra={"witness": self.endpoint.name, "error": reason},
        )

    def _count(self, result: Result) -> None:
        self.stats.results[result] += 1
        if self._metrics is not None:
            self._metrics.witness_submissions.labels(
                witness=self.endpoint.name, result=result.value
            ).inc()

    def lag(self, now_ms: int) -> tuple[int, float]:
        """Signed checkpoints not yet covered by a cosignature, and the oldest one's age (s)."""
        if not self._uncovered:
            return 0, 0.0
        return len(self._uncovered), max(0.0, (now_ms - self._uncovered[0][1]) / 1000)


async def _first(*waits: Coroutine[Any, Any, Any]) -> None:
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


class Witnessing:
    """Every configured witness's client; the checkpointer's ``on_signed`` is :meth:`submit`."""

    def __init__(
        self,
        *,
        endpoints: Sequence[WitnessEndpoint],
        store: Store,
        metrics: GatewayMetrics | None = None,
        clock_ms: Callable[[], int] = _wall_clock_ms,
        sleep: Callable[[float], Coroutine[Any, Any, None]] = asyncio.sleep,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._http = http or httpx.AsyncClient()
        self._owns_http = http is None
        self._metrics = metrics
        self._clock_ms = clock_ms
        self.clients = [
            WitnessClient(
                endpoint=endpoint,
                store=store,
                http=self._http,
                metrics=metrics,
                clock_ms=clock_ms,
                sleep=sleep,
            )
            for endpoint in endpoints
        ]

    async def load(self) -> None:
        """Each client starts from the store (and wants the newest checkpoint if uncovered)."""
        for client in self.clients:
            await client.load()

    def submit(self, record: CheckpointRecord) -> None:
        """Hand a newly signed checkpoint to every witness; returns at once."""
        for client in self.clients:
            client.want(record)

    async def run(self, stop: asyncio.Event) -> None:
        """Run every witness's client until ``stop`` is set."""
        async with asyncio.TaskGroup() as tasks:
            for client in self.clients:
                tasks.create_task(client.run(stop), name=f"witness-{client.endpoint.name}")

    async def flush(self, timeout_s: float) -> None:
        """One last attempt per witness for what is pending (at shutdown), within a timeout."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s), asyncio.TaskGroup() as tasks:
                for client in self.clients:
                    tasks.create_task(
                        client.attempt(), name=f"witness-flush-{client.endpoint.name}"
                    )

    def update_metrics(self) -> None:
        """Set the per-witness lag gauges (checkpoints and seconds) and cosigned size."""
        if self._metrics is None:
            return
        now = self._clock_ms()
        for client in self.clients:
            checkpoints, seconds = client.lag(now)
            name = client.endpoint.name
            self._metrics.witness_lag_checkpoints.labels(witness=name).set(checkpoints)
            self._metrics.witness_lag_seconds.labels(witness=name).set(seconds)
            self._metrics.witness_cosigned_size.labels(witness=name).set(client.stats.cosigned_size)

    async def aclose(self) -> None:
        """Close the HTTP client if this object opened it."""
        if self._owns_http:
            await self._http.aclose()
