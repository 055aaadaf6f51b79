"""Faults that a test or the fleet simulator can inject into a pack."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class InternalShort:
    """A soft internal short in one series element (1-based), through ``resistance_ohm``.

    The short drains the element and heats it; with the default resistance the element
    reaches the thermal-event threshold in about 20 minutes.
    """

    element: int
    resistance_ohm: float = 0.02


@dataclass(frozen=True, slots=True, kw_only=True)
class InsulationFault:
    """A leak from the HV bus to chassis of ``resistance_ohm``."""

    resistance_ohm: float = 40_000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CoolingFailure:
    """The pack chiller stops working."""


Fault = InternalShort | InsulationFault | CoolingFailure
