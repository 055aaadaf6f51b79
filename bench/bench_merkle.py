"""Merkle log benchmark: append throughput and proof latency, against baselines run alongside.

Run ``python -m bench.bench_merkle --help``. Every figure is printed next to a baseline measured
in the same run: a plain ``hashlib`` loop doing exactly the leaf and node hashing an append
needs (the floor for any Python implementation), and ``pymerkle`` (an independent Python
RFC 9162 tree). Persisted figures use ``gateway.store.merkle_nodes.SqliteLog`` on a file, in WAL
mode with ``synchronous=NORMAL``; the large builds time the append calls only, not making up
the leaf data. Beside each latency p99 is the p99 of the calls during which the scheduler did
not switch away from the process (no voluntary or involuntary context switch in
``getrusage``), which tells the cost of the code apart from contention for the cores.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from gateway.store.merkle_nodes import SqliteLog
from ledger.merkle import MemoryLog

Row = tuple[str, str, str]


def leaf_data(start: int, count: int, size: int) -> list[bytes]:
    """``count`` distinct leaves of ``size`` bytes (a counter padded with a fixed pattern)."""
    pad = bytes(range(256)) * (size // 256 + 1)
    return [i.to_bytes(8, "big") + pad[: size - 8] for i in range(start, start + count)]


def batches(total: int, batch: int, size: int) -> Iterator[list[bytes]]:
    """The leaves ``0 .. total`` in batches."""
    for start in range(0, total, batch):
        yield leaf_data(start, min(batch, total - start), size)


def hashlib_floor(leaves: Sequence[bytes]) -> None:
    """The same leaf and node hashing as an append, with nothing else."""
    sha256 = hashlib.sha256
    stack: list[bytes] = []
    for position, data in enumerate(leaves):
        node = sha256(b"\x00" + data).digest()
        index = position
        while index & 1:
            node = sha256(b"\x01" + stack.pop() + node).digest()
            index >>= 1
        stack.append(node)


def rate(count: int, run: Callable[[], object]) -> float:
    """Items per second of ``run``."""
    start = time.perf_counter()
    run()
    return count / (time.perf_counter() - start)


def best_rate(count: int, runs: Sequence[Callable[[], object]]) -> float:
    """The best items per second over several runs (each run gets fresh state)."""
    return max(rate(count, run) for run in runs)


def _switches() -> tuple[int, int]:
    """Context switches of this thread so far: (waited for I/O or a lock, preempted)."""
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_nvcsw, usage.ru_nivcsw


def percentiles(run: Callable[[], object], repeat: int) -> tuple[float, float, float, int, int]:
    """p50 and p99 of ``run`` in microseconds, the p99 of the calls that kept the CPU, and how
    many calls waited (blocked) and were preempted (other processes share the cores)."""
    times = []
    calm = []
    waited = preempted = 0
    for _ in range(repeat):
        voluntary, involuntary = _switches()
        start = time.perf_counter()
        run()
        elapsed = (time.perf_counter() - start) * 1e6
        times.append(elapsed)
        voluntary_after, involuntary_after = _switches()
        waited += voluntary_after != voluntary
        preempted += involuntary_after != involuntary
        if (voluntary_after, involuntary_after) == (voluntary, involuntary):
            calm.append(elapsed)
    cuts = statistics.quantiles(times, n=100)
    calm_p99 = statistics.quantiles(calm, n=100)[98] if len(calm) > 1 else float("nan")
    return cuts[49], cuts[98], calm_p99, waited, preempted


def latency(figures: tuple[float, float, float, int, int], count: int) -> str:
    """``p50 .. us, p99 .. us`` with the p99 of the calls that kept the CPU."""
    p50, p99, calm_p99, waited, preempted = figures
    return (
        f"p50 {p50:,.0f} us, p99 {p99:,.0f} us (calls that kept the CPU: p99 {calm_p99:,.0f} us;"
        f" of {count:,}: {preempted} preempted, {waited} blocked)"
    )


def append_rows(args: argparse.Namespace, workdir: Path) -> tuple[list[Row], MemoryLog]:
    """Append throughput in memory and persisted, with the hashlib floor and pymerkle."""
    leaves = leaf_data(0, args.append_leaves, args.leaf_bytes)
    chunks = [leaves[i : i + args.batch] for i in range(0, len(leaves), args.batch)]
    floor = best_rate(len(leaves), [lambda: hashlib_floor(leaves)] * args.repeat)

    def filler(log: MemoryLog | SqliteLog) -> Callable[[], object]:
        return lambda: [log.append(chunk) for chunk in chunks]

    memories = [MemoryLog() for _ in range(args.repeat)]
    in_memory = best_rate(len(leaves), [filler(log) for log in memories])
    memory = memories[0]
    stores = [SqliteLog(workdir / f"append-{run}.db") for run in range(args.repeat)]
    persisted = best_rate(len(leaves), [filler(log) for log in stores])
    assert {log.root() for log in stores} == {memory.root()}
    for log in stores:
        log.close()

    rows: list[Row] = [
        ("hashlib floor (leaf + node hashes)", f"{floor:,.0f} leaves/s", "1.00x floor"),
        ("MemoryLog.append", f"{in_memory:,.0f} leaves/s", f"{in_memory / floor:.2f}x floor"),
        ("SqliteLog.append", f"{persisted:,.0f} leaves/s", f"{persisted / floor:.2f}x floor"),
    ]
    if args.pymerkle_leaves:
        rows += pymerkle_rows(args, memory, in_memory)
    return rows, memory


def pymerkle_rows(args: argparse.Namespace, memory: MemoryLog, in_memory: float) -> list[Row]:
    """pymerkle's in-memory append rate and inclusion proof time, and our ratio to them."""
    from pymerkle import InmemoryTree

    count = min(args.pymerkle_leaves, memory.size)
    leaves = leaf_data(0, count, args.leaf_bytes)
    tree = InmemoryTree(algorithm="sha256")
    theirs = rate(count, lambda: [tree.append_entry(data) for data in leaves])
    assert tree.get_root(count) == memory.root_at(count)  # the same RFC 9162 tree

    picks = [random.randrange(count) for _ in range(args.proofs)]
    pick = iter(picks * 2)
    theirs_proof = percentiles(lambda: tree.prove_inclusion(next(pick) + 1, count), args.proofs)
    pick = iter(picks * 2)
    ours = percentiles(lambda: memory.inclusion_proof(index=next(pick), size=count), args.proofs)
    return [
        ("pymerkle InmemoryTree.append_entry", f"{theirs:,.0f} leaves/s",
         f"MemoryLog is {in_memory / theirs:.1f}x"),
        (f"pymerkle inclusion proof @ {count:,}", latency(theirs_proof, args.proofs), ""),
        (f"MemoryLog inclusion proof @ {count:,}", latency(ours, args.proofs),
         f"{theirs_proof[0] / ours[0]:.1f}x faster (p50)"),
    ]  # fmt: skip


