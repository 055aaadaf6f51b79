"""The condition report: state of health, usage, abuse and completeness of one asset.

Computed from verified message payloads alone (``compute_report``), so a lessor can redo
every headline number from an evidence bundle; ``to_json`` is deterministic.
"""

from .compute import compute_report
from .model import (
    REPORT_FORMAT,
    ConditionReport,
    DeviceCompleteness,
    Figure,
    PackStint,
    PackSwap,
    ReportParams,
    SocBin,
)

__all__ = [
    "REPORT_FORMAT",
    "ConditionReport",
    "DeviceCompleteness",
    "Figure",
    "PackStint",
    "PackSwap",
    "ReportParams",
    "SocBin",
    "compute_report",
]
