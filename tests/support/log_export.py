"""Edit a ``voltproof log export`` file as a dishonest operator would (holding the gateway key)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from ledger.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint
from ledger.keys import SigningKey
from ledger.note import verify_note


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The export's JSON lines."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_lines(path: Path, lines: list[dict[str, Any]]) -> Path:
    """Write ``lines`` as an export file; return ``path``."""
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def checkpoint_lines(lines: list[dict[str, Any]]) -> list[int]:
    """Positions of the checkpoint lines."""
    return [i for i, line in enumerate(lines) if "checkpoint" in line]


def leaf_line(lines: list[dict[str, Any]], index: int) -> int:
    """Position of the line of leaf ``index``."""
    return next(i for i, line in enumerate(lines) if line.get("index") == index)


def leaf_cose(lines: list[dict[str, Any]], index: int) -> bytes:
    """The COSE bytes of leaf ``index``."""
    return base64.b64decode(lines[leaf_line(lines, index)]["cose"])


def set_leaf_cose(lines: list[dict[str, Any]], index: int, cose: bytes) -> None:
    """Replace the COSE bytes of leaf ``index``."""
    lines[leaf_line(lines, index)]["cose"] = base64.b64encode(cose).decode("ascii")


def resign(
    note: str,
    key: SigningKey,
    *,
    root: bytes | None = None,
    extensions: tuple[str, ...] | None = None,
) -> str:
    """The checkpoint ``note`` with another root or extension lines, signed by ``key``."""
    checkpoint = parse_checkpoint(verify_note(note, verifier_key=key.verifier_key))
    changed = Checkpoint(
        origin=checkpoint.origin,
        size=checkpoint.size,
        root=checkpoint.root if root is None else root,
        extensions=checkpoint.extensions if extensions is None else extensions,
    )
    return sign_checkpoint(changed, name=key.name, seed=key.seed)
