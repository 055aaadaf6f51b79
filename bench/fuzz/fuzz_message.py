"""Coverage-guided fuzzing (atheris / libFuzzer) of the message decoder and the gateway checks.

Every input goes through ``ledger.message.decode_message``, ``verify_message`` and the
gateway's stateless checks (``gateway.verification.parse``); the only exceptions allowed are
the documented ``MessageError`` types. Anything else is a crash, which libFuzzer reports
with the input that caused it. The corpus starts from real signed messages.

    .venv/bin/python -m bench.fuzz.fuzz_message -max_total_time=60 [CORPUS_DIR]

Any libFuzzer option works (``-runs=N``, ``-max_len=N``). Needs ``pip install atheris``.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import tempfile
from pathlib import Path

import atheris  # type: ignore[import-untyped]  # atheris ships no type information

with atheris.instrument_imports():
    from gateway.verification import Incoming, Policy, Rejected, parse
    from ledger import cbor
    from ledger.message import MessageError, decode_message, verify_message
    from ledger.telemetry import TelemetryError, decode_batch

SEED = hashlib.sha256(b"voltproof fuzz device").digest()
POLICY = Policy()


def _public_key() -> bytes:
    from ledger.keys import public_key_from_seed

    return public_key_from_seed(SEED)


PUBLIC_KEY = _public_key()


def _seed_corpus(directory: Path) -> None:
    """Real signed messages (1, 3 and 10 samples) as the starting corpus."""
    from tests.support.gateway_devices import FakeDevice

    device = FakeDevice(device_id="pack-0000", seed=SEED)
    for n in (1, 3, 10):
        data = device.message(n=n)
        (directory / f"valid-{n}").write_bytes(data)


def test_one(data: bytes) -> None:
    """One input: decode, verify, schema and gateway checks; only documented errors."""
    try:
        message = decode_message(data)
    except MessageError:
        pass
    else:
        with contextlib.suppress(TelemetryError):
            decode_batch(message.payload)
    with contextlib.suppress(MessageError):
        verify_message(data, public_key=PUBLIC_KEY)
    with contextlib.suppress(cbor.DecodeError):
        cbor.decode(data)
    result = parse(
        Incoming(topic="voltproof/fleet-a/pack-0000/telemetry", payload=data, received_at_ms=0),
        POLICY,
    )
    if isinstance(result, Rejected) and not result.detail:
        raise AssertionError(f"refusal {result.reason} without a detail")


def main() -> None:
    """Run libFuzzer with the given options; seed a corpus directory when none is given."""
    argv = list(sys.argv)
    if not any(not arg.startswith("-") for arg in argv[1:]):
        corpus = Path(tempfile.mkdtemp(prefix="voltproof-fuzz-"))
        _seed_corpus(corpus)
        argv.append(str(corpus))
    atheris.Setup(argv, test_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
