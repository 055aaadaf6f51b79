"""The GB/T 32960 listener: vehicles' terminals over TCP, each data frame a log leaf.

One asyncio TCP server (``[gbt32960]`` in the gateway's configuration). Per connection,
frames are read one at a time (header, then the announced length, each under the idle
timeout) and answered as GB/T 32960.3 clause 6.3 says:

- vehicle login, logout, heartbeat, time calibration: answered (0x01) and not logged;
- real-time (0x02) and reissued (0x03) data: decoded (and, 2025, SM2-verified against the
  terminal's registered key), appended as a ``voltproof-gbt32960/1`` leaf with the gateway's
  per-device seq/prev (``ledger.gbt32960.envelope``), a one-sample bus block and, when the
  frame carries every pack value, a one-sample pack block of the same leaf, and answered
  0x01 only after the commit is durable;
- a frame of another edition than the terminal's enrolled one: refused (0x02);
- a frame that fails: quarantined with its reason and answered with the standard's code
  (0x02 error, 0x04 unknown VIN; 2025 also 0x05 bad signature, 0x06 bad structure, 0x07
  decryption failed). A frame whose boundaries cannot be trusted (bad start bytes, a stream
  cut mid-frame, a length beyond 65531) closes that connection only.

Seq and prev are assigned under one lock (the per-device counter is this process's), and
the frames of all connections are committed together (**group commit**): while one commit
runs, the frames that arrive wait for the next, which takes them all in one transaction;
each frame is answered once the commit holding it is durable. A failed commit fails every
frame that waited for it or was built on it (their terminals get no answer and re-send) and
the per-device counters are read again from the store. A frame resent because its answer was
lost is recognised by its bytes (per device, the last :data:`RECENT_FRAMES`, and those
still waiting for their commit) and answered without a second leaf.

SM2 verification (pure Python, about 10 ms of CPU per frame) runs in a pool of processes
(``sm2_workers``, one per CPU by default), never on the event loop: the gateway's MQTT
intake shares that loop, and frames of different terminals are verified side by side on
every core. A pool whose worker died is replaced and the frame verified again; if that
fails too, the connection is closed unanswered (the terminal re-sends: nothing about the
frame was decided).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import multiprocessing
import os
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from ledger import gbt32960 as gbt
from ledger.chain import ZERO_PREV
from ledger.gbt32960.errors import ANSWER_OK
from ledger.gbt32960.frame import (
    CMD_HEARTBEAT,
    CMD_LOGIN,
    CMD_LOGOUT,
    CMD_REALTIME,
    CMD_REISSUE,
    CMD_TIME_SYNC,
    HEADER_LEN,
    START,
)
from ledger.gbt32960.units import decode_empty
from ledger.message import MessageError, decode_message
from ledger.telemetry import TelemetryColumns

from .config import GbtSettings
from .store import Appended, Candidate, DeviceStatus, QuarantineEntry, Store, StoreError

log = logging.getLogger(__name__)

RECENT_FRAMES = 1024
QUARANTINE_PREFIX = 512


@dataclass(slots=True)
class _Device:
    device_id: str
    terminal: gbt.Terminal
    seq: int
    head: bytes
    recent: OrderedDict[bytes, int]


@dataclass(slots=True, kw_only=True)
class _Pending:
    """A frame's leaf waiting for the group commit."""

    candidate: Candidate
    device: _Device
    digest: bytes
    done: asyncio.Future[Appended]


@dataclass(slots=True)
class GbtStats:
    """Counters for tests and metrics."""

    connections: int = 0
    frames: int = 0
    appended: int = 0
    quarantined: int = 0
    without_pack: int = 0
    """Frames logged without a pack block (a pack value missing or out of range)."""
    commits: int = 0
    """Store transactions that appended frames (fewer than frames: group commit)."""


