"""``voltproof manufacturer keys new|certify``: a manufacturer key and device birth certificates.

A manufacturer key is an ordinary Ed25519 key file (``ledger.keys``); its verifier key
(``<name>+<hex key id>+<base64(0x01 ‖ key)>``) is what a lessor passes to
``voltproof verify --manufacturer``. ``certify`` writes a birth certificate
(``ledger.birth``) that ``voltproof devices enroll --birth FILE`` puts into the enrolment.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from .exits import CommandFailedError, ExitCode, UsageError
from .options import command, parse_time


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``manufacturer`` and its actions to the ``voltproof`` parser."""
    manufacturer = subparsers.add_parser(
        "manufacturer",
        help="create a manufacturer key and certify device keys (birth certificates)",
        description="A manufacturer key signs birth certificates: COSE_Sign1 statements of "
        "a device's id, serial, kind and public key, carried by its enrolment.",
    )
    actions = manufacturer.add_subparsers(dest="manufacturer_command", required=True,
                                          metavar="ACTION")  # fmt: skip
    keys = actions.add_parser("keys", help="manufacturer key files")
    keys_actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    new = keys_actions.add_parser(
        "new",
        help="write a new manufacturer key (mode 0600) and print its verifier key",
        description="Write a new Ed25519 manufacturer key to FILE (mode 0600, never "
        "overwriting) and print the verifier key to give to lessors (--manufacturer).",
    )
    new.add_argument("--name", required=True, help="the manufacturer's key name (no space, +)")
    new.add_argument("--out", type=Path, required=True, metavar="FILE", help="new key file")
    command(new, _keys_new)

    certify = actions.add_parser(
        "certify",
        help="write a birth certificate for a device key",
        description="Sign a birth certificate over {dev, serial, kind, key, made_at} with "
        "the manufacturer key and write it (raw COSE bytes) to CERT.",
    )
    certify.add_argument("--key", type=Path, required=True, metavar="FILE",
                         help="the manufacturer key file")  # fmt: skip
    certify.add_argument("--id", dest="device_id", required=True, help="device id")
    certify.add_argument("--kind", required=True, choices=("bus", "pack"), help="device kind")
    certify.add_argument("--serial", required=True, help="the manufacturer's serial number")
    certify.add_argument("--public-key", required=True, help="the device's base64 public key")
    certify.add_argument("--made-at", type=parse_time, metavar="TIME",
                         help="when the key was made (ISO 8601 or Unix ms; now)")  # fmt: skip
    certify.add_argument("--out", type=Path, required=True, metavar="CERT",
                         help="where to write the certificate (never overwritten)")  # fmt: skip
    command(certify, _certify)


def _keys_new(args: argparse.Namespace) -> int:
    from ledger.keys import KeyFileError, create_key_file

    try:
        # missing folders are made 0700, as 'keys new' does; existing ones are left alone
        args.out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise CommandFailedError(f"cannot create {args.out.parent}: {exc.strerror}") from exc
    try:
        key = create_key_file(args.out, name=args.name)
    except KeyFileError as exc:
        raise CommandFailedError(exc) from exc
    print(key.verifier_key)
    return ExitCode.OK


def _certify(args: argparse.Namespace) -> int:
    from gateway.registry import RegistryError, decode_public_key
    from ledger.birth import BirthCertificateError, certify_device
    from ledger.keys import KeyFileError, load_key_file

    try:
        key = load_key_file(args.key)
    except KeyFileError as exc:
        raise UsageError(exc) from exc
    try:
        public_key = decode_public_key(args.public_key, what="--public-key")
    except RegistryError as exc:
        raise UsageError(exc) from exc
    made_at = args.made_at if args.made_at is not None else time.time_ns() // 1_000_000
    try:
        certificate = certify_device(
            seed=key.seed, manufacturer=key.name, device=args.device_id, serial=args.serial,
            kind=args.kind, key=public_key, made_at_ms=made_at,
        )  # fmt: skip
    except BirthCertificateError as exc:
        raise UsageError(exc) from exc
    _write_new(args.out, certificate)
    print(f"certified {args.device_id} ({args.kind}, serial {args.serial}) by {key.name}: "
          f"{args.out}")  # fmt: skip
    return ExitCode.OK


def _write_new(path: Path, data: bytes) -> None:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError as exc:
        raise CommandFailedError(f"{path} already exists; refusing to overwrite it") from exc
    except OSError as exc:
        raise CommandFailedError(f"cannot write {path}: {exc.strerror}") from exc
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
