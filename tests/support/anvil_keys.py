"""Funded accounts on a running anvil, for the anvil anchor tests and the anchor CLI test."""

from __future__ import annotations

import os
from typing import Any

from web3 import AsyncWeb3
from web3.types import Wei

from ledger.anchors.evm_key import EvmKey


async def funded_keys(w3: AsyncWeb3[Any], count: int) -> list[EvmKey]:
    """Fresh accounts funded by anvil's first (unlocked) account, in one block where possible."""
    keys = [EvmKey.from_hex(os.urandom(32).hex()) for _ in range(count)]
    funder = (await w3.eth.accounts)[0]
    sent = [
        await w3.eth.send_transaction({"from": funder, "to": key.address, "value": Wei(10**20)})
        for key in keys
    ]
    for tx in sent:
        await w3.eth.wait_for_transaction_receipt(tx, timeout=30, poll_latency=0.05)
    return keys
