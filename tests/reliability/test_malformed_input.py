"""Malformed input never crashes a decoder or the gateway: it is refused with a reason.

Hypothesis feeds arbitrary bytes and mutated valid messages (bit flips, cuts, insertions,
deletions, repeats) to the message decoder and verifier, the CBOR decoder, the telemetry
schema, the gateway's stateless checks and the whole pipeline on a real SQLite store. The
only exceptions allowed are the documented error types; every refusal carries a message.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.pipeline import OutcomeKind, Pipeline
from gateway.registry import Registry
from gateway.store import SqliteStore
from gateway.verification import Incoming, Parsed, Policy, Rejected, parse
from ledger import cbor
from ledger.keys import create_key_file, load_key_file
from ledger.message import MessageError, SignedMessage, decode_message, verify_message
from ledger.telemetry import TelemetryBatch, TelemetryError, decode_batch
from tests.support.gateway_devices import T0_MS, FakeDevice
from tests.support.strategies import cbor_values, mutated

pytestmark = pytest.mark.integration

DEVICE = FakeDevice(device_id="pack-0000", fleet="fleet-a")
VALID = [DEVICE.message(n=n) for n in (1, 3, 10)]
TOPIC = DEVICE.topic
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

T = TypeVar("T")


def attempt(call: Callable[[], T], errors: type[Exception]) -> T | Exception:
    """The result of ``call``, or the exception of type ``errors`` it raised (others escape)."""
    try:
        return call()
    except errors as exc:
        return exc


any_message = st.one_of(
    st.binary(max_size=400),
    st.sampled_from(VALID).flatmap(mutated),
)


@FUZZ
@given(any_message)
def test_decode_message_only_raises_message_errors(data: bytes) -> None:
    """decode_message returns a message or raises a MessageError with a message."""
    result = attempt(lambda: decode_message(data), MessageError)
    assert isinstance(result, SignedMessage) or str(result)


@FUZZ
@given(any_message)
def test_verify_message_refuses_every_change(data: bytes) -> None:
    """verify_message accepts only the exact signed bytes; anything else is a MessageError."""
    result = attempt(lambda: verify_message(data, public_key=DEVICE.public_key), MessageError)
    if isinstance(result, Exception):
        assert str(result)
    else:
        assert data in VALID
        assert result["dev"] == DEVICE.device_id


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.sampled_from(VALID).flatmap(mutated)))
def test_cbor_decode_only_raises_decode_errors(data: bytes) -> None:
    """ledger.cbor.decode returns a value or raises a cbor.DecodeError naming the problem."""
    result = attempt(lambda: cbor.decode(data), cbor.DecodeError)
    assert not isinstance(result, cbor.DecodeError) or str(result)


def _valid_payload() -> dict[str, Any]:
    return dict(decode_message(VALID[1]).payload)


@st.composite
def telemetry_payloads_mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A valid telemetry payload with keys deleted, replaced or added."""
    payload = _valid_payload()
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(payload)) | st.text(max_size=4))
        if draw(st.booleans()) and key in payload:
            del payload[key]
        else:
            payload[key] = draw(cbor_values(max_leaves=6))
    return payload


@FUZZ
@given(
    st.one_of(
        telemetry_payloads_mutated(),
        st.dictionaries(st.text(max_size=4), cbor_values(max_leaves=6), max_size=8),
    )
)
def test_decode_batch_only_raises_telemetry_errors(payload: dict[str, Any]) -> None:
    """decode_batch returns a batch or raises a TelemetryError with a message."""
    result = attempt(lambda: decode_batch(payload), TelemetryError)
    assert isinstance(result, TelemetryBatch) or str(result)


topics = st.one_of(
    st.just(TOPIC),
    st.text(max_size=40),
    st.builds("voltproof/{}/{}/telemetry".format, st.text(max_size=8), st.text(max_size=8)),
)


@FUZZ
@given(any_message, topics)
def test_gateway_parse_refuses_with_a_reason(data: bytes, topic: str) -> None:
    """The gateway's stateless checks never raise: a Parsed message or a reason and detail."""
    result = parse(Incoming(topic=topic, payload=data, received_at_ms=T0_MS), Policy())
    if isinstance(result, Rejected):
        assert result.detail
    else:
        assert isinstance(result, Parsed)
        assert result.device_id == result.message.kid


async def _open_store(workdir: Path) -> SqliteStore:
    store = await SqliteStore.open(workdir / "gateway.db")
    create_key_file(workdir / "operator.key", name="operator.test")
    registry = Registry(store=store, operator=load_key_file(workdir / "operator.key"))
    await registry.enroll([DEVICE.spec()])
    return store


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(any_message, topics), min_size=1, max_size=12))
def test_pipeline_gives_every_input_an_outcome(batch: list[tuple[bytes, str]]) -> None:
    """Pipeline.process on a real store: each input is accepted, a duplicate, or quarantined."""

    async def scenario(workdir: Path) -> None:
        store = await _open_store(workdir)
        try:
            incoming = [
                Incoming(topic=topic, payload=data, received_at_ms=T0_MS + 10**6, historical=True)
                for data, topic in batch
            ]
            outcomes = await Pipeline(store=store).process(incoming)
            assert len(outcomes) == len(batch)
            for (data, topic), outcome in zip(batch, outcomes, strict=True):
                if outcome.kind is OutcomeKind.QUARANTINED:
                    assert outcome.reason is not None
                    assert outcome.detail
                else:
                    assert data in VALID
                    assert topic == TOPIC
            quarantined = sum(o.kind is OutcomeKind.QUARANTINED for o in outcomes)
            assert sum(c.total for c in await store.quarantine_counts()) == quarantined
        finally:
            await store.close()

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(scenario(Path(tmp)))
