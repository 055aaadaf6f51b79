"""Who may see what (pure): roles, principals, grants and the time windows they open.

- ``operator``: every device of their fleet (or of every fleet when the key has none), all
  the time; quarantine and registry included.
- ``lessor``: only the assets under their leases, only inside each lease period (an ended
  lease stops at its end); a pack transferred to them (second-life sale) is theirs over its
  whole history until they sell it on: a sale ends the seller's access at the sale's time.
  A lessor that buys or leases is the "buyer" of the issue tracker: one role, two grants.
- ``auditor``: read-only proofs (checkpoints, consistency and inclusion proofs, leaf hashes),
  never telemetry values or message bytes.

An asset a principal may not see is answered exactly like an asset that does not exist
(404), so existence does not leak across tenants.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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


def merged(windows: Iterable[Window]) -> tuple[Window, ...]:
    """The union of ``windows`` as disjoint windows, oldest first (overlapping grants, e.g.
    a lease and a purchase of one pack, must not serve a message twice)."""
    out: list[Window] = []
    for window in sorted(windows, key=lambda w: w.from_ms):
        if out and window.from_ms <= out[-1].to_ms:
            out[-1] = Window(from_ms=out[-1].from_ms, to_ms=max(out[-1].to_ms, window.to_ms))
        else:
            out.append(window)
    return tuple(out)


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
            return merged(g.window for g in self.grants if g.asset == asset)
        return ()

    def window_for(self, asset: str, fleet: str, wanted: Window) -> Window | None:
        """The part of ``wanted`` this principal may read: its overlap with the first
        permitted window that overlaps it (a lessor asks for one lease at a time)."""
        for window in sorted(self.windows(asset, fleet), key=lambda w: w.from_ms):
            overlap = window.clamp(wanted)
            if overlap is not None:
                return overlap
        return None

    def grant_for(self, asset: str, fleet: str, wanted: Window) -> Window | None:
        """The permitted window :meth:`window_for` clips ``wanted`` to (``None``: none)."""
        for window in sorted(self.windows(asset, fleet), key=lambda w: w.from_ms):
            if window.clamp(wanted) is not None:
                return window
        return None

    def default_window(self, asset: str, fleet: str) -> Window | None:
        """The latest permitted window of ``asset`` (what a request without a period gets)."""
        windows = self.windows(asset, fleet)
        return max(windows, key=lambda w: w.from_ms) if windows else None


def lease_grant(*, asset: str, from_ms: int, to_ms: int, ended_at_ms: int | None) -> Grant | None:
    """The grant of a lease (ended early at ``ended_at_ms`` if given); ``None``: nothing left."""
    end = to_ms if ended_at_ms is None else min(to_ms, ended_at_ms)
    return Grant(asset=asset, window=Window(from_ms=from_ms, to_ms=end)) if from_ms < end else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Sale:
    """One recorded transfer of a pack: to ``owner`` at ``at_ms``."""

    pack: str
    owner: str
    at_ms: int


def ownership_grants(owner: str, sales: Sequence[Sale]) -> tuple[Grant, ...]:
    """What ``owner`` holds through ``sales`` (oldest first): each purchase opens the pack's
    history from 0, and the next sale of the pack (to anyone) closes it at that sale's time."""
    grants: list[Grant] = []
    for i, sale in enumerate(sales):
        if sale.owner != owner:
            continue
        later = [s.at_ms for s in sales[i + 1 :] if s.pack == sale.pack]
        end = later[0] if later else FOREVER
        if end > 0:
            grants.append(Grant(asset=sale.pack, window=Window(from_ms=0, to_ms=end)))
    return tuple(grants)


def current_owner(sales: Sequence[Sale]) -> str | None:
    """The pack's owner after ``sales`` (oldest first, one pack), or ``None`` (never sold)."""
    return sales[-1].owner if sales else None


def visible_assets(principal: Principal, fleets: Sequence[tuple[str, str]]) -> list[str]:
    """The asset ids among ``(asset, fleet)`` pairs that ``principal`` may read."""
    return [asset for asset, fleet in fleets if principal.windows(asset, fleet)]
