"""An ``AnchorRegistry`` on a real anvil node, as the ledger of an evidence world.

:func:`start_evm_ledger` starts anvil, deploys the registry and funds one writer;
``EvmLedger.backend`` opens the gateway's EVM anchor backend on it (``EvidenceWorld``'s
``anchor_backend``), so bundles carry ``evm`` receipts that ``voltproof verify --rpc``
checks against the chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ledger.anchors.base import AnchorBackend
from ledger.anchors.evm import EvmAnchorBackend, make_web3
from ledger.anchors.evm_deploy import deploy_registry
from ledger.anchors.evm_key import EvmKey
from ledger.anchors.evm_store import EvmTxStore
from tests.support.anvil_keys import funded_keys
from tests.support.binaries import require_binary
from voltproof.anvil import INSTALL_HINT, AnvilNode, find_anvil


@dataclass(slots=True, kw_only=True)
class EvmLedger:
    """A running anvil with a deployed registry and one authorised writer."""

    node: AnvilNode
    contract: str
    writer: EvmKey
    tx_store: Path

    async def backend(self) -> AnchorBackend:
        """The EVM anchor backend a gateway of this deployment runs (1 confirmation)."""
        return await EvmAnchorBackend.connect(
            rpc_url=self.node.url, contract=self.contract, key=self.writer,
            store=await EvmTxStore.open(self.tx_store), confirmations=1, owns_store=True,
        )  # fmt: skip

    async def head_time_s(self) -> int:
        """The timestamp (s) of the newest block."""
        block = await self.node.arpc("eth_getBlockByNumber", "latest", False)
        return int(block["timestamp"], 16)

    async def next_block_at(self, t_s: int) -> None:
        """Give the next mined block the timestamp ``t_s``."""
        await self.node.arpc("evm_setNextBlockTimestamp", t_s)


async def start_evm_ledger(directory: Path, *, genesis_s: int | None = None) -> EvmLedger:
    """Start anvil (one block per transaction, the genesis block dated ``genesis_s``), deploy
    a registry, authorise a writer."""
    binary = require_binary(
        None if (found := find_anvil()) is None else str(found), "anvil", INSTALL_HINT
    )
    node = AnvilNode(binary=Path(binary), genesis_s=genesis_s)
    await node.start()
    w3 = make_web3(node.url)
    try:
        owner, writer = await funded_keys(w3, 2)
        deployed = await deploy_registry(w3, key=owner, writers=[writer.address])
    except BaseException:
        await node.stop()
        raise
    finally:
        await w3.provider.disconnect()
    return EvmLedger(
        node=node, contract=deployed.address, writer=writer, tx_store=directory / "evm-txs.db"
    )
