"""The stale-checkpoint rule (docs/protocol.md, step 8) against a real EVM node (anvil).

The operator hands a lessor a v2 bundle on an older checkpoint that is validly anchored on
chain: the device's index head there "proves" the end of an open period, and what the device
sent since stays hidden. ``voltproof verify --rpc`` reads the registry's later ``Anchored``
events: a larger tree anchored in a block dated before a chain's end withdraws the end proven
by the head, with the reason named; a block dated after the end, or an end proven by a later
message, leaves the bundle complete.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.anchors.base import (
    EVM_LATER_ANCHOR_GRACE_MS,
    AnchorReceipt,
    AnchorRequest,
    LaterAnchor,
)
from ledger.anchors.errors import AnchorNotFoundError, AnchorUnavailable
from ledger.anchors.evm import EvmAnchorBackend
from ledger.anchors.evm_checker import EvmAnchorChecker
from ledger.anchors.evm_rpc import RpcRetry
from ledger.anchors.evm_store import EvmTxStore
from ledger.anchors.evm_verify import BLOCKS_PER_QUERY, first_anchor_after
from ledger.bundle_v2 import BundleV2, read_bundle
from ledger.verify_v2 import ChainFacts, V2Report, verify_bundle_v2
from tests.support.evidence_world import RECEIVED_MS, EvidenceWorld, build_world, t_of
from tests.support.evm_ledger import EvmLedger, start_evm_ledger
from tests.support.gateway_devices import T0_MS
from tests.support.paths import REPO
from tests.support.rpc_proxy import SilencingRpcProxy

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ASSET = "bus-0002"
OPEN = 2**62
"""The end of an open lease: past every block of the chain."""
DEAD_RPC = "http://127.0.0.1:9"


T0_S = T0_MS // 1000
FIRST_LATER_S = T0_S + 50
"""The first later anchor: inside the closed period (which ends at t_of(9) = T0 + 90 s)."""
SECOND_LATER_S = RECEIVED_MS // 1000 + 3600
"""The anchor after the first grown checkpoint: after every message."""


@dataclass(slots=True, kw_only=True)
class Chain:
    """The EVM-anchored world and the bundles the operator kept from before the log grew.

    The chain's genesis is dated an hour before the telemetry. Stage 0 (checkpoint N): the
    bundles ``open_lease`` and ``closed``; then the device sends three more and their
    checkpoint is anchored in a block dated FIRST_LATER_S. Stage 1 (checkpoint N + 3): the
    bundles ending at SECOND_LATER_S and 1 ms after it; then three more, anchored in a block
    dated SECOND_LATER_S.
    """

    ledger: EvmLedger
    world: EvidenceWorld
    open_lease: BundleV2  # stage 0, to OPEN: its end proven by the head only
    closed: BundleV2  # stage 0, ends at t_of(9): seq 9 proves the end
    ends_at_later: BundleV2  # stage 1, ends at the next anchor's block time + the grace
    ends_after_later: BundleV2  # stage 1, ends 1 ms after that


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    """A world whose checkpoints are anchored on anvil, grown twice, older bundles kept."""
    root = tmp_path_factory.mktemp("evm-stale")
    runner = asyncio.Runner()
    ledger = runner.run(start_evm_ledger(root, genesis_s=T0_S - 3600))
    try:
        world = build_world(root / "world", anchor_backend=ledger.backend)
        open_lease = world.bundle(ASSET, to_ms=OPEN)
        closed = world.bundle(ASSET, to_ms=t_of(9))
        runner.run(ledger.next_block_at(FIRST_LATER_S))
        world.grow(ASSET, messages=3)
        edge = SECOND_LATER_S * 1000 + EVM_LATER_ANCHOR_GRACE_MS
        ends_at_later = world.bundle(ASSET, to_ms=edge)
        ends_after_later = world.bundle(ASSET, to_ms=edge + 1)
        runner.run(ledger.next_block_at(SECOND_LATER_S))
        world.grow(ASSET, messages=3)
        yield Chain(
            ledger=ledger, world=world, open_lease=open_lease, closed=closed,
            ends_at_later=ends_at_later, ends_after_later=ends_after_later,
        )  # fmt: skip
    finally:
        runner.run(ledger.node.stop())
        runner.close()


def check(chain: Chain, bundle: BundleV2) -> V2Report:
    """What a lessor runs in process: the bundle against the chain, through the node."""
    again = read_bundle(bundle.to_bytes())
    assert isinstance(again, BundleV2)
    anchors = EvmAnchorChecker(rpc_url=chain.ledger.node.url)
    return verify_bundle_v2(again, gateway_verifier_key=chain.world.gateway_key, anchors=anchors)


def verify(
    chain: Chain, bundle: BundleV2, path: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    """``voltproof verify --rpc`` as its own process."""
    path.write_bytes(bundle.to_bytes())
    return subprocess.run(
        [sys.executable, "-m", "voltproof", "verify", str(path), "--gateway-key",
         chain.world.gateway_key, "--rpc", chain.ledger.node.url, *extra],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=120,
    )  # fmt: skip


def asset_chain(report: V2Report) -> ChainFacts:
    """The facts of the bundle's own chain."""
    return next(c for c in report.chains if c.role == "asset")


