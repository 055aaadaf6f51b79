"""The compiled ``AnchorRegistry`` contract (ABI and bytecode) and its deployment.

``AnchorRegistry.json`` beside this module is produced by ``node contracts/compile.mjs`` from
``contracts/AnchorRegistry.sol`` (solc-js pinned in package-lock.json, EVM version paris,
optimizer on); a test recompiles it and checks that the bytes are identical.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, cast

ARTIFACT_NAME = "AnchorRegistry.json"


def _load() -> dict[str, Any]:
    text = resources.files(__package__).joinpath(ARTIFACT_NAME).read_text(encoding="utf-8")
    return cast("dict[str, Any]", json.loads(text))


ARTIFACT = _load()
REGISTRY_ABI: list[dict[str, Any]] = ARTIFACT["abi"]
REGISTRY_BYTECODE: str = ARTIFACT["bytecode"]
REGISTRY_DEPLOYED_BYTECODE: str = ARTIFACT["deployedBytecode"]
