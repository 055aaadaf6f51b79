"""The static sections of a Tractus-X ``battery_pass`` 6.1.0 passport, every value undeclared.

The model requires every section (identification, operation, materials, conformity, rated
performance, ...) and a value of its type in each required field: there is no null. A
passport setting that leaves a field out gets the placeholder here: ``"not declared"`` for
text, ``0`` for numbers, a ``"not declared"`` document for document lists, and the
smallest value the field's pattern or enumeration admits otherwise. ``ledger.batterypass``
names every placeholder it used in the passport's
``performance.dynamic.performanceDocument`` ("undeclared values"), so a reader never takes a
placeholder for a declaration or a measurement. It holds exactly the fields the 6.1.0 schema
requires (``tests/unit/test_batterypass_schema.py`` checks that this template alone, with a
dynamic block, validates).
"""

from __future__ import annotations

from typing import Any, Final


def _document() -> list[dict[str, str]]:
    """A document list holding one "not declared" document (a fresh list each time)."""
    return [
        {
            "header": "not declared",
            "contentType": "text/plain",
            "content": "not declared in the passport setting",
        }
    ]


def _active_material() -> dict[str, Any]:
    """An active material (nickel, lithium, cobalt) with nothing declared."""
    return {
        "location": "not declared",
        "recycled": 0,
        "documentation": _document(),
        "critical": False,
    }


def _substance(*, recycled: bool = False) -> dict[str, Any]:
    """A substance with an impact and a concentration (lead, cadmium, mercury), undeclared;
    ``recycled``: the model also requires a recycled share (lead)."""
    found: dict[str, Any] = {
        "impactOfSubstances": _document(),
        "concentration": 0,
        "location": "not declared",
        "materialUnit": "unit:partPerMillion",
        "critical": False,
        "documentation": _document(),
    }
    if recycled:
        found["recycled"] = 0
    return found


UNDECLARED: Final[dict[str, Any]] = {
    "identification": {
        "category": "EV",
        "idDmc": "not declared",
        "chemistry": "not declared",
        "identification": {
            "type": {"manufacturerPartId": "not declared", "nameAtManufacturer": "not declared"},
            "codes": [{"key": "not declared", "value": "not declared"}],
            "dataCarrier": {"carrierType": "not declared", "carrierLayout": "not declared"},
            "classification": [
                {"classificationStandard": "not declared", "classificationID": "not declared"}
            ],
        },
    },
    "operation": {
        "manufacturer": {
            "facility": [{"facility": "BPNA000000000000"}],
            "manufacturer": "BPNL000000000000",
        }
    },
    "characteristics": {
        "warranty": {"lifeValue": 0, "lifeUnit": "unit:day"},
        "physicalDimension": {"weight": {"value": 0, "unit": "unit:gram"}},
    },
    "sustainability": {
        "documents": {
            "separateCollection": _document(),
            "wastePrevention": _document(),
        },
        "carbonFootprint": [
            {
                "value": 0,
                "rulebook": _document(),
                "lifecycle": "not declared",
                "unit": "not declared",
                "type": "Climate Change Total",
                "manufacturingPlant": [{"facility": "BPNA000000000000"}],
                "declaration": _document(),
            }
        ],
        "status": "original",
    },
    "materials": {
        "active": {
            "nickel": _active_material(),
            "lithium": _active_material(),
            "cobalt": _active_material(),
            "lead": _substance(recycled=True),
        },
        "hazardous": {
            "cadmium": _substance(),
            "mercury": _substance(),
            "lead": _substance(recycled=True),
        },
        "composition": [
            {
                "id": [{"id": "not declared", "type": "CAS", "name": "not declared"}],
                "concentration": 0,
                "unit": "unit:partPerMillion",
                "critical": False,
                "documentation": _document(),
                "recycled": 0,
                "location": "not declared",
                "renewable": 0,
            }
        ],
    },
    "conformity": {
        "declarationOfConformity": _document(),
        "resultOfTestReport": _document(),
        "thirdPartyAssurance": _document(),
        "dueDiligencePolicy": _document(),
    },
    "safety": {
        "usableExtinguishAgent": [{"media": "not declared", "fireClass": "not declared"}],
        "safetyMeasures": _document(),
        "meaningOfLabels": _document(),
        "dismantling": _document(),
    },
    "metadata": {
        "version": "not declared",
        "expirationDate": "9999-12-31",
        "issueDate": "1970-01-01",
        "economicOperatorId": "BPNL000000000000",
        "passportIdentifier": "urn:uuid:00000000-0000-4000-8000-000000000000",
        "predecessor": "urn:uuid:00000000-0000-4000-8000-000000000000",
        "backupReference": "not declared",
    },
    "commercial": {"purpose": ["not declared"]},
    "handling": {
        "content": {
            "producer": [{"id": "BPNL000000000000"}],
            "sparePart": [
                {"manufacturerPartId": "not declared", "nameAtManufacturer": "not declared"}
            ],
        },
        "applicable": False,
    },
    "performance": {
        "rated": {
            "voltage": {"min": 0, "max": 0, "nominal": 0},
            "roundTripEfficiency": {"depthOfDischarge": 0, "initial": 0, "50PercentLife": 0},
            "resistance": {"cell": 0, "pack": 0},
            "power": {"value": 0, "at20SoC": 0, "at80SoC": 0},
            "capacity": {"value": 0, "thresholdExhaustion": 0},
            "temperature": {"lower": 0, "upper": 0},
            "selfDischargingRate": 0,
            "lifetime": {
                "expectedYears": 0,
                "report": _document(),
                "cycleLifeTesting": {
                    "temperature": 0,
                    "cycles": 0,
                    "depthOfDischarge": 0,
                    "appliedChargeRate": 0,
                    "appliedDischargeRate": 0,
                },
            },
        }
    },
}
