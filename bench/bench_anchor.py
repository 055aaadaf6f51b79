"""Anchor benchmark: gas per anchor and anchors per second, against a plain ETH transfer.

Run ``python -m bench.bench_anchor --help``. It starts anvil (instant mining) on a free port,
deploys an ``AnchorRegistry`` and, in the same run, measures:

- a baseline of plain ETH transfers signed locally and sent one after another (21,000 gas each),
- anchors through ``EvmAnchorBackend.submit`` (read the contract, estimate gas, sign, record the
  transaction in SQLite, broadcast, read the receipt): gas per anchor in steady state (a log
  whose ``latestSize`` slot is already set) and for the first anchor of a log,
- anchors through the ``local`` backend (hash-chained, signed SQLite table on a file).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from hexbytes import HexBytes
from web3 import AsyncWeb3
from web3.types import Wei

from ledger.anchors.base import AnchorRequest, log_id_for
from ledger.anchors.evm import EvmAnchorBackend, make_web3
from ledger.anchors.evm_deploy import deploy_registry
from ledger.anchors.evm_key import EvmKey
from ledger.anchors.evm_rpc import RpcRetry
from ledger.anchors.evm_store import EvmTxStore
from ledger.anchors.evm_tx import FeePolicy, TxSender
from ledger.anchors.local import LocalAnchorBackend
from voltproof.anvil import AnvilNode


def roots(count: int) -> list[bytes]:
    """Distinct 32-byte roots."""
    return [i.to_bytes(32, "big") for i in range(1, count + 1)]


async def funded_key(w3: AsyncWeb3[Any]) -> EvmKey:
    """A fresh account funded by anvil's first account."""
    key = EvmKey.from_hex(os.urandom(32).hex())
    funder = (await w3.eth.accounts)[0]
    tx = await w3.eth.send_transaction({"from": funder, "to": key.address, "value": Wei(10**21)})
    await w3.eth.wait_for_transaction_receipt(tx)
    return key


async def transfers(w3: AsyncWeb3[Any], key: EvmKey, count: int) -> tuple[float, list[int]]:
    """Send ``count`` plain transfers; return the rate and the gas of each."""
    sender = TxSender(
        w3=w3, key=key, chain_id=await w3.eth.chain_id, fees=FeePolicy(), retry=RpcRetry()
    )
    hashes = []
    start = time.perf_counter()
    for _ in range(count):
        signed = await sender.sign(
            {"to": "0x" + "11" * 20, "value": Wei(1), "gas": 21_000},
            nonce=await sender.next_nonce(),
        )
        await sender.broadcast(signed)
        await w3.eth.get_transaction_receipt(HexBytes(signed.tx_hash))
        hashes.append(signed.tx_hash)
    elapsed = time.perf_counter() - start
    gas = [int((await w3.eth.get_transaction_receipt(HexBytes(h)))["gasUsed"]) for h in hashes]
    return count / elapsed, gas


async def evm_anchors(
    w3: AsyncWeb3[Any], *, node: AnvilNode, key: EvmKey, contract: str, count: int, workdir: Path
) -> tuple[float, list[int]]:
    """Anchor sizes 1..count of one log through the EVM backend; rate and gas per anchor."""
    store = await EvmTxStore.open(workdir / "evm-txs.sqlite3")
    backend = await EvmAnchorBackend.connect(
        rpc_url=node.url, contract=contract, store=store, key=key, confirmations=1,
        owns_store=True,
    )  # fmt: skip
    log_id = log_id_for("bench.example/evm")
    hashes = []
    async with backend:
        start = time.perf_counter()
        for size, root in enumerate(roots(count), start=1):
            receipt = await backend.submit(AnchorRequest(log_id=log_id, tree_size=size, root=root))
            hashes.append(str(receipt.details["tx_hash"]))
        elapsed = time.perf_counter() - start
    gas = [int((await w3.eth.get_transaction_receipt(HexBytes(h)))["gasUsed"]) for h in hashes]
    return count / elapsed, gas


async def local_anchors(count: int, workdir: Path) -> float:
    """Anchor sizes 1..count through the local backend; anchors per second."""
    log_id = log_id_for("bench.example/local")
    async with await LocalAnchorBackend.open(
        workdir / "anchors.sqlite3", seed=bytes(range(32))
    ) as backend:
        start = time.perf_counter()
        for size, root in enumerate(roots(count), start=1):
            await backend.submit(AnchorRequest(log_id=log_id, tree_size=size, root=root))
        return count / (time.perf_counter() - start)


async def run(args: argparse.Namespace) -> None:
    """Measure and print the table."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        async with AnvilNode() as node:
            w3 = make_web3(node.url)
            try:
                key = await funded_key(w3)
                deployed = await deploy_registry(w3, key=key, writers=[key.address])
                transfer_rate, transfer_gas = await transfers(w3, key, args.transfers)
                anchor_rate, anchor_gas = await evm_anchors(
                    w3,
                    node=node,
                    key=key,
                    contract=deployed.address,
                    count=args.anchors,
                    workdir=workdir,
                )
            finally:
                await w3.provider.disconnect()
        local_rate = await local_anchors(args.local_anchors, workdir)
    base_gas = statistics.median(transfer_gas)
    steady = statistics.median(anchor_gas[1:])
    print(f"anvil instant mining; {args.transfers} transfers, {args.anchors} EVM anchors, "
          f"{args.local_anchors} local anchors")  # fmt: skip
    print(f"{'measure':44} {'value':>12} {'ratio to transfer':>18}")
    rows = [
        ("gas: plain ETH transfer (baseline)", f"{base_gas:,.0f}", "1.00"),
        ("gas: first anchor of a log", f"{anchor_gas[0]:,}", f"{anchor_gas[0] / base_gas:.2f}"),
        ("gas: anchor, steady state (median)", f"{steady:,.0f}", f"{steady / base_gas:.2f}"),
        ("rate: plain ETH transfers / s (baseline)", f"{transfer_rate:,.1f}", "1.00"),
        ("rate: EVM anchors / s", f"{anchor_rate:,.1f}", f"{anchor_rate / transfer_rate:.2f}"),
        ("rate: local anchors / s", f"{local_rate:,.1f}", f"{local_rate / transfer_rate:.2f}"),
    ]
    for name, value, ratio in rows:
        print(f"{name:44} {value:>12} {ratio:>18}")


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_anchor",
        description="Gas per anchor and anchors per second (anvil and the local backend), "
        "against plain ETH transfers measured in the same run.",
    )
    parser.add_argument("--anchors", type=int, default=200, help="EVM anchors (default 200)")
    parser.add_argument(
        "--transfers", type=int, default=200, help="baseline transfers (default 200)"
    )
    parser.add_argument(
        "--local-anchors", type=int, default=2000, help="local anchors (default 2000)"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
