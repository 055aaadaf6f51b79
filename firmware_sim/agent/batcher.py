"""Group 1 Hz samples into message batches: periodic, and GB/T 32960 alarm mode.

Pure logic, no clock: the caller feeds one :class:`Reading` per sample period and gets back
the batches to sign, in order.

- Normal mode: one batch every ``period`` samples (default 10 s at 1 Hz).
- Alarm mode: when the alarm level reaches 3 (stop) or 4 (thermal event), the pending
  samples are flushed at once together with the ``pre_fault_samples`` samples before them
  (GB/T 32960: 30 s of 1 Hz pre-fault data). Such a batch carries a ``pre_fault`` event
  whose ``at`` is the index of its first sample that was not sent before: samples before
  ``at`` repeat earlier messages and give context only. While the level stays >= 3 every
  sample is sent in its own batch (1 Hz messages).
- Every change of the alarm level becomes an ``alarm`` event at the sample where it starts.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Final

from ledger.errors import VoltproofError
from ledger.telemetry import BusSample, Event, Kind, PackSample, Sample, TelemetryBatch

ALARM_MODE_LEVEL: Final = 3
DT_MS: Final = 1000


class BatcherConfigError(VoltproofError, ValueError):
    """The batching parameters are out of range."""


class ReadingKindError(VoltproofError, ValueError):
    """A reading of the wrong device kind or out of time order was fed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """One sample with its time and what the source knows besides the sample values."""

    t_ms: int
    sample: Sample
    events: tuple[Event, ...] = ()
    host: str | None = None
    packs: tuple[str, ...] = ()


@dataclass(slots=True)
class _Slot:
    reading: Reading
    sent: bool = False


@dataclass(slots=True, kw_only=True)
class Batcher:
    """Turns readings of one device into batches (see the module docstring)."""

    kind: Kind
    period: int = 10
    pre_fault_samples: int = 30
    dt_ms: int = DT_MS
    _history: deque[_Slot] = field(init=False)
    _pending: list[_Slot] = field(init=False, default_factory=list)
    _level: int = field(init=False, default=0)
    _flags: int = field(init=False, default=0)
    _last_t: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if not 1 <= self.period <= 600:
            raise BatcherConfigError(f"period must be 1..600 samples, not {self.period}")
        if not 0 <= self.pre_fault_samples <= 599:
            raise BatcherConfigError(
                f"pre_fault_samples must be 0..599, not {self.pre_fault_samples}"
            )
        self._history = deque(maxlen=self.pre_fault_samples + 1)

    @property
    def alarm_mode(self) -> bool:
        """True while the last sample had an alarm level of 3 or 4."""
        return self._level >= ALARM_MODE_LEVEL

    @property
    def pending(self) -> int:
        """Samples fed but not yet in a batch."""
        return len(self._pending)

    def feed(self, reading: Reading) -> list[TelemetryBatch]:
        """Take one reading; return the batches that are due (usually none or one)."""
        expected = PackSample if self.kind == "pack" else BusSample
        if not isinstance(reading.sample, expected):
            raise ReadingKindError(
                f"a {self.kind} batcher got a {type(reading.sample).__name__} reading"
            )
        if self._last_t is not None and reading.t_ms <= self._last_t:
            raise ReadingKindError(
                f"reading at {reading.t_ms} ms is not after the previous one ({self._last_t})"
            )
        level, flags = 0, 0
        if isinstance(reading.sample, PackSample):
            level, flags = reading.sample.alarm_level, reading.sample.alarm_flags
        events = list(reading.events)
        if (level, flags) != (self._level, self._flags):
            events.append(Event(kind="alarm", at=0, data={"lvl": level, "flags": flags}))
        self._flags = flags
        onset = level >= ALARM_MODE_LEVEL > self._level
        self._level = level
        slot = _Slot(
            Reading(
                t_ms=reading.t_ms,
                sample=reading.sample,
                events=tuple(events),
                host=reading.host,
                packs=reading.packs,
            )
        )
        self._history.append(slot)
        self._pending.append(slot)
        self._last_t = reading.t_ms
        if onset:
            context = [s for s in self._history if s.sent]
            return self._emit([*context, *self._pending], pre_fault=level)
        if level >= ALARM_MODE_LEVEL or len(self._pending) >= self.period:
            return self._emit(self._pending)
        return []

    def flush(self) -> list[TelemetryBatch]:
        """Return the pending samples as a batch (at shutdown), if there are any."""
        return self._emit(self._pending) if self._pending else []

    def _emit(self, slots: list[_Slot], *, pre_fault: int | None = None) -> list[TelemetryBatch]:
        runs = _split_runs(slots, self.dt_ms)
        batches = []
        for index, run in enumerate(runs):
            events = [
                Event(kind=e.kind, at=k, data=e.data)
                for k, slot in enumerate(run)
                if not slot.sent
                for e in slot.reading.events
            ]
            if pre_fault is not None and index == len(runs) - 1:
                first_new = next(k for k, slot in enumerate(run) if not slot.sent)
                events.append(Event(kind="pre_fault", at=first_new, data={"lvl": pre_fault}))
            last = run[-1].reading
            batches.append(
                TelemetryBatch(
                    kind=self.kind,
                    t_ms=run[0].reading.t_ms,
                    dt_ms=self.dt_ms,
                    samples=tuple(s.reading.sample for s in run),
                    events=tuple(sorted(events, key=lambda e: e.at)),
                    host=last.host if self.kind == "pack" else None,
                    packs=last.packs if self.kind == "bus" else (),
                )
            )
        for slot in slots:
            slot.sent = True
        self._pending = []
        return batches


def _split_runs(slots: list[_Slot], dt_ms: int) -> list[list[_Slot]]:
    """Split ``slots`` where the time step is not ``dt_ms`` (a batch has one ``dt``)."""
    runs: list[list[_Slot]] = []
    for slot in slots:
        if runs and slot.reading.t_ms - runs[-1][-1].reading.t_ms == dt_ms:
            runs[-1].append(slot)
        else:
            runs.append([slot])
    return runs
