"""Poison messages: validly signed by a device key, built to break whatever reads them.

An attacker holding one device key is not bound by ``ledger.message.sign_message`` (which
refuses out-of-range fields): :func:`sign_raw` signs any payload the way an independent COSE
encoder would. :func:`poisons` lists each poison with the outcome the gateway must give it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import nacl.bindings

from ledger import cbor
from ledger.cbor import TypedArray
from ledger.keys import public_key_from_seed
from ledger.telemetry import FIELDS, MAX_EVENTS, MAX_SAMPLES, U32
from tests.support.gateway_devices import FakeDevice

TEN_YEARS_MS = 10 * 365 * 86_400_000
_PROTECTED = cbor.encode({1: -8})


def sign_raw(payload: dict[str, object], *, seed: bytes) -> bytes:
    """COSE_Sign1 over ``payload`` with no validation (what an attacker's encoder does)."""
    body = cbor.encode(payload)
    to_sign = cbor.encode(["Signature1", _PROTECTED, b"", body])
    secret = nacl.bindings.crypto_sign_seed_keypair(seed)[1]
    signature = nacl.bindings.crypto_sign(to_sign, secret)[:64]
    assert public_key_from_seed(seed)
    kid = str(payload["dev"]).encode()
    return cbor.encode(cbor.Tag(number=18, value=[_PROTECTED, {4: kid}, body, signature]))


@dataclass(frozen=True, slots=True, kw_only=True)
class Poison:
    """One poison: its bytes, whether it carries the historical user property, the verdict."""

    name: str
    data: bytes
    expect: str
    """A quarantine reason, or ``accepted`` / ``seq_jump`` (accepted with an alarm)."""
    historical: bool = False


def _maximal(device: FakeDevice, *, now_ms: int) -> dict[str, object]:
    """The largest payload the schema allows: 600 samples, every column at its bound, 64
    events with 32-bit values."""
    payload = device.payload(t_ms=now_ms - MAX_SAMPLES * 100, n=1)
    columns = {}
    for spec in FIELDS[device.kind]:
        values = [spec.hi if k % 2 else spec.lo for k in range(MAX_SAMPLES)]
        columns[spec.key] = TypedArray.from_values(tag=spec.element.tag, values=values)
    payload["s"] = columns
    payload["dt"] = 100
    payload["ev"] = [
        {"k": "drop", "at": k % MAX_SAMPLES, "first": U32, "last": U32, "n": U32, "total": U32}
        for k in range(MAX_EVENTS)
    ]
    return payload


def poisons(attacker: FakeDevice, *, now_ms: int) -> list[Poison]:
    """Every poison, in publishing order, signed by ``attacker`` (whose chain advances)."""
    found: list[Poison] = []

    def add(name: str, payload: dict[str, object], expect: str, **kw: bool) -> None:
        found.append(
            Poison(name=name, data=sign_raw(payload, seed=attacker.seed), expect=expect, **kw)
        )

    def at(seq: int, **changes: object) -> dict[str, object]:
        payload = attacker.payload(t_ms=now_ms)
        payload.update(seq=seq, prev=hashlib.sha256(b"%d" % seq).digest(), **changes)
        return payload

    for seq in (2**63, 2**64 - 1):
        add(f"seq {seq}", at(seq), "out_of_range")
    add("t 2**64 - 1", at(5, t=2**64 - 1), "out_of_range")
    add("seq -1", at(-1), "malformed")
    add("t NaN", at(5, t=math.nan), "malformed")
    add("t inf", at(5, t=math.inf), "malformed")
    nan_column = at(5)
    samples = dict(nan_column["s"])  # type: ignore[call-overload]
    samples["u"] = [math.nan] * 10
    nan_column["s"] = samples
    add("NaN column", nan_column, "bad_payload")
    add("inf event value", at(5, ev=[{"k": "charge", "at": 0, "mode": math.inf}]), "bad_payload")
    add(
        "event value 2**64 - 1",
        at(5, ev=[{"k": "charge", "at": 0, "mode": 2**64 - 1}]),
        "bad_payload",
    )
    add(
        "event text of 10,000 characters",
        at(5, ev=[{"k": "recal", "at": 0, "from": 1, "to": 2, "why": "x" * 10_000}]),
        "bad_payload",
    )
    too_many = _maximal(attacker, now_ms=now_ms)
    too_many["ev"] = too_many["ev"] * 2  # type: ignore[operator]
    too_many.update(seq=5, prev=hashlib.sha256(b"5").digest())
    add("65 events", too_many, "bad_payload")
    add(
        "ten years before enrolment, marked historical",
        at(5, t=now_ms - TEN_YEARS_MS),
        "stale_timestamp",
        historical=True,
    )
    add("a day in the future", at(5, t=now_ms + 86_400_000), "future_timestamp")
    # accepted: the attacker's chain is its own; the gap is one range, the jump an alarm
    first = attacker.message(t_ms=now_ms - 60_000)
    found.append(Poison(name="seq 0", data=first, expect="accepted"))
    maximal = _maximal(attacker, now_ms=now_ms)
    maximal.update(seq=attacker.seq, prev=attacker.prev)
    add("maximal message (600 samples, 64 events, every int at its bound)", maximal, "accepted")
    add("jump of 1,000,000", at(1 + 1_000_000), "seq_jump")
    add("seq 2**63 - 1", at(2**63 - 1), "seq_jump")
    return found
