"""``voltproof anchors deploy|verify|status`` against a real anvil node."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from nacl.signing import SigningKey

from ledger.anchors import AnchorRequest, log_id_for
from ledger.anchors.evm import EvmAnchorBackend, make_web3
from ledger.anchors.evm_key import EvmKey
from ledger.anchors.evm_store import EvmTxStore
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.note import verifier_key
from tests.support.anvil_keys import funded_keys
from tests.support.binaries import require_binary
from voltproof.anvil import INSTALL_HINT, AnvilNode, find_anvil

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

ORIGIN = "voltproof.example/gw-cli"
SEED = bytes(range(32))
ROOT = bytes(range(32, 64))


@dataclass
class Run:
    """A finished command."""

    code: int
    out: str
    err: str


async def voltproof(*args: str, env: dict[str, str] | None = None) -> Run:
    """Run the console script in a subprocess."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voltproof", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return Run(code=process.returncode, out=out.decode(), err=err.decode())


@dataclass
class Deployment:
    """anvil, a funded key in a file, and a registry deployed through the CLI."""

    node: AnvilNode
    key: EvmKey
    key_file: Path
    contract: str
    checkpoint: Path


@pytest_asyncio.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    """Deploy with ``voltproof anchors deploy`` and anchor one checkpoint of size 12."""
    binary = require_binary(
        None if (found := find_anvil()) is None else str(found), "anvil", INSTALL_HINT
    )
    async with AnvilNode(binary=Path(binary)) as node:
        w3 = make_web3(node.url)
        (key,) = await funded_keys(w3, 1)
        await w3.provider.disconnect()
        key_file = tmp_path / "evm.key"
        key_file.write_text(bytes(key.account.key).hex() + "\n", encoding="ascii")
        run = await voltproof("anchors", "deploy", "--rpc", node.url, "--key-file", str(key_file))
        assert run.code == 0, run.err
        contract = run.out.strip()
        backend = await EvmAnchorBackend.connect(
            rpc_url=node.url, contract=contract, store=await EvmTxStore.open(":memory:"),
            key=key, confirmations=1, owns_store=True,
        )  # fmt: skip
        async with backend:
            await backend.submit(AnchorRequest(log_id=log_id_for(ORIGIN), tree_size=12, root=ROOT))
        checkpoint = tmp_path / "checkpoint"
        note = sign_checkpoint(
            Checkpoint(origin=ORIGIN, size=12, root=ROOT), name=ORIGIN, seed=SEED
        )
        checkpoint.write_text(note, encoding="utf-8")
        yield Deployment(
            node=node, key=key, key_file=key_file, contract=contract, checkpoint=checkpoint
        )


async def test_deploy_prints_address(deployment: Deployment) -> None:
    """deploy prints a checksummed contract address that has code."""
    assert deployment.contract.startswith("0x")
    assert len(deployment.contract) == 42


async def test_verify_accepts_anchored_checkpoint(deployment: Deployment) -> None:
    """verify exits 0 when the chain holds the checkpoint's root at its size."""
    run = await voltproof(
        "anchors", "verify", "--checkpoint", str(deployment.checkpoint),
        "--rpc", deployment.node.url, "--contract", deployment.contract,
    )  # fmt: skip
    assert run.code == 0, run.err
    assert run.out.startswith(f"valid: {ORIGIN} size 12 anchored in block")


async def test_verify_checks_signature_when_given_key(deployment: Deployment) -> None:
    """With --gateway-key the checkpoint signature is checked too."""
    public = bytes(SigningKey(SEED).verify_key)
    good = verifier_key(ORIGIN, public)
    bad = verifier_key(ORIGIN, bytes(SigningKey(bytes(32)).verify_key))
    common = ["anchors", "verify", "--checkpoint", str(deployment.checkpoint),
              "--rpc", deployment.node.url, "--contract", deployment.contract]  # fmt: skip
    assert (await voltproof(*common, "--gateway-key", good)).code == 0
    run = await voltproof(*common, "--gateway-key", bad)
    assert run.code == 1
    assert "INVALID:" in run.err


REJECTIONS: list[tuple[int, bytes, list[str], str]] = [
    (12, bytes(32), [], "registry holds root"),
    (13, ROOT, [], "registry holds no root for size 13 \\(largest anchored size: 12\\)"),
    (12, ROOT, ["--confirmations", "50"], "anchor has 1 confirmations, 50 are required"),
]


@pytest.mark.parametrize("rejection", REJECTIONS, ids=["root", "size", "confirmations"])
async def test_verify_rejects(
    deployment: Deployment, tmp_path: Path, rejection: tuple[int, bytes, list[str], str]
) -> None:
    """verify exits 1 and names the reason when the chain does not back the checkpoint."""
    size, root, extra, message = rejection
    other = tmp_path / "other"
    note = sign_checkpoint(Checkpoint(origin=ORIGIN, size=size, root=root), name=ORIGIN, seed=SEED)
    other.write_text(note, encoding="utf-8")
    run = await voltproof(
        "anchors", "verify", "--checkpoint", str(other),
        "--rpc", deployment.node.url, "--contract", deployment.contract, *extra,
    )  # fmt: skip
    assert run.code == 1
    assert re.search(message, run.err), run.err


async def test_status_lists_anchors(deployment: Deployment) -> None:
    """status --json lists the log's anchors."""
    run = await voltproof(
        "anchors", "status", "--rpc", deployment.node.url,
        "--contract", deployment.contract, "--origin", ORIGIN, "--json",
    )  # fmt: skip
    assert run.code == 0, run.err
    status = json.loads(run.out)
    assert status["latest_size"] == 12
    assert [a["tree_size"] for a in status["anchors"]] == [12]
    text = await voltproof(
        "anchors", "status", "--rpc", deployment.node.url,
        "--contract", deployment.contract, "--origin", ORIGIN,
    )  # fmt: skip
    assert "latest anchored size: 12" in text.out


async def test_deploy_without_key_fails(deployment: Deployment) -> None:
    """deploy without a key is a usage error (exit 2) and says why."""
    run = await voltproof(
        "anchors", "deploy", "--rpc", deployment.node.url, "--key-env", "NO_SUCH_VARIABLE_X"
    )
    assert run.code == 2
    assert "NO_SUCH_VARIABLE_X holds no EVM private key" in run.err


async def test_verify_unreadable_checkpoint_fails(deployment: Deployment, tmp_path: Path) -> None:
    """A missing checkpoint file is a usage error (exit 2)."""
    run = await voltproof(
        "anchors", "verify", "--checkpoint", str(tmp_path / "missing"),
        "--rpc", deployment.node.url, "--contract", deployment.contract,
    )  # fmt: skip
    assert run.code == 2
    assert "cannot read" in run.err


async def test_status_with_node_down_fails(deployment: Deployment) -> None:
    """status exits 1 when the node is unreachable."""
    await deployment.node.stop()
    run = await voltproof(
        "anchors", "status", "--rpc", deployment.node.url,
        "--contract", deployment.contract, "--origin", ORIGIN,
    )  # fmt: skip
    assert run.code == 1
    assert "EVM node unreachable" in run.err
