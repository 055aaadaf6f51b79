"""Test vectors of the device index tree, from its definition alone (no ``ledger`` import).

The tree, its keys and its proofs are re-implemented here straight from ``docs/protocol.md``
("The device index"): a recursive root over the whole entry set and a recursive path walk
for proofs, with nothing shared with :mod:`ledger.merkle.index_tree` (incremental, cached).
``tests/unit/test_index_vectors.py`` checks that the two agree on every vector and that the
ledger verifier refuses every corruption with the class this reference names.

Regenerate (the file is committed; the test checks it is what this module writes)::

    python -m tests.support.index_vectors
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tests.support.paths import DATA

VECTORS_FILE: Final = DATA / "index_tree" / "index_proofs.json"
BITS: Final = 256
EMPTY: Final = bytes(32)
ROOT_MISMATCH: Final = "RootMismatchError"
MALFORMED: Final = "IndexProofError"
ENTRIES_CORRUPTED: Final = 2
"""Per tree, the entry proofs whose corruptions are listed (every absence proof's are)."""


def device_key(device: str) -> bytes:
    """``SHA-256("voltproof/device-index/v1" ‖ 0x0A ‖ UTF-8 id)``."""
    return hashlib.sha256(b"voltproof/device-index/v1\n" + device.encode("utf-8")).digest()


def leaf_hash(key: bytes, value_hash: bytes) -> bytes:
    """A subtree holding one entry."""
    return hashlib.sha256(b"\x00" + key + value_hash).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """A subtree holding two or more entries."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def bit(key: bytes, depth: int) -> int:
    """Bit ``depth`` of ``key`` (bit 0: the most significant bit of ``key[0]``)."""
    return (key[depth // 8] >> (7 - depth % 8)) & 1


def root(entries: dict[bytes, bytes], depth: int = 0) -> bytes:
    """The hash of the subtree at ``depth`` holding ``entries`` (all share the path so far)."""
    if not entries:
        return EMPTY
    if len(entries) == 1:
        ((key, value),) = entries.items()
        return leaf_hash(key, value)
    left = {k: v for k, v in entries.items() if not bit(k, depth)}
    right = {k: v for k, v in entries.items() if bit(k, depth)}
    return node_hash(root(left, depth + 1), root(right, depth + 1))


@dataclass(frozen=True, slots=True, kw_only=True)
class Proof:
    """Siblings from the root down, and the leaf an absence path ends at (if any)."""

    siblings: tuple[bytes, ...]
    other_key: bytes | None = None
    other_value_hash: bytes | None = None


def prove(entries: dict[bytes, bytes], key: bytes) -> Proof:
    """Walk ``key``'s path down while the subtree holds two or more entries."""
    siblings: list[bytes] = []
    here, depth = dict(entries), 0
    while len(here) >= 2:
        side = {k: v for k, v in here.items() if bit(k, depth) == bit(key, depth)}
        other = {k: v for k, v in here.items() if bit(k, depth) != bit(key, depth)}
        siblings.append(root(other, depth + 1))
        here, depth = side, depth + 1
    if len(here) == 1 and key not in here:
        ((other_key, other_value),) = here.items()
        return Proof(siblings=tuple(siblings), other_key=other_key, other_value_hash=other_value)
    return Proof(siblings=tuple(siblings))


def _climb(key: bytes, start: bytes, siblings: tuple[bytes, ...]) -> bytes:
    node = start
    for depth in range(len(siblings) - 1, -1, -1):
        pair = (siblings[depth], node) if bit(key, depth) else (node, siblings[depth])
        node = node_hash(*pair)
    return node


def check(*, tree_root: bytes, key: bytes, value_hash: bytes | None, proof: Proof) -> str | None:
    """``None`` if the proof holds, else the error class a verifier must raise.

    ``value_hash`` given: an entry proof; ``None``: an absence proof.
    """
    if len(proof.siblings) > BITS:
        return MALFORMED
    if value_hash is not None:
        if proof.other_key is not None:
            return MALFORMED
        start = leaf_hash(key, value_hash)
    elif proof.other_key is None:
        start = EMPTY
    else:
        assert proof.other_value_hash is not None
        if proof.other_key == key:
            return MALFORMED
        if any(bit(key, d) != bit(proof.other_key, d) for d in range(len(proof.siblings))):
            return MALFORMED
        start = leaf_hash(proof.other_key, proof.other_value_hash)
    return None if _climb(key, start, proof.siblings) == tree_root else ROOT_MISMATCH


def _flip(value: bytes, at: int = 0) -> bytes:
    """``value`` with bit ``at`` flipped (bit 0: the most significant of the first byte)."""
    data = bytearray(value)
    data[at // 8] ^= 0x80 >> (at % 8)
    return bytes(data)


def _corruptions(proof: Proof, key: bytes, value_hash: bytes | None) -> list[tuple[str, Any]]:
    """Systematic changes: each sibling (at most first, middle, last of a long proof) flipped,
    siblings removed and added, the other leaf changed, dropped or added, the key swapped."""
    siblings = proof.siblings
    depths = range(len(siblings)) if len(siblings) <= 8 else sorted(
        {0, len(siblings) // 2, len(siblings) - 1})  # fmt: skip
    found: list[tuple[str, Any]] = [
        (f"sibling {d} flipped",
         Proof(siblings=(*siblings[:d], _flip(siblings[d], 255), *siblings[d + 1 :]),
               other_key=proof.other_key, other_value_hash=proof.other_value_hash))
        for d in depths
    ]  # fmt: skip
    found.append(("empty sibling added", Proof(
        siblings=(*siblings, EMPTY), other_key=proof.other_key,
        other_value_hash=proof.other_value_hash)))  # fmt: skip
    if siblings:
        for what, kept in (("first", siblings[1:]), ("last", siblings[:-1])):
            found.append((f"{what} sibling removed", Proof(
                siblings=kept, other_key=proof.other_key,
                other_value_hash=proof.other_value_hash)))  # fmt: skip
    if proof.other_key is not None and proof.other_value_hash is not None:
        found += [
            (f"other key bit {b} flipped",
             Proof(siblings=siblings, other_key=_flip(proof.other_key, b),
                   other_value_hash=proof.other_value_hash))
            for b in (0, len(siblings), 255) if b < BITS
        ]  # fmt: skip
        found.append(("other value hash flipped", Proof(
            siblings=siblings, other_key=proof.other_key,
            other_value_hash=_flip(proof.other_value_hash))))  # fmt: skip
        found.append(("other leaf dropped", Proof(siblings=siblings)))
        found.append(("absence claimed for the other key", ("key", proof.other_key)))
    else:
        found.append(("a leaf claimed at the path's end", Proof(
            siblings=siblings, other_key=_flip(key, 255), other_value_hash=EMPTY)))  # fmt: skip
    if value_hash is not None:
        found.append(("value hash flipped", ("value", _flip(value_hash))))
        found.append(("entry proof read as absence", ("value", None)))
    found.append(("root flipped", ("root", None)))
    return found


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _vector(
    tree: str, tree_root: bytes, key: bytes, value_hash: bytes | None, *, proof: Proof, note: str
) -> dict[str, Any]:
    error = check(tree_root=tree_root, key=key, value_hash=value_hash, proof=proof)
    return {
        "tree": tree, "note": note, "root": tree_root.hex(), "key": key.hex(),
        "kind": "entry" if value_hash is not None else "absence",
        "value_hash": _hex(value_hash), "siblings": [s.hex() for s in proof.siblings],
        "other_key": _hex(proof.other_key), "other_value_hash": _hex(proof.other_value_hash),
        "error": error,
    }  # fmt: skip


def _value(name: str) -> bytes:
    return hashlib.sha256(b"value:" + name.encode()).digest()


def _trees() -> dict[str, tuple[dict[bytes, bytes], list[tuple[str, bytes]]]]:
    """Named entry sets and, for each, the absent keys probed (name, key)."""
    fleet = [f"bus-{n:04d}" for n in range(1, 9)] + [f"pack-{n:04d}" for n in range(1, 9)]
    deep_a = bytes(32)
    deep_b = bytes(4) + b"\x01" + bytes(27)  # shares 39 bits with deep_a
    deep_absent = bytes(4) + b"\x02" + bytes(27)  # leaves their path at bit 38: empty
    return {
        "empty": ({}, [("bus-9999", device_key("bus-9999"))]),
        "one": (
            {device_key("bus-0001"): _value("bus-0001")},
            [("bus-9999", device_key("bus-9999"))],
        ),
        "fleet": (
            {device_key(d): _value(d) for d in fleet},
            [(d, device_key(d)) for d in ("bus-9999", "pack-9999", "bus-7777", "ghost")],
        ),
        "deep": (
            {deep_a: _value("a"), deep_b: _value("b"), b"\x80" + bytes(31): _value("high")},
            [
                ("deep-absent", deep_absent),
                ("low-empty", b"\x40" + bytes(31)),
                ("at-high", b"\xc0" + bytes(31)),
            ],
        ),
    }


def generate() -> dict[str, Any]:
    """The whole vector document."""
    vectors: list[dict[str, Any]] = []
    trees: list[dict[str, Any]] = []
    for name, (entries, absent) in _trees().items():
        tree_root = root(entries)
        listed = [[k.hex(), v.hex()] for k, v in sorted(entries.items())]
        trees.append({"name": name, "root": tree_root.hex(), "entries": listed})
        probes: list[tuple[str, bytes, bytes | None]] = [
            (f"entry {k.hex()[:8]}", k, v) for k, v in sorted(entries.items())
        ]
        probes += [(f"absent {label}", key, None) for label, key in absent]
        for n, (note, key, value_hash) in enumerate(probes):
            proof = prove(entries, key)
            vectors.append(_vector(name, tree_root, key, value_hash, proof=proof, note=note))
            if value_hash is not None and n >= ENTRIES_CORRUPTED:
                continue  # every entry proven; the corruptions of a few suffice
            for what, change in _corruptions(proof, key, value_hash):
                probe_key, probe_value, probe_root, probe = key, value_hash, tree_root, proof
                if isinstance(change, Proof):
                    probe = change
                elif change[0] == "key":
                    probe_key = change[1]
                elif change[0] == "value":
                    probe_value = change[1]
                else:
                    probe_root = _flip(tree_root, 255)
                vectors.append(_vector(name, probe_root, probe_key, probe_value, proof=probe,
                                       note=f"{note}: {what}"))  # fmt: skip
    return {
        "source": (
            "voltproof device index tree (docs/protocol.md, 'The device index'); generated by "
            "tests/support/index_vectors.py from the definition, independently of "
            "ledger.merkle.index_tree"
        ),
        "trees": trees,
        "vectors": vectors,
    }


def render() -> str:
    """The file's text (sorted keys, one space indent, final newline)."""
    return json.dumps(generate(), sort_keys=True, indent=1) + "\n"


def main() -> None:
    """Write the vector file."""
    path = Path(VECTORS_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(), encoding="utf-8")


if __name__ == "__main__":
    main()
