"""``voltproof demo --ledger evm``: a local anvil node with an AnchorRegistry deployed.

The chain is kept in ``<workdir>/evm/anvil-state.json`` so that a second run continues on
the same chain; the registry is deployed once (again if the chain was lost), by an account
whose key is created in ``<workdir>/keys/anchor-eth.key`` and funded on the local node.
"""

from __future__ import annotations

import os
import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .demo import Demo

CONFIRMATIONS = 2
FUNDING_WEI = 10**21  # 1,000 ETH on the local development chain


async def start_evm_ledger(demo: Demo) -> str:
    """Start anvil (1 s blocks), deploy the registry if needed; return the [anchors] TOML."""
    from ledger.anchors.evm import make_web3
    from ledger.anchors.evm_deploy import deploy_registry
    from ledger.anchors.evm_key import load_evm_key

    from .anvil import AnvilError, AnvilNode
    from .demo import DemoError

    root = demo.layout.root
    (root / "evm").mkdir(parents=True, exist_ok=True)
    node = AnvilNode(block_time=1.0, state=root / "evm" / "anvil-state.json")
    try:
        await node.start()
    except AnvilError as exc:
        raise DemoError(str(exc)) from exc
    demo.anvil = node
    key_file = demo.layout.keys / "anchor-eth.key"
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write("0x" + secrets.token_hex(32) + "\n")
    key = load_evm_key(key_file=key_file)
    await node.arpc("anvil_setBalance", key.address, hex(FUNDING_WEI))
    contract_file = root / "evm" / "registry-address.txt"
    contract = contract_file.read_text(encoding="ascii").strip() if contract_file.exists() else ""
    if not contract or await node.arpc("eth_getCode", contract, "latest") in ("0x", None):
        w3 = make_web3(node.url)
        try:
            deployed = await deploy_registry(
                w3, key=key, writers=[key.address], confirmations=CONFIRMATIONS
            )
        finally:
            await w3.provider.disconnect()
        contract = deployed.address
        contract_file.write_text(contract + "\n", encoding="ascii")
    demo._say(f"anvil at {node.url}, AnchorRegistry at {contract}")
    return (
        "[anchors]\n"
        'backend = "evm"\n'
        f'rpc_url = "{node.url}"\n'
        f'contract = "{contract}"\n'
        f'key_file = "{key_file}"\n'
        f"confirmations = {CONFIRMATIONS}\n"
        "refresh_s = 1\n"
    )


async def stop_evm_ledger(demo: Demo) -> None:
    """Stop anvil (it writes its state file on the way out)."""
    node = getattr(demo, "anvil", None)
    if node is not None:
        await node.stop()
        demo.anvil = None