class GbtListener:
    """The TCP server; ``async with`` starts it, leaving stops it and closes connections."""

    def __init__(
        self,
        *,
        settings: GbtSettings,
        store: Store,
        clock_ms: Callable[[], int],
        on_appended: Callable[[int], None] | None = None,
        max_future_skew_ms: int = 120_000,
    ) -> None:
        self._settings = settings
        self._store = store
        self._clock_ms = clock_ms
        self._on_appended = on_appended
        self._max_future_skew_ms = max_future_skew_ms
        self._server: asyncio.Server | None = None
        self._devices: dict[str, _Device] = {}
        self._lock = asyncio.Lock()
        self._connections: set[asyncio.Task[None]] = set()
        self._sm2_pool: ProcessPoolExecutor | None = None
        self._pending: list[_Pending] = []
        self._waiting: dict[bytes, asyncio.Future[Appended]] = {}
        self._flusher: asyncio.Task[None] | None = None
        self.stats = GbtStats()

    @property
    def address(self) -> tuple[str, int]:
        """The bound host and port (the port is chosen by the OS when configured as 0)."""
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    @property
    def waiting_frames(self) -> int:
        """Frames queued for, or inside, a group commit that has not ended yet."""
        return len(self._waiting)

    def sm2_worker_pids(self) -> list[int]:
        """The process ids of the SM2 verification pool (empty before the first 2025 frame)."""
        pool = self._sm2_pool
        processes = getattr(pool, "_processes", None) or {}
        return sorted(int(pid) for pid in processes)

    async def __aenter__(self) -> GbtListener:
        self._server = await asyncio.start_server(
            self._accept, host=self._settings.host, port=self._settings.port
        )
        log.info("gbt32960_listening", extra={"address": "{}:{}".format(*self.address)})
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop accepting, end every connection (idempotent)."""
        if self._server is not None and self._server.is_serving():
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            # return_exceptions: the connections' own cancellations are results; only a
            # cancellation of close() itself propagates
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()
        if self._flusher is not None:
            # the frames already handed to a commit are written (their seqs are taken)
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._sm2_pool is not None:
            self._sm2_pool.shutdown(wait=False, cancel_futures=True)
            self._sm2_pool = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connections) >= self._settings.max_connections:
            writer.close()
            return
        self._connections.add(task)
        self.stats.connections += 1
        peer = writer.get_extra_info("peername")
        try:
            await self._serve(reader, writer, f"tcp://{peer[0]}:{peer[1]}" if peer else "tcp")
        except (ConnectionError, TimeoutError):
            pass
        except StoreError as exc:
            # The store failed (its frames are unanswered, so the terminal re-sends them):
            # this connection ends, the listener and the other connections go on.
            log.warning("gbt32960_store_failed", extra={"error": str(exc)})
        except asyncio.CancelledError:
            # The listener is closing: end this connection quietly (asyncio's stream
            # callback would otherwise log the cancelled handler as an error).
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        timeout = self._settings.idle_timeout_s
        while True:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancellation that
            # lands in the tick its read completes (python/cpython#86296, fixed in 3.12), and
            # close() then waited for a connection that went on being served.
            try:
                async with asyncio.timeout(timeout):
                    first = await reader.read(2)
                if not first:
                    return
                async with asyncio.timeout(timeout):
                    header = first + await reader.readexactly(HEADER_LEN - len(first))
                total = gbt.frame_length(header)
                async with asyncio.timeout(timeout):
                    raw = header + await reader.readexactly(total - HEADER_LEN)
            except asyncio.IncompleteReadError as exc:
                await self._quarantine(
                    "gbt_truncated", f"the connection ended mid-frame: {exc}", peer,
                    bytes(exc.partial), vin=None,
                )  # fmt: skip
                return
            except gbt.GbtError as exc:
                await self._quarantine("gbt_unframed", str(exc), peer, header, vin=None)
                return
            self.stats.frames += 1
            answer = await self._handle(raw, peer)
            if answer is not None:
                writer.write(answer)
                await writer.drain()

    async def _handle(self, raw: bytes, peer: str) -> bytes | None:
        """The answer to one whole frame (or None when nothing is to be answered)."""
        try:
            frame = gbt.parse_frame(raw)
        except gbt.GbtError as exc:
            await self._quarantine(_reason(exc), str(exc), peer, raw, vin=None)
            return _answer_raw(raw, exc, self._now())
        if not frame.is_command:
            return None  # the terminal answering a platform query: nothing to do
        try:
            return await self._command(frame)
        except gbt.GbtError as exc:
            await self._quarantine(_reason(exc), str(exc), peer, raw, vin=frame.vin)
            code = gbt.answer_for(exc, edition=frame.edition)
            data = frame.data[:6] if len(frame.data) >= 6 else self._now()
            return gbt.answer_frame(frame, answer=code, data=data)

    async def _command(self, frame: gbt.Frame) -> bytes:
        device = await self._device(frame.vin)
        if not device.terminal.allows(frame.edition):
            raise gbt.EditionError(
                f"a {frame.edition} frame; {frame.vin} is enrolled as edition "
                f"{device.terminal.edition}"
            )
        gbt.require_plain(frame)
        command = frame.command
        if command == CMD_LOGIN:
            login = gbt.decode_login(frame.edition, frame.data)
            log.info("gbt32960_login", extra={"vin": frame.vin, "serial": login.serial})
        elif command == CMD_LOGOUT:
            gbt.decode_logout(frame.data)
            log.info("gbt32960_logout", extra={"vin": frame.vin})
        elif command == CMD_HEARTBEAT:
            decode_empty(frame.data, "heartbeat")
            return gbt.answer_frame(frame, answer=ANSWER_OK, data=self._now())
        elif command == CMD_TIME_SYNC:
            decode_empty(frame.data, "time calibration")
            return gbt.answer_frame(frame, answer=ANSWER_OK, data=self._now())
        elif command in {CMD_REALTIME, CMD_REISSUE}:
            await self._append(frame, device)
        else:
            raise gbt.FrameStructureError(f"command {command:#04x} is not sent by a vehicle")
        return gbt.answer_frame(frame, answer=ANSWER_OK, data=frame.data[:6])

    def _now(self) -> bytes:
        return gbt.encode_time(self._clock_ms())

    async def _device(self, vin: str) -> _Device:
        # The status is read on every frame: a revocation (by another process) takes
        # effect at the next frame, not at the next restart.
        record = (await self._store.devices([vin])).get(vin)
        if record is None or record.status is not DeviceStatus.ACTIVE:
            raise gbt.UnknownVinError(f"no active terminal is enrolled under VIN {vin}")
        known = self._devices.get(vin)
        if known is not None:
            return known
        terminal = await self._terminal(vin)
        heads = {h.device_id: h for h in await self._store.chain_heads()}
        head = heads.get(vin)
        device = _Device(
            device_id=vin,
            terminal=terminal,
            seq=head.seq + 1 if head is not None else 0,
            head=head.message_hash if head is not None else ZERO_PREV,
            recent=OrderedDict(),
        )
        self._devices[vin] = device
        return device

    async def _terminal(self, vin: str) -> gbt.Terminal:
        size = (await self._store.log_head()).size
        for leaf in await self._store.registry_leaves([vin], leaf_below=size):
            try:
                payload = decode_message(leaf.cose).payload
            except MessageError:
                continue
            if payload.get("type") == "enroll":
                terminal = gbt.read_terminal(payload)
                if terminal is not None and terminal.vin == vin:
                    return terminal
        raise gbt.UnknownVinError(f"{vin} is enrolled, but not as a GB/T 32960 terminal")

    async def _append(self, frame: gbt.Frame, device: _Device) -> None:
        record = gbt.decode_realtime(frame.edition, frame.data)
        ahead = record.at_ms - self._clock_ms()
        if ahead > self._max_future_skew_ms:
            raise gbt.FrameTimeError(
                f"collection time is {ahead} ms ahead of the gateway's clock "
                f"(the bound is {self._max_future_skew_ms} ms)"
            )
        if frame.edition == 2025:
            assert record.signature is not None  # decode_realtime requires it in 2025
            await self._verify_sm2(record.signature, record.signed, device.terminal.sm2)
        columns = gbt.bus_telemetry(record)
        pack = gbt.pack_telemetry(record)
        digest = hashlib.sha256(frame.raw).digest()
        async with self._lock:
            if digest in device.recent:
                return  # resent after a lost answer: logged already
            done = self._waiting.get(digest)
            if done is None:  # (else resent while its first copy waits for the commit)
                done = self._enqueue(frame, at_ms=record.at_ms, device=device, digest=digest,
                                     columns=columns, pack=pack)  # fmt: skip
        outcome = await asyncio.shield(done)
        if pack is None:
            log.info("gbt32960_no_pack_sample", extra={
                "vin": frame.vin, "leaf": outcome.leaf_index, "reason": gbt.pack_gap(record),
            })  # fmt: skip
        if self._on_appended is not None:
            self._on_appended(1)

    def _enqueue(
        self, frame: gbt.Frame, *, at_ms: int, device: _Device, digest: bytes,
        columns: TelemetryColumns, pack: TelemetryColumns | None,
    ) -> asyncio.Future[Appended]:  # fmt: skip
        """The frame's leaf on the device's chain, queued for the next group commit (under
        the lock). The device's counters move on at once: the next frame chains to this one."""
        now = self._clock_ms()
        leaf = gbt.encode_envelope(
            received_at_ms=now, seq=device.seq, prev=device.head, device_id=device.device_id,
            frame=frame.raw,
        )  # fmt: skip
        leaf_hash = gbt.envelope_hash(leaf)
        candidate = Candidate(
            position=0, topic=f"gbt32960/{frame.vin}", device_id=device.device_id,
            seq=device.seq, prev=device.head, t_ms=at_ms, received_at_ms=now,
            historical=frame.command == CMD_REISSUE, cose=leaf, message_hash=leaf_hash,
            batch=columns, pack=pack,
        )  # fmt: skip
        device.seq += 1
        device.head = leaf_hash
        done: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(candidate=candidate, device=device, digest=digest,
                                      done=done))  # fmt: skip
        self._waiting[digest] = done
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="gbt32960-commit")
        return done

    async def _flush(self) -> None:
        """Commit what is queued, one transaction at a time, until nothing is."""
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                outcomes = await self._store.commit([p.candidate for p in batch], [])
            except BaseException as exc:
                # Nothing of the batch is written, and the frames queued since are built on
                # it: all fail (no await from here to the end of _fail, so no frame joins).
                later, self._pending = self._pending, []
                failure = exc if isinstance(exc, Exception) else ConnectionError("stopping")
                self._fail([*batch, *later], failure)
                if not isinstance(exc, StoreError):
                    raise
                continue
            self.stats.commits += 1
            for waiting, outcome in zip(batch, outcomes, strict=True):
                self._waiting.pop(waiting.digest, None)
                if not isinstance(outcome, Appended):
                    self._devices.pop(waiting.device.device_id, None)
                    waiting.done.set_exception(gbt.FrameStructureError(
                        f"the store did not append the frame: {outcome}"
                    ))  # fmt: skip
                    continue
                recent = waiting.device.recent
                recent[waiting.digest] = outcome.leaf_index
                if len(recent) > RECENT_FRAMES:
                    recent.popitem(last=False)
                self.stats.appended += 1
                self.stats.without_pack += waiting.candidate.pack is None
                waiting.done.set_result(outcome)

    def _fail(self, failed: list[_Pending], exc: Exception) -> None:
        """Fail every frame of a commit that failed, and of those built on it; the devices'
        counters are read again from the store at their next frame."""
        log.warning("gbt32960_commit_failed", extra={"frames": len(failed), "error": str(exc)})
        for waiting in failed:
            self._devices.pop(waiting.device.device_id, None)
            self._waiting.pop(waiting.digest, None)
            if not waiting.done.done():
                waiting.done.set_exception(exc)
                waiting.done.exception()  # retrieved here: a cancelled waiter must not warn

    async def _verify_sm2(self, signature: gbt.Signature, signed: bytes, key: bytes) -> None:
        """:func:`ledger.gbt32960.verify_sm2` in the SM2 pool (raises its GbtSignatureError)."""
        loop = asyncio.get_running_loop()
        call = functools.partial(gbt.verify_sm2, signature=signature, signed=signed,
                                 public_key=key)  # fmt: skip
        for attempt in (1, 2):
            try:
                await loop.run_in_executor(self._pool(), call)
            except BrokenProcessPool as exc:
                log.warning(
                    "gbt32960_sm2_pool_broken", extra={"attempt": attempt, "error": str(exc)}
                )
                broken, self._sm2_pool = self._sm2_pool, None  # a new pool for the next attempt
                if broken is not None:
                    broken.shutdown(wait=False, cancel_futures=True)
            else:
                return
        raise ConnectionError("the SM2 verification processes keep failing")

    def _pool(self) -> ProcessPoolExecutor:
        if self._sm2_pool is None:
            workers = self._settings.sm2_workers or os.cpu_count() or 1
            # spawn, not fork: the gateway has threads (SQLite, MQTT) a fork would copy mid-lock
            self._sm2_pool = ProcessPoolExecutor(
                max_workers=workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._sm2_pool

    async def _quarantine(
        self, reason: str, detail: str, peer: str, raw: bytes, *, vin: str | None
    ) -> None:
        self.stats.quarantined += 1
        log.warning("gbt32960_refused", extra={"reason": reason, "detail": detail, "peer": peer})
        entry = QuarantineEntry(
            reason=reason, detail=detail, topic=peer, device_id=vin,
            raw=raw[:QUARANTINE_PREFIX], raw_size=len(raw), received_at_ms=self._clock_ms(),
        )  # fmt: skip
        async with self._lock:
            # shielded: a connection cancelled mid-write (the listener closing) must not
            # leave the store inside an unfinished transaction
            await asyncio.shield(self._store.commit([], [entry]))


def _reason(exc: gbt.GbtError) -> str:
    names = {
        gbt.ChecksumError: "gbt_bad_checksum",
        gbt.TruncatedFrameError: "gbt_truncated",
        gbt.UnsupportedUnitError: "gbt_unsupported_unit",
        gbt.EncryptionError: "gbt_encrypted",
        gbt.GbtSignatureError: "gbt_bad_signature",
        gbt.UnknownVinError: "gbt_unknown_vin",
        gbt.FrameTimeError: "gbt_future_timestamp",
        gbt.EditionError: "gbt_wrong_edition",
    }
    return next((name for cls, name in names.items() if isinstance(exc, cls)), "gbt_malformed")


def _answer_raw(raw: bytes, exc: gbt.GbtError, now: bytes) -> bytes | None:
    """An answer to a frame that did not parse, built from its header if that is usable."""
    edition = next((e for e, start in START.items() if raw.startswith(start)), None)
    try:
        vin = raw[4:21].decode("ascii")
    except UnicodeDecodeError:
        return None
    if edition is None or len(vin) != 17 or not vin.isalnum():
        return None
    return gbt.encode_frame(
        edition=edition, command=raw[2], answer=gbt.answer_for(exc, edition=edition), vin=vin,
        data=now,
    )  # fmt: skip
