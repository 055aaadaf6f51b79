"""Signed-message cost against raw Ed25519 on the same bytes, measured in the same run.

A typical telemetry message: the five envelope fields plus 15 integer columns of 10 samples
each, every column an RFC 8746 typed array in its column's type (the columnar layout of
``ledger.telemetry``). The baseline signs / verifies the
already-encoded payload bytes with a ready PyNaCl key; the measured path is the whole
``sign_message`` (encode + COSE + sign) and ``verify_message`` (strict decode + checks +
verify). Ratios are baseline time / measured time (1.0 = no overhead).

    .venv/bin/python -m bench.bench_message [--number N] [--repeat R]
"""

from __future__ import annotations

import argparse
import platform
import timeit
from collections.abc import Callable
from typing import Any

import nacl.signing

from ledger import cbor, message

UINT8, UINT16, UINT32, SINT16 = 64, 69, 70, 77  # RFC 8746 tags, little endian
COLUMNS = {
    "u": UINT16,  # pack voltage, 0.1 V
    "i": SINT16,  # pack current, 0.1 A
    "soc": UINT16,  # 0.1 %
    "odo": UINT32,  # 0.1 km
    "ins": UINT16,  # insulation, kOhm
    "vmax": UINT16,
    "vmaxi": UINT16,
    "vmin": UINT16,
    "vmini": UINT16,
    "tmax": SINT16,
    "tmaxi": UINT16,
    "tmin": SINT16,
    "tmini": UINT16,
    "al": UINT8,  # alarm level
    "af": UINT32,  # alarm flags
}
SEED = bytes(range(32))


def typical_payload(samples: int = 10) -> dict[str, Any]:
    """A realistic 10-sample payload: 15 typed-array columns, envelope fields unsorted."""
    columns = {
        name: cbor.TypedArray.from_values(
            tag=tag, values=[(60 + 37 * index + 11 * sample) % 250 for sample in range(samples)]
        )
        for index, (name, tag) in enumerate(COLUMNS.items())
    }
    return {
        "v": 1,
        "dev": "bus-0042",
        "seq": 123456,
        "prev": bytes(range(32)),
        "t": 1_718_000_000_000,
        "kind": "bus",
        "dt": 1000,
        "s": columns,
    }


def best_us(call: Callable[[], object], *, number: int, repeat: int) -> float:
    """Best time per call in microseconds over ``repeat`` runs of ``number`` calls."""
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e6


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one line per measurement."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_message",
        description="Time sign_message / verify_message against raw PyNaCl on the same bytes.",
    )
    parser.add_argument("--number", type=int, default=2000, help="calls per timing run")
    parser.add_argument("--repeat", type=int, default=7, help="timing runs (the best counts)")
    parser.add_argument("--samples", type=int, default=10, help="samples per column")
    args = parser.parse_args(argv)

    payload = typical_payload(args.samples)
    signing_key = nacl.signing.SigningKey(SEED)
    verify_key = signing_key.verify_key
    public_key = bytes(verify_key)
    payload_bytes = cbor.encode(payload)
    raw_signature = signing_key.sign(payload_bytes).signature
    data = message.sign_message(payload, seed=SEED)
    assert message.verify_message(data, public_key=public_key) == payload

    def timed(call: Callable[[], object]) -> float:
        return best_us(call, number=args.number, repeat=args.repeat)

    raw_sign = timed(lambda: signing_key.sign(payload_bytes))
    ours_sign = timed(lambda: message.sign_message(payload, seed=SEED))
    raw_verify = timed(lambda: verify_key.verify(payload_bytes, raw_signature))
    ours_verify = timed(lambda: message.verify_message(data, public_key=public_key))
    encode = timed(lambda: cbor.encode(payload))
    decode = timed(lambda: cbor.decode(payload_bytes))

    print(f"python {platform.python_version()} on {platform.machine()}")
    print(f"payload {len(payload_bytes)} B, message {len(data)} B, {args.samples} samples x 15")
    print(f"cbor.encode payload     {encode:8.1f} us")
    print(f"cbor.decode payload     {decode:8.1f} us")
    print(f"raw PyNaCl sign         {raw_sign:8.1f} us")
    print(f"sign_message            {ours_sign:8.1f} us  ratio {raw_sign / ours_sign:.2f}")
    print(f"raw PyNaCl verify       {raw_verify:8.1f} us")
    print(f"verify_message          {ours_verify:8.1f} us  ratio {raw_verify / ours_verify:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
