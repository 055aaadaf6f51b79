"""What a simulator run did: counts for the terminal and for tests (JSON)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from .attacks import EXPECTED_REJECTION


@dataclass(slots=True, kw_only=True)
class Summary:
    """Counters of one run; ``attacks`` counts injected messages per attack kind."""

    fleet: str
    devices: int
    elapsed_s: float = 0.0
    committed: int = 0
    published: int = 0
    acked: int = 0
    receipts_checked: bool = False
    """Whether the agents took the gateway's signed receipts (``sim --gateway-key``)."""
    logged: int = 0
    """Messages a receipt signed by the gateway covered: in its log, not just at the broker."""
    receipts_refused: int = 0
    historical: int = 0
    buffered: int = 0
    dropped: int = 0
    reconnects: int = 0
    link_failures: int = 0
    ticks: int = 0
    max_tick_lag_ms: float = 0.0
    faults: Counter[str] = field(default_factory=Counter)
    attacks: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data, with the rejection each attack kind expects."""
        data = asdict(self)
        data["faults"] = dict(self.faults)
        data["attacks"] = dict(self.attacks)
        data["expected_rejections"] = {k: EXPECTED_REJECTION[k] for k in self.attacks}
        return data

    def to_json(self) -> str:
        """The summary as one JSON document."""
        return json.dumps(self.as_dict(), indent=1, sort_keys=True)

    def progress_line(self) -> str:
        """One short line for periodic progress."""
        return (
            f"[{self.elapsed_s:7.1f} s] devices {self.devices}  committed {self.committed}  "
            f"broker-acked {self.acked}  buffered {self.buffered}  historical {self.historical}  "
            f"max tick lag {self.max_tick_lag_ms:.0f} ms"
        )

    def render(self) -> str:
        """The final summary for the terminal."""
        lines = [
            f"fleet {self.fleet}: {self.devices} devices for {self.elapsed_s:.1f} s",
            f"  messages committed {self.committed}, published {self.published} "
            f"(historical {self.historical}), acknowledged by the broker {self.acked}",
            *self._gateway_lines(),
            f"  buffered {self.buffered}, dropped {self.dropped}, "
            f"connects {self.reconnects}, link failures {self.link_failures}",
            f"  ticks {self.ticks}, max tick lag {self.max_tick_lag_ms:.0f} ms",
            "  faults injected: " + (_counts(self.faults) or "none"),
            "  attacks injected: " + (_counts(self.attacks) or "none"),
        ]
        return "\n".join(lines)

    def _gateway_lines(self) -> list[str]:
        """What the gateway made of the messages, as far as this run can know it."""
        if not self.receipts_checked:
            return [
                "  (the broker's PUBACK, not the gateway's verdict: run with --gateway-key to "
                "count what the gateway logged, or see its log and 'voltproof gateway check')"
            ]
        refused = f", receipts refused {self.receipts_refused}" if self.receipts_refused else ""
        lines = [f"  logged by the gateway (its signed receipts) {self.logged}{refused}"]
        if self.published and not self.logged:
            lines.append(
                "  NO message was logged by the gateway: is every device enrolled, in a fleet "
                "the gateway serves, and the gateway running? (its log names what it refused)"
            )
        return lines


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items()))
