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
            "separateCollection": [
                {
                    "header": "not declared",
                    "contentType": "text/plain",
                    "content": "not declared in the passport setting",
                }
            ],
            "wastePrevention": [
                {
                    "header": "not declared",
                    "contentType": "text/plain",
                    "content": "not declared in the passport setting",
                }
            ],
        },
        "carbonFootprint": [
            {
                "value": 0,
                "rulebook": [
                    {
                        "header": "not declared",
                        "contentType": "text/plain",
                        "content": "not declared in the passport setting",
                    }
                ],
                "lifecycle": "not declared",
                "unit": "not declared",
                "type": "Climate Change Total",
                "manufacturingPlant": [{"facility": "BPNA000000000000"}],
                "declaration": [
                    {
                        "header": "not declared",
                        "contentType": "text/plain",
                        "content": "not declared in the passport setting",
                    }
                ],
            }
        ],
        "status": "original",
    },
    "materials": {
        "active": {
            "nickel": {
                "location": "not declared",
                "recycled": 0,
                "documentation": [
                    {
                        "header": "not declared",
                        "contentType": "text/plain",
                        "content": "not declared in the passport setting",
                    }
                ],
                "critical": False,
            },
            "lithium": {
                "location": "not declared",
                "recycled": 0,
                "documentation": [
                    {
                        "header": "not declared",
                        "contentType": "text/plain",
                        "content": "not declared in the passport setting",
                    }
                ],
                "critical": False,
            },
            "cobalt": {
                "location": "not declared",
                "recycled": 0,
                "documentation": [
                    {
                        "header": "not declared",
                        "contentType": "text/plain",
                        "content": "not declared in the passport setting",
                    }
                ],
                "critical": False,
            },
            "lead": {
                "impactOfSubstances": [
                    {
                        "header": "not declared",
                        "contentType": "text/plain",
                        "content": "not declared in the passport setting",
                    }
                ],
                "critical": False,
                "documentation": [
                    {
                        "header": "not declared",
                        "contentType": "text/plain",
                        "content": "not declared in the passport setting",
                    }
                ],
                "recycled": 0,
                "location": "not declared",
                "concentration": 0,
                "materialUnit": "unit:partPerMillion",
            },
        },
        "hazardous": {
            "cadmium": {
                "impactOfSubstances": [
                    {
                        "header": "not declared",
                        "contentType": "text/plain",
                        "content": "not declared in the passport setting",
                    }
                ],
                "concentration": 0,
                "location": "not declared",
                "materialUnit": "unit:partPerMillion",
                "critical": False,
                "documentation": [
                    {
                        "header": "not declared",
                        "contentType": "text/plain",
                        "content": "not declared in the passport setting",
                    }
                ],
            },
            "mercury": {
                "impactOfSubstances": [
                    {
                        "header": "not declared",
                        "contentType": "text/plain",
                        "content": "not declared in the passport setting",
                    }
                ],
                "concentration": 0,
                "location": "not declared",
                "materialUnit": "unit:partPerMillion",
                "critical": False,
                "documentation": [
                    {
                        "header": "not declared",
                        "contentType": "text/plain",
                        "content": "not declared in the passport setting",
                    }
                ],
            },
            "lead": {
                "impactOfSubstances": [
                    {
                        "header": "not declared",
                        "contentType": "text/plain",
                        "content": "not declared in the passport setting",
                    }
                ],
                "critical": False,
                "documentation": [
                    {
                        "header": "not declared",
                        "contentType": "text/plain",
                        "content": "not declared in the passport setting",
                    }
                ],
                "recycled": 0,
                "location": "not declared",
                "concentration": 0,
                "materialUnit": "unit:partPerMillion",
            },
        },
        "composition": [
            {
                "id": [{"id": "not declared", "type": "CAS", "name": "not declared"}],
                "concentration": 0,
                "unit": "unit:partPerMillion",
                "critical": False,
                "documentation": [
                    {
                        "header": "not declared",
                        "contentType": "text/plain",
                        "content": "not declared in the passport setting",
                    }
                ],
                "recycled": 0,
                "location": "not declared",
                "renewable": 0,
            }
        ],
    },
    "conformity": {
        "declarationOfConformity": [
            {
                "header": "not declared",
                "contentType": "text/plain",
                "content": "not declared in the passport setting",
            }
        ],
        "resultOfTestReport": [
            {
                "header": "not declared",
                "contentType": "text/plain",
                "content": "not declared in the passport setting",
            }
        ],
        "thirdPartyAssurance": [
            {
                "header": "not declared",
                "contentType": "text/plain",
                "content": "not declared in the passport setting",
            }
        ],
        "dueDiligencePolicy": [
            {
                "header": "not declared",
                "contentType": "text/plain",
                "content": "not declared in the passport setting",
            }
        ],
    },
    "safety": {
        "usableExtinguishAgent": [{"media": "not declared", "fireClass": "not declared"}],
        "safetyMeasures": [
            {
                "header": "not declared",
                "contentType": "text/plain",
                "content": "not declared in the passport setting",
            }
        ],
        "meaningOfLabels": [
            {
                "header": "not declared",
                "contentType": "text/plain",
                "content": "not declared in the passport setting",
            }
        ],
        "dismantling": [
            {
                "header": "not declared",
                "contentType": "text/plain",
                "content": "not declared in the passport setting",
            }
        ],
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
                "report": [
                    {
                        "header": "not declared",
                        "contentType": "text/plain",
                        "content": "not declared in the passport setting",
                    }
                ],
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