def test_honest_bundle_with_no_later_anchor_is_complete(chain: Chain, tmp_path: Path) -> None:
    """The bundle the builder makes now is on the newest anchored checkpoint: nothing larger
    is on chain, and the open period's end is proven by the head."""
    bundle = chain.world.bundle(ASSET, to_ms=OPEN)
    assert bundle.anchor.receipt.backend == "evm"
    report = check(chain, bundle)
    assert report.anchor.source == "evm rpc"
    assert report.later_anchor is None
    assert report.complete, report.chains
    # Its time is the timestamp of the block that holds the anchor, read from the chain.
    assert report.anchor.anchored_at_ms == SECOND_LATER_S * 1000
    done = verify(chain, bundle, tmp_path / "honest.json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "checked against: evm rpc" in done.stdout
    when = datetime.fromtimestamp(SECOND_LATER_S, tz=UTC).isoformat().replace("+00:00", "Z")
    assert f", anchored {when}\n" in done.stdout
    assert done.stdout.splitlines()[-1] == "VALID, COMPLETE, independently anchored"


def test_confirmations_an_anchor_needs(chain: Chain, tmp_path: Path) -> None:
    """``--confirmations N``: an anchor with fewer is no forgery but not final yet (VALID,
    exit 3, "verify again later"); with enough it counts; a bad value is a usage error."""
    bundle = chain.world.bundle(ASSET, to_ms=OPEN)
    done = verify(chain, bundle, tmp_path / "one.json", "--confirmations", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    done = verify(chain, bundle, tmp_path / "many.json", "--confirmations", "1000000")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "checked against: evm rpc, not final" in done.stdout
    assert done.stdout.splitlines()[-1] == (
        "VALID but anchor NOT final yet (fewer than 1000000 confirmations: verify again later)"
    )
    done = verify(chain, bundle, tmp_path / "json.json", "--confirmations", "1000000", "--json")
    facts = json.loads(done.stdout)
    assert (facts["exit"], facts["anchor"]["source"], facts["anchor"]["independent"]) == (
        3, "evm rpc, not final", False,
    )  # fmt: skip
    for bad, why in (("0", "must be 1 or more"), ("-3", "must be 1 or more")):
        done = verify(chain, bundle, tmp_path / "bad.json", "--confirmations", bad)
        assert done.returncode == 2, done.stdout + done.stderr
        assert why in done.stderr
    path = tmp_path / "local.json"
    path.write_bytes(bundle.to_bytes())
    done = subprocess.run(
        [sys.executable, "-m", "voltproof", "verify", str(path), "--gateway-key",
         chain.world.gateway_key, "--confirmations", "3"],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "give it with --rpc URL" in done.stderr
    assert "Traceback" not in done.stderr


def test_stale_checkpoint_on_chain_leaves_the_end_unproven(chain: Chain, tmp_path: Path) -> None:
    """The attack: the bundle on the older checkpoint, a larger tree anchored in a block dated
    before the period's end. The end proven by the head is withdrawn, the reason named."""
    report = check(chain, chain.open_lease)
    assert report.later_anchor is not None
    assert report.later_anchor.tree_size == report.checkpoint_size + 3
    assert report.later_anchor.anchored_at_ms == FIRST_LATER_S * 1000
    asset = asset_chain(report)
    assert (asset.end_proven, asset.complete, report.complete) == (False, False, False)
    assert asset.end_note.startswith(
        f"stale checkpoint: the ledger anchored a larger tree (size {report.checkpoint_size + 3})"
        f" at {FIRST_LATER_S * 1000} ms, before this chain's end {OPEN} ms"
    )
    done = verify(chain, chain.open_lease, tmp_path / "stale.json")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "checked against: evm rpc" in done.stdout
    assert "end: stale checkpoint" in done.stdout
    assert "ledger:      a larger tree" in done.stdout
    assert "Traceback" not in done.stderr


def test_later_anchor_mined_after_the_end_does_not_affect_it(chain: Chain) -> None:
    """A block dated at (or after) a chain's end, or within the grace before it, says nothing
    about the interval: complete. One millisecond beyond the grace the same block lies inside
    the interval, and the end is withdrawn."""
    at_end = check(chain, chain.ends_at_later)
    assert asset_chain(at_end).end_by == "head"
    assert at_end.later_anchor is not None
    assert at_end.later_anchor.anchored_at_ms == SECOND_LATER_S * 1000
    assert at_end.later_anchor.tree_size == at_end.checkpoint_size + 3
    assert at_end.complete, at_end.chains
    after_end = check(chain, chain.ends_after_later)
    asset = asset_chain(after_end)
    assert not asset.end_proven
    assert asset.end_note.startswith("stale checkpoint: the ledger anchored a larger tree")


def test_end_proven_by_an_after_message_is_unaffected(chain: Chain, tmp_path: Path) -> None:
    """A closed period whose end a later message proves stays complete: that message is in
    the log whatever was anchored later."""
    report = check(chain, chain.closed)
    assert report.later_anchor is not None
    assert report.later_anchor.anchored_at_ms < chain.closed.to_ms  # inside the period
    assert asset_chain(report).end_by == "after"
    assert report.complete, report.chains
    done = verify(chain, chain.closed, tmp_path / "closed.json")
    assert done.returncode == 0, done.stdout + done.stderr


def test_an_unreachable_node_is_a_named_error(chain: Chain) -> None:
    """The later-anchor scan against a node that does not answer raises AnchorUnavailable
    (the command line turns it into one error line and exit 1), never None."""
    receipt: AnchorReceipt = chain.open_lease.anchor.receipt
    with pytest.raises(AnchorUnavailable, match="EVM node unreachable"):
        asyncio.run(
            first_anchor_after(
                receipt, size=receipt.tree_size, rpc_url=DEAD_RPC,
                retry=RpcRetry(attempts=1),
            )
        )  # fmt: skip
    # A checker that never verified a receipt of the log refuses rather than say "nothing".
    with pytest.raises(AnchorNotFoundError, match="no receipt of log"):
        EvmAnchorChecker(rpc_url=chain.ledger.node.url).first_anchor_after(
            receipt.log_id, size=receipt.tree_size
        )


def test_node_gone_after_the_receipt_check_is_one_error_line(chain: Chain, tmp_path: Path) -> None:
    """The node answers the receipt check, then goes silent before the anchor's block time
    and the later anchors are read: ``voltproof verify`` says so on one line and exits 1,
    never a verdict without the stale-checkpoint check and never a traceback."""
    with SilencingRpcProxy(target=chain.ledger.node.url, method="eth_blockNumber", limit=1) as rpc:
        path = tmp_path / "stale.json"
        path.write_bytes(chain.open_lease.to_bytes())
        done = subprocess.run(
            [sys.executable, "-m", "voltproof", "verify", str(path), "--gateway-key",
             chain.world.gateway_key, "--rpc", rpc.url],
            capture_output=True, text=True, cwd=REPO, check=False, timeout=120,
        )  # fmt: skip
    assert rpc.silenced > 0
    assert done.returncode == 1, done.stdout + done.stderr
    assert "voltproof verify: error: the ledger could not be read: " in done.stderr
    assert "EVM node unreachable" in done.stderr
    assert "Traceback" not in done.stderr
    assert "VALID" not in done.stdout


def test_node_down_is_no_verdict_on_honest_evidence(chain: Chain, tmp_path: Path) -> None:
    """A node that never answers (a mistyped --rpc, a node down): one error line, exit 1, and
    never "INVALID": an honest bundle must not look forged because the ledger was away."""
    path = tmp_path / "honest.json"
    path.write_bytes(chain.open_lease.to_bytes())
    done = subprocess.run(
        [sys.executable, "-m", "voltproof", "verify", str(path), "--gateway-key",
         chain.world.gateway_key, "--rpc", DEAD_RPC],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "voltproof verify: error: the ledger could not be read: cannot check the anchor" in (
        done.stderr
    )
    assert "INVALID" not in done.stderr
    assert "Traceback" not in done.stderr


def scan(
    chain: Chain,
    receipt: AnchorReceipt,
    size: int,
    *,
    confirmations: int = 1,
    blocks_per_query: int = BLOCKS_PER_QUERY,
) -> LaterAnchor | None:
    """``first_anchor_after`` on the chain's node."""
    return asyncio.run(
        first_anchor_after(
            receipt, size=size, rpc_url=chain.ledger.node.url, confirmations=confirmations,
            blocks_per_query=blocks_per_query,
        )
    )  # fmt: skip


@pytest.mark.parametrize("blocks_per_query", [1, 2, BLOCKS_PER_QUERY])
def test_scan_finds_the_first_larger_tree_in_any_window(
    chain: Chain, blocks_per_query: int
) -> None:
    """Forward from the receipt's block (checkpoint = anchored tree) and backward from it
    (checkpoint smaller than the anchored tree, as a bundle with a consistency proof to a
    later anchor has), the answer is the same whatever the ``eth_getLogs`` window."""
    first = chain.open_lease.anchor.receipt  # size N, anchored in the first stage
    second = chain.ends_at_later.anchor.receipt  # size N + 3, dated FIRST_LATER_S
    n = first.tree_size
    assert second.tree_size == n + 3
    grew = LaterAnchor(
        tree_size=n + 3, anchored_at_ms=FIRST_LATER_S * 1000, grace_ms=EVM_LATER_ANCHOR_GRACE_MS
    )
    last = LaterAnchor(
        tree_size=n + 6, anchored_at_ms=SECOND_LATER_S * 1000, grace_ms=EVM_LATER_ANCHOR_GRACE_MS
    )
    assert scan(chain, first, n, blocks_per_query=blocks_per_query) == grew
    assert scan(chain, second, n + 3, blocks_per_query=blocks_per_query) == last
    # Backward: the receipt's own anchor is the first larger tree ...
    assert scan(chain, second, n, blocks_per_query=blocks_per_query) == grew
    assert scan(chain, second, n + 2, blocks_per_query=blocks_per_query) == grew
    # ... or, below the first anchor's size, the scan goes past it back to that anchor.
    backward = scan(chain, second, n - 1, blocks_per_query=blocks_per_query)
    assert backward is not None
    assert backward.tree_size == n
    assert backward.anchored_at_ms < FIRST_LATER_S * 1000


def test_an_unconfirmed_later_anchor_does_not_count(chain: Chain) -> None:
    """The newest anchor has ``depth`` confirmations (its block counts as one). Asked for one
    more, the scan does not count it (the confirmations the receipt check requires, the same
    depth rule)."""
    second = chain.ends_at_later.anchor.receipt
    newest = chain.world.bundle(ASSET, to_ms=OPEN).anchor.receipt
    head = int(chain.ledger.node.rpc("eth_blockNumber"), 16)
    depth = head - int(newest.details["block_number"]) + 1
    found = scan(chain, second, second.tree_size, confirmations=depth)
    assert found is not None
    assert found.tree_size == newest.tree_size
    assert scan(chain, second, second.tree_size, confirmations=depth + 1) is None


def test_an_anchor_reorganised_away_does_not_count(chain: Chain) -> None:
    """Only the canonical chain counts: a larger tree anchored in a block the node then
    reorganises away (anvil's snapshot and revert, new blocks mined at the same heights)
    is no later anchor."""
    newest = chain.world.bundle(ASSET, to_ms=OPEN).anchor.receipt
    size = newest.tree_size
    assert scan(chain, newest, size) is None
    node = chain.ledger.node

    async def anchor_on_a_branch() -> object:
        snapshot = await node.arpc("evm_snapshot")
        backend = await EvmAnchorBackend.connect(
            rpc_url=node.url, contract=chain.ledger.contract, key=chain.ledger.writer,
            store=await EvmTxStore.open(":memory:"), confirmations=1, owns_store=True,
        )  # fmt: skip
        async with backend:
            await backend.submit(
                AnchorRequest(log_id=newest.log_id, tree_size=size + 1, root=bytes([7]) * 32)
            )
        return snapshot

    snapshot = asyncio.run(anchor_on_a_branch())
    branch = scan(chain, newest, size)
    assert branch is not None
    assert branch.tree_size == size + 1
    assert node.rpc("evm_revert", snapshot) is True
    node.rpc("evm_mine")
    node.rpc("evm_mine")
    assert scan(chain, newest, size) is None
