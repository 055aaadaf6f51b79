"""``voltproof anchors``: deploy an AnchorRegistry, verify a checkpoint's anchor, show status;
export a local anchor table for offline verification.

Exit codes (:mod:`voltproof.cli.exits`): 0 success or valid, 1 invalid or failed, 2 usage
error (including an unreadable key or checkpoint file).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from .exits import CommandFailedError, ExitCode, InvalidEvidenceError, UsageError
from .options import add_deployment_options, command, evm_address, url

KEY_ENV = "VOLTPROOF_EVM_KEY"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``anchors deploy|verify|status|export`` to the ``voltproof`` parser."""
    anchors = subparsers.add_parser(
        "anchors",
        help="deploy the AnchorRegistry contract and check anchors on an EVM chain",
        description="Deploy the AnchorRegistry contract and check checkpoint anchors on a chain.",
    )
    sub = anchors.add_subparsers(dest="anchors_command", required=True, metavar="ACTION")

    deploy = sub.add_parser(
        "deploy",
        help="deploy a new AnchorRegistry and print its address",
        description=(
            "Deploy a new AnchorRegistry owned by the key's account, authorise the writers "
            "(default: that account) and print the contract address."
        ),
    )
    _chain_options(deploy)
    key = deploy.add_mutually_exclusive_group()
    key.add_argument("--key-file", type=Path, help="file holding the hex private key")
    key.add_argument(
        "--key-env",
        default=KEY_ENV,
        help=f"environment variable holding the hex private key (default {KEY_ENV})",
    )
    deploy.add_argument(
        "--writer",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="account allowed to anchor (repeatable; default: the deploying account)",
    )
    deploy.add_argument(
        "--confirmations", type=int, default=1, help="wait for N confirmations (default 1)"
    )
    command(deploy, _deploy)

    verify = sub.add_parser(
        "verify",
        help="check that the chain holds a checkpoint's root at its size",
        description=(
            "Exit 0 if the registry holds the checkpoint's root at its tree size with enough "
            "confirmations; else exit 1 with the reason."
        ),
    )
    verify.add_argument("--checkpoint", type=Path, required=True, help="signed checkpoint file")
    _chain_options(verify)
    verify.add_argument(
        "--contract", required=True, type=evm_address, help="AnchorRegistry address"
    )
    verify.add_argument(
        "--gateway-key", help="also verify the checkpoint's signature with this verifier key"
    )
    verify.add_argument(
        "--confirmations", type=int, default=1, help="confirmations required (default 1)"
    )
    command(verify, _verify)

    status = sub.add_parser(
        "status",
        help="show what a registry holds for a log",
        description="Show the anchors an AnchorRegistry holds for the log named ORIGIN.",
    )
    _chain_options(status)
    status.add_argument(
        "--contract", required=True, type=evm_address, help="AnchorRegistry address"
    )
    status.add_argument("--origin", required=True, help="the log's origin string")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    command(status, _status)

    export = sub.add_parser(
        "export",
        help="write the local anchor table as the JSON file lessors verify against",
        description=(
            "Export a local-ledger deployment's anchor table (gateway/anchors.db) as the "
            "JSON file 'voltproof verify --anchors FILE' checks a bundle against. Publish "
            "it somewhere the operator cannot rewrite unnoticed (lessors keep their copies)."
        ),
    )
    add_deployment_options(export, workdir_help="deployment directory holding gateway.toml")
    export.add_argument("--out", type=Path, required=True, metavar="FILE", help="export file")
    command(export, _export)


def _export(args: argparse.Namespace) -> int:
    from gateway.config import AnchorBackendName, ConfigError, load_settings
    from ledger.anchors.errors import AnchorError
    from ledger.anchors.local import LocalAnchorBackend
    from ledger.keys import KeyFileError, load_key_file

    try:
        settings = load_settings(args.config, workdir=args.workdir)
        key = load_key_file(settings.key_file)
    except (ConfigError, KeyFileError) as exc:
        raise UsageError(exc) from exc
    if settings.anchors.backend is not AnchorBackendName.LOCAL:
        raise UsageError(
            f"anchors.backend is {settings.anchors.backend.value!r}: only a local anchor "
            "table is exported (lessors of an EVM deployment give verify --rpc)"
        )
    table = settings.data_dir / "anchors.db"
    if not table.is_file():
        raise CommandFailedError(f"no anchor table at {table}: has the gateway anchored yet?")

    async def export() -> int:
        backend = await LocalAnchorBackend.open(table, seed=key.seed)
        try:
            document = await backend.export(args.out)
        finally:
            await backend.aclose()
        entries = document["entries"]
        return len(entries) if isinstance(entries, list) else 0

    try:
        count = asyncio.run(export())
    except AnchorError as exc:
        raise CommandFailedError(exc) from exc
    except OSError as exc:
        raise CommandFailedError(f"cannot write {args.out}: {exc.strerror}") from exc
    print(f"{count} anchors exported to {args.out}")
    return ExitCode.OK


