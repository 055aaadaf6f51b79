"""Who may see what (pure): roles, principals, grants and the time windows they open.

- ``operator``: every device of their fleet (or of every fleet when the key has none), all
  the time; quarantine and registry included.
- ``lessor``: only the assets under their leases, only inside each lease period; a pack
  transferred to them (second-life sale) is theirs over its whole history.
- ``auditor``: read-only proofs (checkpoints, consistency and inclusion proofs, leaf hashes),
  never telemetry values or message bytes.

An asset a principal may not see is answered exactly like an asset that does not exist
(404), so existence does not leak across tenants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

FOREVER: Final = 2**63 - 1


class Role(StrEnum):
    """The three kinds of API user."""

    OPERATOR = "operator"
    LESSOR = "lessor"
    AUDITOR = "auditor"


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """A half-open period ``[from_ms, to_ms)`` in Unix ms."""

    from_ms: int
    to_ms: int

    def __post_init__(self) -> None:
        if not self.from_ms < self.to_ms:
            raise ValueError(f"window start {self.from_ms} is not before its end {self.to_ms}")

    def clamp(self, other: Window) -> Window | None:
        """The overlap of the two windows, or ``None``."""
        start, end = max(self.from_ms, other.from_ms), min(self.to_ms, other.to_ms)
        return Window(from_ms=start, to_ms=end) if start < end else None

    def covers(self, t_ms: int) -> bool:
        """Whether ``t_ms`` lies in the window."""
        return self.from_ms <= t_ms < self.to_ms


ALL_TIME: Final = Window(from_ms=0, to_ms=FOREVER)


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """A lessor's right to one asset over one window (a lease, or a transfer: all time)."""

    asset: str
    window: Window


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """An authenticated API key: its name, role, fleet (operators) and grants (lessors)."""

    name: str
    role: Role
    fleet: str | None = None
    grants: tuple[Grant, ...] = ()

    @property
    def reads_telemetry(self) -> bool:
        """Auditors read proofs only."""
        return self.role is not Role.AUDITOR

    def windows(self, asset: str, fleet: str) -> tuple[Window, ...]:
        """The periods of ``asset`` (in ``fleet``) this principal may read; empty: none."""
        if self.role is Role.OPERATOR:
            return (ALL_TIME,) if self.fleet in {None, fleet} else ()
        if self.role is Role.LESSOR:
            return tuple(g.window for g in self.grants if g.asset == asset)
        return ()

    def window_for(self, asset: str, fleet: str, wanted: Window) -> Window | None:
        """The part of ``wanted`` this principal may read: its overlap with the first
        permitted window that overlaps it (a lessor asks for one lease at a time)."""
        for window in sorted(self.windows(asset, fleet), key=lambda w: w.from_ms):
            overlap = window.clamp(wanted)
            if overlap is not None:
                return overlap
        return None

    def default_window(self, asset: str, fleet: str) -> Window | None:
        """The latest permitted window of ``asset`` (what a request without a period gets)."""
        windows = self.windows(asset, fleet)
        return max(windows, key=lambda w: w.from_ms) if windows else None


def visible_assets(principal: Principal, fleets: Sequence[tuple[str, str]]) -> list[str]:
    """The asset ids among ``(asset, fleet)`` pairs that ``principal`` may read."""
    return [asset for asset, fleet in fleets if principal.windows(asset, fleet)]
