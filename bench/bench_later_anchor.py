"""Later-anchor scan benchmark: the stale-checkpoint check of ``verify --rpc`` against the
receipt check it follows.

Run ``python -m bench.bench_later_anchor --help``. It starts anvil (instant mining) on a free
port, deploys an ``AnchorRegistry``, anchors a log at size 10 (the bundle's receipt), then for
each distance D mines D empty blocks (``anvil_mine``) and anchors a larger tree, and times on
the same node, ``--repeat`` times each (median):

- the receipt check ``verify_evm_anchor`` (the baseline: what ``verify --rpc`` did before),
- ``first_anchor_after`` finding that larger tree D blocks after the receipt's block, in
  ``eth_getLogs`` windows of ``BLOCKS_PER_QUERY`` blocks,
- ``first_anchor_after`` when nothing larger was ever anchored (a fresh bundle: no scan).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from web3.types import Wei

from ledger.anchors.base import AnchorReceipt, AnchorRequest, AnchorState, log_id_for
from ledger.anchors.evm import EvmAnchorBackend, make_web3
from ledger.anchors.evm_deploy import deploy_registry
from ledger.anchors.evm_key import EvmKey
from ledger.anchors.evm_store import EvmTxStore
from ledger.anchors.evm_verify import BLOCKS_PER_QUERY, first_anchor_after, verify_evm_anchor
from voltproof.anvil import AnvilNode, rpc_request


async def median_s(call: Callable[[], Awaitable[object]], repeat: int) -> float:
    """The median wall time of ``call`` over ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        await call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def anchor(backend: EvmAnchorBackend, origin: str, size: int) -> AnchorReceipt:
    """Anchor ``origin`` at ``size`` (a distinct non-zero root per size)."""
    root = size.to_bytes(32, "big")
    return await backend.submit(AnchorRequest(log_id=log_id_for(origin), tree_size=size, root=root))


async def later(node: AnvilNode, backend: EvmAnchorBackend, distance: int, repeat: int) -> float:
    """Anchor a log, mine ``distance`` empty blocks, anchor a larger tree; time the scan."""
    receipt = await anchor(backend, f"bench-later-{distance}", 10)
    if distance:
        await asyncio.to_thread(rpc_request, node.url, "anvil_mine", [hex(distance)], timeout=600)
    later_receipt = await anchor(backend, f"bench-later-{distance}", 20)
    while later_receipt.state is not AnchorState.FINAL:  # a node busy mining answers late
        await asyncio.sleep(0.1)
        refreshed = await backend.refresh(later_receipt.log_id, 20)
        assert refreshed is not None
        later_receipt = refreshed
    found = await first_anchor_after(receipt, size=10, rpc_url=node.url)
    assert found is not None
    assert found.tree_size == 20
    return await median_s(lambda: first_anchor_after(receipt, size=10, rpc_url=node.url), repeat)


async def run(args: argparse.Namespace) -> None:
    """Measure and print the table."""
    async with AnvilNode() as node:
        w3: Any = make_web3(node.url)
        key = EvmKey.from_hex(os.urandom(32).hex())
        funder = (await w3.eth.accounts)[0]
        funding = {"from": funder, "to": key.address, "value": Wei(10**21)}
        await w3.eth.wait_for_transaction_receipt(await w3.eth.send_transaction(funding))
        deployed = await deploy_registry(w3, key=key, writers=[key.address])
        backend = await EvmAnchorBackend.connect(
            rpc_url=node.url, contract=deployed.address, store=await EvmTxStore.open(":memory:"),
            key=key, confirmations=1, owns_store=True,
        )  # fmt: skip
        rows: list[tuple[str, float]] = []
        async with backend:
            first = await anchor(backend, "bench-later-none", 10)
            rows.append(
                (
                    "receipt check (baseline)",
                    await median_s(lambda: verify_evm_anchor(first, rpc_url=node.url), args.repeat),
                )
            )
            rows.append(
                (
                    "later anchor: none ever anchored",
                    await median_s(
                        lambda: first_anchor_after(first, size=10, rpc_url=node.url), args.repeat
                    ),
                )
            )
            rows.extend(
                [
                    (f"later anchor {distance:,} blocks on",
                     await later(node, backend, distance, args.repeat))
                    for distance in args.distances
                ]
            )  # fmt: skip
        await w3.provider.disconnect()
    base = rows[0][1]
    print(f"anvil instant mining; median of {args.repeat}; eth_getLogs window "
          f"{BLOCKS_PER_QUERY} blocks")  # fmt: skip
    print(f"{'measure':40} {'ms':>10} {'ratio to receipt check':>24}")
    for name, seconds in rows:
        print(f"{name:40} {seconds * 1000:>10.1f} {seconds / base:>24.2f}")


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_later_anchor",
        description="Time the later-anchor scan of verify --rpc against the receipt check.",
    )
    parser.add_argument(
        "--distances", type=int, nargs="+", default=[0, 2_000, 20_000],
        help="blocks between the receipt and the larger anchor (default 0 2000 20000)",
    )  # fmt: skip
    parser.add_argument("--repeat", type=int, default=5, help="runs per measure (default 5)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
