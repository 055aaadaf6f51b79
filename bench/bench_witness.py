"""Checkpoints per second one witness sustains, against the bare crypto cost in the same run.

    PYTHONPATH=. python bench/bench_witness.py [--checkpoints N] [--clients C] [--repeat R]
        [--witness-src DIR] [--no-httpx]

Baseline: per checkpoint, one Ed25519 verify of the log's signature plus one Ed25519 sign of
the cosignature (PyNaCl), nothing else. Then the witness core (parse, verify, consistency
proof, cosign, SQLite compare-and-swap with synchronous=FULL) called directly by one caller and
by one thread per log (group commit), and the whole HTTP service: ``voltproof witness`` as its
own process, ``C`` logs submitting at once from this one, each on its own keep-alive
connection, each waiting for its answer before its next checkpoint (as a log must). The load
comes from a hand-written HTTP/1.1 client (about 60 us of CPU per request), run ``R`` times
(median, and the witness process's CPU time per checkpoint, which depends less on what else
the machine runs), then once from httpx (about 1.3 ms per request, so on a small machine it
measures the client as much as the witness). ``--witness-src`` runs the witness process from
another checkout (its PYTHONPATH) with the same clients: before and after in one run.
Prints rates and ratios to the baseline; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import nacl.bindings

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.cosignature import cosigned_message
from ledger.keys import create_key_file
from tests.support.witness_world import LOG_KEY, LOG_SEED, WITNESS_SEED, Log, open_witness
from voltproof.witness import LogPolicy, Witness
from voltproof.witness.settings import LogSettings

_REPO = Path(__file__).resolve().parents[1]


def _requests(count: int, *, step: int = 3) -> tuple[Log, list[bytes]]:
    log = Log()
    log.grow(step)
    bodies = [log.request(0)]
    for _ in range(count - 1):
        old = log.tree.size
        log.grow(step)
        bodies.append(log.request(old))
    return log, bodies


def baseline(count: int) -> float:
    """Checkpoints/s of bare crypto: verify the log signature, sign a cosignature."""
    body = Checkpoint(origin="o", size=1, root=bytes(32)).body()
    note = sign_checkpoint(Checkpoint(origin="o", size=1, root=bytes(32)), name="n", seed=LOG_SEED)
    signature = base64.b64decode(note.rsplit(" ", 1)[1])[4:]
    log_public, _ = nacl.bindings.crypto_sign_seed_keypair(LOG_SEED)
    _, witness_secret = nacl.bindings.crypto_sign_seed_keypair(WITNESS_SEED)
    start = time.perf_counter()
    for number in range(count):
        nacl.bindings.crypto_sign_open(signature + body.encode(), log_public)
        nacl.bindings.crypto_sign(cosigned_message(body, timestamp=number), witness_secret)
    return count / (time.perf_counter() - start)


def core(bodies: list[bytes], workdir: Path) -> float:
    """Checkpoints/s of Witness.add_checkpoint, one caller."""
    witness = open_witness(workdir / "core.sqlite3")
    start = time.perf_counter()
    for body in bodies:
        witness.add_checkpoint(body)
    return len(bodies) / (time.perf_counter() - start)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _submit_all(url: str, logs: list[list[bytes]]) -> None:
    """Each log's bodies in order on its own task, httpx on shared keep-alive connections."""
    async with httpx.AsyncClient(timeout=30) as client:

        async def one_log(bodies: list[bytes]) -> None:
            for body in bodies:
                answer = await client.post(url, content=body)
                if answer.status_code != 200:
                    raise RuntimeError(f"{answer.status_code}: {answer.text}")

        async with asyncio.TaskGroup() as group:
            for bodies in logs:
                group.create_task(one_log(bodies))


