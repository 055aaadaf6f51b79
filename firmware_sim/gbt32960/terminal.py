"""A running GB/T 32960 terminal: login, a real-time frame every period, reissue after an
outage, logout on stop. Values follow a simple city-bus drive cycle (not the pack physics:
the demo's terminals stand for vehicles voltproof did not equip). A lost or refused
connection is retried after the one jittered backoff (``ledger.backoff``, through the
agent's ``Backoff``), which starts over once a login is answered."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from firmware_sim.agent.backoff import Backoff
from ledger.gbt32960 import encode_frame, parse_frame
from ledger.gbt32960.errors import ANSWER_OK
from ledger.gbt32960.frame import CMD_REISSUE

from . import encode
from .encode import TerminalKey, Values

log = logging.getLogger(__name__)


@dataclass
class TerminalState:
    """What the terminal counts (for the demo's summary and tests)."""

    sent: int = 0
    acknowledged: int = 0
    refused: int = 0
    reissued: int = 0
    pending: deque[bytes] = field(default_factory=deque)


@dataclass
class Terminal:
    """One vehicle's terminal."""

    vin: str
    edition: int
    key: TerminalKey
    host: str
    port: int
    period_s: float = 10.0
    backoff: Backoff = field(default_factory=lambda: Backoff(base_s=0.5, cap_s=10.0))
    clock_ms: Callable[[], int] = field(default=lambda: time.time_ns() // 1_000_000)
    state: TerminalState = field(default_factory=TerminalState)
    _serial: int = 0
    _odometer_hm: int = 1_234_560
    _soc: float = 90.0

    async def run(self, stop: asyncio.Event) -> None:
        """Report until ``stop`` is set; reconnect (and reissue what was not answered)."""
        while not stop.is_set():
            try:
                await self._session(stop)
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                delay = self.backoff.next_delay()
                log.info(
                    "gbt32960_terminal_disconnected",
                    extra={"vin": self.vin, "error": str(exc), "retry_in_s": round(delay, 3)},
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)

    async def _session(self, stop: asyncio.Event) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            self._serial = self._serial % 65_531 + 1
            await self._exchange(reader, writer, encode.login(
                self.edition, self.vin, self.clock_ms(), self._serial))  # fmt: skip
            self.backoff.reset()  # the platform answers: the next outage starts over
            while self.state.pending:  # reissue (0x03) what an outage left unanswered
                await self._exchange(reader, writer, _as_reissue(self.state.pending[0]))
                self.state.pending.popleft()
                self.state.reissued += 1
            while not stop.is_set():
                frame = encode.realtime(self.edition, self.vin, self._sample(), key=self.key)
                self.state.pending.append(frame)
                await self._exchange(reader, writer, frame)
                self.state.pending.pop()  # answered (a refusal is counted, not retried)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.period_s)
            await self._exchange(reader, writer, encode.logout(
                self.edition, self.vin, self.clock_ms(), self._serial))  # fmt: skip
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, frame: bytes
    ) -> bool:
        writer.write(frame)
        await writer.drain()
        self.state.sent += 1
        header = await asyncio.wait_for(reader.readexactly(24), 30)
        rest = await asyncio.wait_for(
            reader.readexactly(int.from_bytes(header[22:24], "big") + 1), 30
        )
        answer = parse_frame(header + rest)
        if answer.answer == ANSWER_OK:
            self.state.acknowledged += 1
            return True
        self.state.refused += 1
        log.warning("gbt32960_terminal_refused", extra={"vin": self.vin, "answer": answer.answer})
        return False

    def _sample(self) -> Values:
        now = self.clock_ms()
        phase = (now / 1000) % 120 / 120
        speed_kmh = max(0.0, 40 * math.sin(2 * math.pi * phase))
        self._odometer_hm += round(speed_kmh * self.period_s / 360)
        self._soc = max(20.0, self._soc - 0.01 * self.period_s)
        current = round(speed_kmh * 50)  # 0.1 A
        cells = tuple(3300 + (k * 7) % 23 - round(current / 100) for k in range(16))
        return Values(
            at_ms=now, speed_dkmh=round(speed_kmh * 10), odometer_hm=self._odometer_hm,
            voltage_dv=sum(cells) * 12 // 100, current_da=current, soc_pct=round(self._soc),
            insulation_kohm=4800, lat_udeg=31_230_416 + self._odometer_hm % 5000,
            lon_udeg=121_473_701, cell_mv=cells, probe_c=(28, 29, 30, 31),
        )  # fmt: skip


def _as_reissue(frame: bytes) -> bytes:
    """The same data frame as reissued data (the 2025 signature covers the data unit only)."""
    parsed = parse_frame(frame)
    return encode_frame(
        edition=parsed.edition, command=CMD_REISSUE, answer=parsed.answer, vin=parsed.vin,
        data=parsed.data,
    )  # fmt: skip
