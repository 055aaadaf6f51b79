"""Battery-pack and e-bus physics for the fleet simulator (pure: time and seeds come in).

Modules: ``ocv`` (LFP OCV curve), ``cell`` (2RC parameters), ``thermal``, ``ageing``
(calendar + cycle fade), ``pack`` (192S2P pack with cell spread), ``bms`` (estimates, alarms,
events), ``alarms`` (GB/T 32960 levels and flags), ``insulation``, ``faults``, ``cycle``
(SORT duty cycles), ``route``, ``climate``, ``bus`` (vehicle model and plan), ``charging``,
``source`` (sample sources for edge agents). See docs/simulation.md.
"""

from .faults import CoolingFailure, InsulationFault, InternalShort
from .pack import Pack, PackConfig, PackState
from .source import BusSource, PackSource, PackUnit, SampleSource, Vehicle, build_vehicle

__all__ = [
    "BusSource",
    "CoolingFailure",
    "InsulationFault",
    "InternalShort",
    "Pack",
    "PackConfig",
    "PackSource",
    "PackState",
    "PackUnit",
    "SampleSource",
    "Vehicle",
    "build_vehicle",
]