async def _post_raw(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, body: bytes
) -> tuple[int, bytes]:
    writer.write(head + b"%d\r\n\r\n" % len(body) + body)
    status_line = await reader.readuntil(b"\r\n")
    length = 0
    while (header := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = header.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return int(status_line.split(b" ", 2)[1]), await reader.readexactly(length)


async def _submit_all_raw(port: int, logs: list[list[bytes]]) -> None:
    """As :func:`_submit_all`, one HTTP/1.1 keep-alive connection per log, written by hand.

    The load generator shares the machine with the witness; httpx spends about as much CPU
    per request as the witness does, which would measure the client. This one spends little.
    """
    head = (
        f"POST /add-checkpoint HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: text/plain\r\nContent-Length: "
    ).encode()

    async def one_log(bodies: list[bytes]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for body in bodies:
                status, answer = await _post_raw(reader, writer, head, body)
                if status != 200:
                    raise RuntimeError(f"{status}: {answer.decode(errors='replace')}")
        finally:
            writer.close()

    async with asyncio.TaskGroup() as group:
        for bodies in logs:
            group.create_task(one_log(bodies))


def _many_logs(count: int, clients: int) -> tuple[list[LogPolicy], list[list[bytes]]]:
    logs, policies = [], []
    for number in range(clients):
        log = Log(origin=f"bench.example/log-{number}")
        log.grow(3)
        bodies = [log.request(0)]
        for _ in range(count // clients - 1):
            old = log.tree.size
            log.grow(3)
            bodies.append(log.request(old))
        logs.append(bodies)
        policies.append(LogSettings(origin=log.origin, keys=[LOG_KEY]).policy())
    return policies, logs


def _witness(policies: list[LogPolicy], path: Path) -> Witness:
    base = open_witness(path)
    return Witness.from_policies(key=base.key, logs=policies, state=base.state)


def core_threads(count: int, clients: int, workdir: Path) -> float:
    """Checkpoints/s of Witness.add_checkpoint, one thread per log (group commit)."""
    policies, logs = _many_logs(count, clients)
    witness = _witness(policies, workdir / "threads.sqlite3")

    def one_log(bodies: list[bytes]) -> None:
        for body in bodies:
            witness.add_checkpoint(body)

    threads = [threading.Thread(target=one_log, args=(bodies,)) for bodies in logs]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(len(bodies) for bodies in logs) / (time.perf_counter() - start)


@dataclass(frozen=True, slots=True)
class HttpRun:
    """One HTTP measurement: the rate, and the witness process's CPU seconds per checkpoint."""

    rate: float
    cpu_per_checkpoint: float | None


def _process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http(
    count: int, clients: int, workdir: Path, *, client: str = "raw", source: Path = _REPO
) -> HttpRun:
    """Checkpoints/s through HTTP: a witness process, ``clients`` logs submitting at once."""
    workdir.mkdir()
    policies, logs = _many_logs(count, clients)
    create_key_file(workdir / "witness.key", name="bench.example/witness")
    port = _free_port()
    lines = [f'key_file = "witness.key"\nstate_file = "http.sqlite3"\nport = {port}\n']
    lines += [f'[[logs]]\norigin = "{p.origin}"\nkeys = ["{LOG_KEY}"]\n' for p in policies]
    (workdir / "witness.toml").write_text("".join(lines))
    command = [sys.executable, "-m", "voltproof", "witness", "--config", "witness.toml"]
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(source)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/add-checkpoint"
        cpu_before = _process_cpu_s(process.pid)
        start = time.perf_counter()
        if client == "raw":
            asyncio.run(_submit_all_raw(port, logs))
        else:
            asyncio.run(_submit_all(url, logs))
        elapsed = time.perf_counter() - start
        cpu_after = _process_cpu_s(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=20)
    total = sum(len(bodies) for bodies in logs)
    cpu = None if cpu_before is None or cpu_after is None else (cpu_after - cpu_before) / total
    return HttpRun(rate=total / elapsed, cpu_per_checkpoint=cpu)


def _http_line(label: str, run: HttpRun, baseline_rate: float) -> str:
    cpu = "" if run.cpu_per_checkpoint is None else f"  {run.cpu_per_checkpoint * 1e6:5.0f} us CPU"
    return (
        f"{label:<44} {run.rate:9.0f} checkpoints/s  {run.rate / baseline_rate:.2f}x baseline{cpu}"
    )


def main() -> None:
    """Run the measurements and print rates and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="HTTP runs with the lean client")
    parser.add_argument(
        "--witness-src",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="also measure the witness of this checkout (repeatable)",
    )
    parser.add_argument("--no-httpx", action="store_true", help="skip the httpx client run")
    args = parser.parse_args()
    _, bodies = _requests(args.checkpoints)
    sources = [_REPO, *args.witness_src]
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        rate_baseline = baseline(args.checkpoints)
        rate_core = core(bodies, workdir)
        rate_threads = core_threads(args.checkpoints, args.clients, workdir)
        runs: dict[Path, list[HttpRun]] = {source: [] for source in sources}
        for number in range(args.repeat):  # interleaved: the machine's load hits all alike
            for index, source in enumerate(sources):
                runs[source].append(
                    http(
                        args.checkpoints,
                        args.clients,
                        workdir / f"raw-{index}-{number}",
                        source=source,
                    )
                )
        httpx_runs = (
            {}
            if args.no_httpx
            else {
                source: http(
                    args.checkpoints,
                    args.clients,
                    workdir / f"httpx-{index}",
                    client="httpx",
                    source=source,
                )
                for index, source in enumerate(sources)
            }
        )
    print(f"{'baseline (Ed25519 verify + sign)':<44} {rate_baseline:9.0f} checkpoints/s")
    print(
        f"{'witness core (checks + SQLite)':<44} {rate_core:9.0f} checkpoints/s"
        f"  {rate_core / rate_baseline:.2f}x baseline"
    )
    print(
        f"{f'witness core ({args.clients} logs, threads)':<44} {rate_threads:9.0f} checkpoints/s"
        f"  {rate_threads / rate_baseline:.2f}x baseline"
    )
    for source in sources:
        name = "" if source == _REPO else f" [{source.name}]"
        ordered = sorted(runs[source], key=lambda run: run.rate)
        for run in ordered:
            print(_http_line(f"  HTTP run{name}", run, rate_baseline))
        median = ordered[len(ordered) // 2]
        print(
            _http_line(f"witness HTTP ({args.clients} logs), median{name}", median, rate_baseline)
        )
        if source in httpx_runs:
            print(
                _http_line(
                    f"witness HTTP ({args.clients} logs), httpx{name}",
                    httpx_runs[source],
                    rate_baseline,
                )
            )


if __name__ == "__main__":
    main()