def proof_rows(args: argparse.Namespace, workdir: Path, size: int) -> list[Row]:
    """Build a persisted log of ``size`` leaves, then time random proofs against it."""
    path = workdir / f"proofs-{size}.db"
    log = SqliteLog(path)
    appending = 0.0  # only the append calls are timed, not making up the leaf data
    for chunk in batches(size, 10_000, 64):
        start = time.perf_counter()
        log.append(chunk)
        appending += time.perf_counter() - start
    built = size / appending
    indices = [random.randrange(size) for _ in range(args.proofs)]
    pick = iter(indices)
    incl = percentiles(lambda: log.inclusion_proof(index=next(pick), size=size), args.proofs)
    firsts = [random.randrange(1, size) for _ in range(args.proofs)]
    pick = iter(firsts)
    cons = percentiles(lambda: log.consistency_proof(size1=next(pick), size2=size), args.proofs)
    log.close()
    megabytes = path.stat().st_size / 1e6
    return [
        (f"build SqliteLog @ {size:,} (batches of 10,000)", f"{built:,.0f} leaves/s",
         f"{megabytes:,.0f} MB"),
        (f"SqliteLog inclusion proof @ {size:,}", latency(incl, args.proofs), ""),
        (f"SqliteLog consistency proof @ {size:,}", latency(cons, args.proofs), ""),
    ]  # fmt: skip


def print_table(rows: Sequence[Row]) -> None:
    """A plain text table."""
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_merkle", description=__doc__)
    parser.add_argument(
        "--append-leaves",
        type=int,
        default=200_000,
        help="leaves appended for the throughput rows (default 200,000)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=1000,
        help="leaves per append call / transaction (default 1,000)",
    )
    parser.add_argument(
        "--leaf-bytes",
        type=int,
        default=300,
        help="bytes per leaf, about one signed message (default 300)",
    )
    parser.add_argument(
        "--pymerkle-leaves",
        type=int,
        default=20_000,
        help="leaves for the pymerkle comparison; 0 skips it (default 20,000)",
    )
    parser.add_argument(
        "--proof-sizes",
        type=lambda text: [int(s) for s in text.split(",")],
        default=[100_000],
        help="comma-separated persisted log sizes for the "
        "proof rows, e.g. 1000000,10000000 (default 100000)",
    )
    parser.add_argument(
        "--proofs", type=int, default=2000, help="proofs timed per row (default 2,000)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="append runs per row; the best is reported (default 3)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed for proof positions")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the databases go (default: a temporary directory)",
    )
    args = parser.parse_args(argv)  # fmt: skip
    if args.leaf_bytes < 8:
        parser.error("--leaf-bytes must be at least 8")
    random.seed(args.seed)
    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        workdir = Path(scratch)
        rows, _ = append_rows(args, workdir)
        for size in args.proof_sizes:
            rows += proof_rows(args, workdir, size)
    print_table([("measurement", "result", "ratio"), *rows])


if __name__ == "__main__":
    main()
