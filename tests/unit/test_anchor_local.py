"""The local anchor table: the shared contract, durability, and offline verification of exports."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from nacl.signing import SigningKey

from ledger.anchors import (
    AnchorBackend,
    AnchorChainError,
    AnchorEntryHashError,
    AnchorExportError,
    AnchorNotFinalError,
    AnchorNotFoundError,
    AnchorReceipt,
    AnchorReceiptMismatchError,
    AnchorRootMismatchError,
    AnchorSignatureError,
    AnchorSizeError,
    AnchorState,
    AnchorUnavailable,
    AnchorVerificationError,
    LocalAnchorBackend,
    verify_local_anchor,
)
from ledger.anchors.local_entry import LocalEntry
from tests.support.anchor_contract import LOG_A, LOG_B, AnchorContract, request

pytestmark = pytest.mark.asyncio

SEED = bytes(range(32))
OTHER_SEED = bytes(range(1, 33))
PUBLIC_KEY = bytes(SigningKey(SEED).verify_key)


def verifier_key(name: str, public_key: bytes) -> str:
    """The C2SP verifier key of ``public_key`` (written out here to test the parser)."""
    key = b"\x01" + public_key
    key_id = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    return f"{name}+{key_id.hex()}+{base64.b64encode(key).decode()}"


class Clock:
    """A fake millisecond clock that ticks by one second per reading."""

    def __init__(self) -> None:
        self.now = 1_700_000_000_000

    def __call__(self) -> int:
        self.now += 1000
        return self.now


@dataclass
class LocalHarness:
    """Backends on one SQLite file, each a fresh connection (a restart)."""

    path: Path
    min_steps: int = 0
    max_steps: int = 0
    opened: list[LocalAnchorBackend] = field(default_factory=list)

    async def _open(self, seed: bytes) -> LocalAnchorBackend:
        backend = await LocalAnchorBackend.open(self.path, seed=seed, clock_ms=Clock())
        self.opened.append(backend)
        return backend

    async def open(self) -> AnchorBackend:
        return await self._open(SEED)

    async def open_unauthorised(self) -> AnchorBackend:
        await self._open(SEED)  # the table belongs to the key that created it
        return await self._open(OTHER_SEED)

    async def advance(self) -> None:
        return None

    async def anchor_count(self, log_id: bytes) -> int:
        with sqlite3.connect(self.path) as db:
            (count,) = db.execute(
                "SELECT COUNT(*) FROM anchors WHERE log_id = ?", (log_id,)
            ).fetchone()
        return int(count)


@pytest_asyncio.fixture
async def harness(tmp_path: Path) -> AsyncIterator[LocalHarness]:
    """A fresh anchor table in a temporary directory."""
    harness = LocalHarness(path=tmp_path / "anchors.sqlite3")
    yield harness
    for backend in harness.opened:
        await backend.aclose()


class TestLocalContract(AnchorContract):
    """The shared contract over the local backend."""


@pytest_asyncio.fixture
async def table(tmp_path: Path) -> AsyncIterator[LocalAnchorBackend]:
    """A local table holding three anchors over two logs."""
    async with await LocalAnchorBackend.open(
        tmp_path / "anchors.sqlite3", seed=SEED, clock_ms=Clock()
    ) as backend:
        for req in (request(1), request(1, log_id=LOG_B), request(4)):
            await backend.submit(req)
        yield backend


async def test_entries_are_chained_and_signed(table: LocalAnchorBackend) -> None:
    """Each entry links to the previous entry's hash and is signed by the gateway key."""
    entries = await table.entries()
    assert [e.sequence for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == bytes(32)
    assert [e.prev_hash for e in entries[1:]] == [e.entry_hash for e in entries[:-1]]
    for entry in entries:
        assert entry.computed_hash() == entry.entry_hash
        SigningKey(SEED).verify_key.verify(entry.entry_hash, entry.signature)


async def test_receipt_is_final_with_entry_details(table: LocalAnchorBackend) -> None:
    """A committed anchor is final and its receipt carries the entry's fields."""
    receipt = await table.get(LOG_A, 4)
    assert receipt is not None
    assert receipt.state is AnchorState.FINAL
    assert receipt.details["sequence"] == 3
    assert receipt.details["anchored_at_ms"] == 1_700_000_003_000


async def test_anchors_survive_reopen(tmp_path: Path) -> None:
    """A committed anchor is still there after the database is closed and reopened."""
    path = tmp_path / "a.sqlite3"
    async with await LocalAnchorBackend.open(path, seed=SEED) as backend:
        first = await backend.submit(request(3))
    async with await LocalAnchorBackend.open(path, seed=SEED) as backend:
        assert await backend.get(LOG_A, 3) == first
        assert backend.public_key == PUBLIC_KEY


async def test_locked_database_is_unavailable(tmp_path: Path) -> None:
    """A write while another process holds the write lock raises AnchorUnavailable."""
    path = tmp_path / "a.sqlite3"
    async with await LocalAnchorBackend.open(path, seed=SEED, busy_timeout_ms=10) as backend:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(
                AnchorUnavailable, match="anchor table write failed: database is locked"
            ):
                await backend.submit(request(1))
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert (await backend.submit(request(1))).state is AnchorState.FINAL


async def test_unopenable_path_is_unavailable(tmp_path: Path) -> None:
    """A database path that cannot be opened raises AnchorUnavailable."""
    with pytest.raises(AnchorUnavailable, match="cannot open anchor table"):
        await LocalAnchorBackend.open(tmp_path / "missing" / "a.sqlite3", seed=SEED)


async def test_short_seed_is_refused(tmp_path: Path) -> None:
    """The signing seed must be 32 bytes."""
    with pytest.raises(ValueError, match="seed must be 32 bytes, got 31"):
        await LocalAnchorBackend.open(tmp_path / "a.sqlite3", seed=SEED[:31])


async def test_repr_shows_no_seed(table: LocalAnchorBackend) -> None:
    """The backend's repr names the public key, never the seed."""
    assert SEED.hex() not in repr(table)
    assert PUBLIC_KEY.hex() in repr(table)


# --- offline verification of the export ---------------------------------------------------


async def exported(
    table: LocalAnchorBackend, tmp_path: Path
) -> tuple[AnchorReceipt, dict[str, Any]]:
    """The receipt for size 4 and the export written to (and read back from) a file."""
    path = tmp_path / "anchors.json"
    document = await table.export(path)
    assert json.loads(path.read_text(encoding="utf-8")) == document
    receipt = await table.get(LOG_A, 4)
    assert receipt is not None
    return receipt, json.loads(path.read_text(encoding="utf-8"))


async def test_export_verifies(table: LocalAnchorBackend, tmp_path: Path) -> None:
    """An untouched export verifies under the C2SP verifier key and the raw public key."""
    receipt, document = await exported(table, tmp_path)
    verify_local_anchor(
        receipt, export=document, gateway_verifier_key=verifier_key("gw", PUBLIC_KEY)
    )
    verify_local_anchor(receipt, export=json.dumps(document), gateway_verifier_key=PUBLIC_KEY)


TAMPERS: list[tuple[str, object, type[AnchorVerificationError], str]] = [
    ("sequence", 7, AnchorChainError, "entry 1 has sequence 7, expected 2"),
    ("log_id", "55" * 32, AnchorEntryHashError, "entry 2 states hash"),
    ("tree_size", 2, AnchorEntryHashError, "entry 2 states hash"),
    ("root", "11" * 32, AnchorEntryHashError, "entry 2 states hash"),
    ("anchored_at_ms", 5, AnchorEntryHashError, "entry 2 states hash"),
    ("prev_hash", "22" * 32, AnchorChainError, "entry 2 links to 2222"),
    ("entry_hash", "33" * 32, AnchorEntryHashError, "entry 2 states hash 3333"),
    ("signature", "44" * 64, AnchorSignatureError, "entry 2 signature does not verify"),
]


@pytest.mark.parametrize("tamper", TAMPERS, ids=[t[0] for t in TAMPERS])
async def test_tampered_entry_field_is_caught(
    table: LocalAnchorBackend,
    tmp_path: Path,
    tamper: tuple[str, object, type[AnchorVerificationError], str],
) -> None:
    """Changing any field of any entry (here the second) is caught with the right error."""
    name, value, error, message = tamper
    receipt, document = await exported(table, tmp_path)
    document["entries"][1][name] = value
    with pytest.raises(error, match=message):
        verify_local_anchor(receipt, export=document, gateway_verifier_key=PUBLIC_KEY)


async def test_resigned_shrinking_table_is_caught(tmp_path: Path) -> None:
    """Even a validly signed table is refused if a log's size does not grow."""
    key = SigningKey(SEED)
    first = LocalEntry.create(
        sequence=1, log_id=LOG_A, tree_size=5, root=bytes([1]) * 32,
        anchored_at_ms=1, prev_hash=bytes(32), signing_key=key,
    )  # fmt: skip
    second = LocalEntry.create(
        sequence=2, log_id=LOG_A, tree_size=5, root=bytes([2]) * 32,
        anchored_at_ms=2, prev_hash=first.entry_hash, signing_key=key,
    )  # fmt: skip
    document = {
        "format": "voltproof-local-anchors/1",
        "entries": [first.to_dict(), second.to_dict()],
    }
    receipt = AnchorReceipt(
        backend="local", log_id=LOG_A, tree_size=5, root=first.root,
        state=AnchorState.FINAL, details=first.details(),
    )  # fmt: skip
    with pytest.raises(AnchorSizeError, match=r"entry 2 anchors size 5 of log .* after size 5"):
        verify_local_anchor(receipt, export=document, gateway_verifier_key=PUBLIC_KEY)


async def test_removed_entry_breaks_chain(table: LocalAnchorBackend, tmp_path: Path) -> None:
    """Deleting an entry from the middle breaks the sequence."""
    receipt, document = await exported(table, tmp_path)
    del document["entries"][1]
    with pytest.raises(AnchorChainError, match="entry 1 has sequence 3, expected 2"):
        verify_local_anchor(receipt, export=document, gateway_verifier_key=PUBLIC_KEY)


async def test_wrong_gateway_key_is_caught(table: LocalAnchorBackend, tmp_path: Path) -> None:
    """An export signed by another key fails under the trusted key."""
    receipt, document = await exported(table, tmp_path)
    other = bytes(SigningKey(OTHER_SEED).verify_key)
    with pytest.raises(AnchorSignatureError, match="entry 1 signature does not verify"):
        verify_local_anchor(receipt, export=document, gateway_verifier_key=other)


RECEIPT_TAMPERS: list[tuple[dict[str, object], type[AnchorVerificationError], str]] = [
    ({"tree_size": 3}, AnchorNotFoundError, "no entry for log .* size 3"),
    ({"root": bytes(31) + b"\x01"}, AnchorRootMismatchError, "receipt says 0000"),
    ({"backend": "evm"}, AnchorReceiptMismatchError, "backend 'evm', not 'local'"),
    ({"state": AnchorState.PENDING}, AnchorNotFinalError, "not final"),
]


@pytest.mark.parametrize(("change", "error", "message"), RECEIPT_TAMPERS)
async def test_tampered_receipt_is_caught(
    table: LocalAnchorBackend,
    tmp_path: Path,
    change: dict[str, object],
    error: type[AnchorVerificationError],
    message: str,
) -> None:
    """A receipt that disagrees with the table is caught."""
    receipt, document = await exported(table, tmp_path)
    fields: dict[str, Any] = {
        "backend": receipt.backend, "log_id": receipt.log_id, "tree_size": receipt.tree_size,
        "root": receipt.root, "state": receipt.state, "details": receipt.details,
    }  # fmt: skip
    fields.update(change)
    with pytest.raises(error, match=message):
        verify_local_anchor(
            AnchorReceipt(**fields), export=document, gateway_verifier_key=PUBLIC_KEY
        )


@pytest.mark.parametrize(
    "detail", ["sequence", "anchored_at_ms", "prev_hash", "entry_hash", "signature"]
)
async def test_tampered_receipt_detail_is_caught(
    table: LocalAnchorBackend, tmp_path: Path, detail: str
) -> None:
    """Each receipt detail must equal the table's entry."""
    receipt, document = await exported(table, tmp_path)
    details = dict(receipt.details)
    details[detail] = 0 if isinstance(details[detail], int) else "00"
    forged = AnchorReceipt(
        backend="local", log_id=receipt.log_id, tree_size=receipt.tree_size,
        root=receipt.root, state=receipt.state, details=details,
    )  # fmt: skip
    with pytest.raises(AnchorReceiptMismatchError, match=f"receipt {detail} is"):
        verify_local_anchor(forged, export=document, gateway_verifier_key=PUBLIC_KEY)


MALFORMED: list[tuple[object, str]] = [
    ("not json", "anchor export is not JSON"),
    ([], "must be a JSON object"),
    ({"format": "other", "entries": []}, "format must be 'voltproof-local-anchors/1'"),
    ({"format": "voltproof-local-anchors/1"}, "has no list of entries"),
    ({"format": "voltproof-local-anchors/1", "entries": [1]}, "entry 0 is not an object"),
    (
        {"format": "voltproof-local-anchors/1", "entries": [{"sequence": 1}]},
        "entry 0: log_id must be hex",
    ),
]


@pytest.mark.parametrize(("export", "message"), MALFORMED)
async def test_malformed_export_is_caught(
    table: LocalAnchorBackend, export: object, message: str
) -> None:
    """A document that is not a local anchor export is refused with the reason."""
    receipt = await table.get(LOG_A, 4)
    assert receipt is not None
    document = json.dumps(export) if not isinstance(export, str) else export
    with pytest.raises(AnchorExportError, match=message):
        verify_local_anchor(receipt, export=document, gateway_verifier_key=PUBLIC_KEY)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("gw+00000000", "malformed"),
        ("gw+zz+AAAA", "not valid hex/base64"),
        ("gw+00000000+" + base64.b64encode(b"\x02" + PUBLIC_KEY).decode(), "not an Ed25519 key"),
        (
            "gw+00000000+" + base64.b64encode(b"\x01" + PUBLIC_KEY).decode(),
            "key id 00000000 does not match",
        ),
    ],
)
async def test_bad_verifier_key_is_refused(
    table: LocalAnchorBackend, key: str, message: str
) -> None:
    """A malformed gateway verifier key is refused before anything is trusted."""
    receipt = await table.get(LOG_A, 4)
    assert receipt is not None
    with pytest.raises(AnchorVerificationError, match=message):
        verify_local_anchor(receipt, export={}, gateway_verifier_key=key)


async def test_short_raw_key_is_refused(table: LocalAnchorBackend) -> None:
    """A raw public key must be 32 bytes."""
    receipt = await table.get(LOG_A, 4)
    assert receipt is not None
    with pytest.raises(AnchorVerificationError, match="must be 32 bytes"):
        verify_local_anchor(receipt, export={}, gateway_verifier_key=PUBLIC_KEY[:31])
