"""The gateway's side of witnessing and the timeliness computation, against bare crypto.

    PYTHONPATH=. python bench/bench_witness_client.py [--checkpoints N] [--leaves L]

Baseline: one Ed25519 verify (PyNaCl) of a cosignature per checkpoint, nothing else. Then
per checkpoint: ``check_answer`` (find the line, verify it, check its time); a whole
``WitnessClient.attempt`` against a real witness process (``voltproof witness``:
HTTP, consistency proof, the witness's fsync'd compare-and-swap), one checkpoint at a time;
and ``proof_times`` over N cosigned checkpoints each with a consistency proof. Last,
``chain_delays`` over L messages and N proven times. Prints rates and ratios; asserts
nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import tempfile
import time
from pathlib import Path

import httpx
import nacl.bindings

from gateway.config import WitnessEndpoint
from gateway.store import CheckpointRecord, CosignatureRecord
from gateway.witnessing import WitnessClient, check_answer
from ledger.checkpoint import Checkpoint
from ledger.cosignature import (
    add_cosignature,
    cosigned_message,
    parse_witness_key,
    witness_verifier_key,
)
from ledger.keys import public_key_from_seed
from ledger.timeliness import (
    CosignedCheckpoint,
    MessageTime,
    ProofTime,
    Timeline,
    chain_delays,
    proof_times,
)
from tests.support.witness_process import WitnessProcess
from tests.support.witness_world import LOG_KEY, ORIGIN, WITNESS_NAME, WITNESS_SEED, Log

NOW = 1_780_000_000


class _LogStore:
    """The four store methods the client uses, over an in-memory log (no SQLite here)."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.cosignatures: dict[int, CosignatureRecord] = {}

    async def latest_cosigned(self, witness: str) -> CosignatureRecord | None:
        return self.cosignatures[max(self.cosignatures)] if self.cosignatures else None

    async def latest_checkpoint(self) -> CheckpointRecord | None:
        return None

    async def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        return self.log.tree.consistency_proof(size1=size1, size2=size2)

    async def add_cosignature(self, record: CosignatureRecord) -> bool:
        self.cosignatures[record.size] = record
        return True


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def baseline(notes: list[str], lines: list[str]) -> float:
    """Checkpoints/s of one bare Ed25519 verify of a cosignature."""
    public = public_key_from_seed(WITNESS_SEED)
    start = time.perf_counter()
    for note, line in zip(notes, lines, strict=True):
        body = note.split("\n\n", 1)[0] + "\n"
        raw = base64.b64decode(line.rsplit(" ", 1)[1])
        message = cosigned_message(body, timestamp=int.from_bytes(raw[4:12], "big"))
        nacl.bindings.crypto_sign_open(raw[12:] + message, public)
    return _rate(len(notes), time.perf_counter() - start)


def checks(notes: list[str], lines: list[str], vkey: str) -> float:
    """Checkpoints/s of check_answer."""
    key = parse_witness_key(vkey)
    start = time.perf_counter()
    for note, line in zip(notes, lines, strict=True):
        check_answer(note, line.encode(), key=key, not_before=NOW - 10, not_after=NOW + 10)
    return _rate(len(notes), time.perf_counter() - start)


async def client_rate(count: int, workdir: Path) -> float:
    """Checkpoints/s cosigned by a real witness process, one attempt at a time."""
    with WitnessProcess(workdir=workdir, origin=ORIGIN, log_key=LOG_KEY) as witness:
        witness.start()
        log = Log()
        store = _LogStore(log)
        async with httpx.AsyncClient() as http:
            client = WitnessClient(
                endpoint=WitnessEndpoint(name="bench", url=witness.url, key=witness.vkey),
                store=store,  # type: ignore[arg-type]  # the four methods the client calls
                http=http,
            )
            start = time.perf_counter()
            for _ in range(count):
                log.grow(3)
                note = log.checkpoint()
                client.want(
                    CheckpointRecord(
                        size=log.tree.size,
                        root=log.tree.root(),
                        note=note,
                        signed_at_ms=time.time_ns() // 1_000_000,
                    )
                )
                if not await client.attempt():
                    raise SystemExit(f"not cosigned: {client.stats.last_error}")
            elapsed = time.perf_counter() - start
        witness.stop()
    return _rate(count, elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoints", type=int, default=1000)
    parser.add_argument("--leaves", type=int, default=1_000_000)
    args = parser.parse_args()
    count = args.checkpoints

    log = Log()
    notes, lines, cosigned = [], [], []
    for _ in range(count):
        log.grow(3)
        notes.append(log.checkpoint())
        note = add_cosignature(notes[-1], name=WITNESS_NAME, seed=WITNESS_SEED, timestamp=NOW)
        lines.append(note[len(notes[-1]) :])
    final = log.tree.size
    for note, line in zip(notes, lines, strict=True):
        size = int(note.split("\n")[1])
        proof = log.tree.consistency_proof(size1=size, size2=final) if size < final else []
        cosigned.append(CosignedCheckpoint(note=note + line, proof=tuple(proof)))
    vkey = witness_verifier_key(WITNESS_NAME, public_key_from_seed(WITNESS_SEED))

    base = baseline(notes, lines)
    print(f"baseline: bare Ed25519 verify of a cosignature  {base:10.0f} checkpoints/s")
    rate = checks(notes, lines, vkey)
    print(f"check_answer (gateway, per answer)            {rate:10.0f} /s   x{rate / base:.2f}")

    anchor = Checkpoint(origin=ORIGIN, size=final, root=log.tree.root())
    start = time.perf_counter()
    timeline = proof_times(checkpoint=anchor, cosigned=cosigned, keys=[vkey], not_after=NOW)
    elapsed = time.perf_counter() - start
    assert len(timeline.points) == count
    rate = _rate(count, elapsed)
    print(f"proof_times (verify, consistency proof)       {rate:10.0f} /s   x{rate / base:.2f}")

    with tempfile.TemporaryDirectory() as folder:
        rate = asyncio.run(client_rate(count, Path(folder)))
    print(f"WitnessClient.attempt, real witness process   {rate:10.0f} /s   x{rate / base:.4f}")

    step = max(1, args.leaves // count)
    points = tuple(ProofTime(size=(i + 1) * step, time_ms=(NOW + i) * 1000) for i in range(count))
    messages = [
        MessageTime(chain=f"dev-{i % 100}", seq=i // 100, leaf_index=i, t_ms=NOW * 1000)
        for i in range(args.leaves)
    ]
    start = time.perf_counter()
    delays = chain_delays(messages, Timeline(points))
    elapsed = time.perf_counter() - start
    print(
        f"chain_delays: {args.leaves} messages, {len(delays)} chains, {count} proven times: "
        f"{elapsed:.2f} s ({_rate(args.leaves, elapsed):.0f} messages/s)"
    )


if __name__ == "__main__":
    main()
