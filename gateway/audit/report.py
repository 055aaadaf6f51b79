"""What ``voltproof gateway check`` found: one :class:`Problem` per broken fact."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One stored fact that does not follow from the leaves or whose signature fails."""

    table: str
    code: str
    detail: str
    leaf_index: int | None = None
    device: str | None = None
    seq: int | None = None
    size: int | None = None
    """The tree size of a checkpoint or anchor."""

    def describe(self) -> str:
        """One line: where, the code and the detail."""
        where = [f"table {self.table}"]
        if self.leaf_index is not None:
            where.append(f"leaf {self.leaf_index}")
        if self.device is not None:
            where.append(f"device {self.device}")
        if self.seq is not None:
            where.append(f"seq {self.seq}")
        if self.size is not None:
            where.append(f"size {self.size}")
        return f"{self.code}: {', '.join(where)}: {self.detail}"

    def as_dict(self) -> dict[str, object]:
        """The problem as JSON-ready data."""
        return asdict(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckReport:
    """The outcome of one check: what was looked at and every problem found."""

    log_size: int
    counts: dict[str, int] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def codes(self) -> set[str]:
        """The distinct problem codes."""
        return {problem.code for problem in self.problems}

    def as_dict(self) -> dict[str, object]:
        """The report as JSON-ready data."""
        return {
            "ok": self.ok,
            "log_size": self.log_size,
            "checked": dict(sorted(self.counts.items())),
            "problems": [problem.as_dict() for problem in self.problems],
        }