def _chain_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rpc", required=True, type=url, metavar="URL", help="JSON-RPC URL of the node"
    )
    parser.add_argument(
        "--poa", action="store_true", help="the chain is proof-of-authority (long extraData)"
    )


def _deploy(args: argparse.Namespace) -> int:
    from ledger.anchors.errors import AnchorError
    from ledger.anchors.evm import make_web3
    from ledger.anchors.evm_deploy import deploy_registry
    from ledger.anchors.evm_key import EvmKeyError, load_evm_key

    try:
        key = load_evm_key(key_file=args.key_file, env_var=None if args.key_file else args.key_env)
    except EvmKeyError as exc:
        raise UsageError(exc) from exc

    async def run() -> str:
        w3 = make_web3(args.rpc, poa=args.poa)
        try:
            deployed = await deploy_registry(
                w3,
                key=key,
                writers=args.writer or [key.address],
                confirmations=args.confirmations,
            )
        finally:
            await w3.provider.disconnect()
        return deployed.address

    try:
        address = asyncio.run(run())
    except AnchorError as exc:
        raise CommandFailedError(exc) from exc
    print(address)
    return ExitCode.OK


def _verify(args: argparse.Namespace) -> int:
    from ledger.anchors.base import AnchorRequest, log_id_for
    from ledger.anchors.evm_verify import verify_chain_holds
    from ledger.checkpoint import parse_checkpoint, verify_checkpoint
    from ledger.errors import VerificationError

    try:
        note = args.checkpoint.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {args.checkpoint}: {exc}") from exc
    try:
        if args.gateway_key:
            checkpoint = verify_checkpoint(note, verifier_key=args.gateway_key)
        else:
            body, _, _ = note.partition("\n\n")
            checkpoint = parse_checkpoint(body + "\n")
        request = AnchorRequest(
            log_id=log_id_for(checkpoint.origin), tree_size=checkpoint.size, root=checkpoint.root
        )
        inclusion = asyncio.run(
            verify_chain_holds(
                request,
                rpc_url=args.rpc,
                contract=args.contract,
                confirmations=args.confirmations,
                poa=args.poa,
            )
        )
    except VerificationError as exc:
        raise InvalidEvidenceError(exc) from exc
    print(
        f"valid: {checkpoint.origin} size {checkpoint.size} anchored in block "
        f"{inclusion.block_number} (tx 0x{inclusion.tx_hash.hex()})"
    )
    return ExitCode.OK


def _status(args: argparse.Namespace) -> int:
    from ledger.anchors.base import log_id_for
    from ledger.anchors.errors import AnchorError
    from ledger.anchors.evm import make_web3
    from ledger.anchors.evm_chain import RegistryView
    from ledger.anchors.evm_rpc import RpcRetry

    async def run() -> dict[str, object]:
        w3 = make_web3(args.rpc, poa=args.poa)
        view = RegistryView(w3=w3, address=args.contract, retry=RpcRetry(attempts=2))
        log_id = log_id_for(args.origin)
        try:
            events = await view.events(log_id)
            head = await view.head()
            latest = await view.latest_size(log_id)
        finally:
            await w3.provider.disconnect()
        return {
            "origin": args.origin,
            "log_id": log_id.hex(),
            "contract": view.contract.address,
            "latest_size": latest,
            "anchors": [
                {
                    "tree_size": e.tree_size,
                    "root": e.root.hex(),
                    "block_number": e.block_number,
                    "tx_hash": "0x" + e.tx_hash.hex(),
                    "confirmations": head - e.block_number + 1,
                }
                for e in events
            ],
        }

    try:
        status = asyncio.run(run())
    except AnchorError as exc:
        raise CommandFailedError(exc) from exc
    if args.json:
        print(json.dumps(status, indent=2))
        return ExitCode.OK
    print(f"log {status['origin']} ({status['log_id']}) on {status['contract']}")
    print(f"latest anchored size: {status['latest_size']}")
    anchors = status["anchors"]
    assert isinstance(anchors, list)
    for anchor in anchors:
        print(
            f"  size {anchor['tree_size']}: block {anchor['block_number']}, "
            f"{anchor['confirmations']} confirmations, tx {anchor['tx_hash']}"
        )
    return ExitCode.OK
