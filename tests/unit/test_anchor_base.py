"""Anchor value types (requests, receipts and their JSON) and the EVM key loader."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given

from ledger.anchors import (
    AnchorFormatError,
    AnchorReceipt,
    AnchorRequest,
    AnchorState,
    AnchorUnavailable,
    log_id_for,
)
from ledger.anchors.evm import make_web3
from ledger.anchors.evm_key import EvmKey, EvmKeyError, load_evm_key
from ledger.anchors.evm_rpc import RPC_BACKOFF, RpcRetry, call_rpc
from ledger.backoff import Backoff, BackoffConfigError
from tests.support.strategies import anchor_receipts
from voltproof.broker import free_port

HASH = bytes(range(32))
KEY_HEX = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


def receipt(**changes: object) -> AnchorReceipt:
    """A valid local receipt with some fields replaced."""
    fields: dict[str, object] = {
        "backend": "local", "log_id": HASH, "tree_size": 3, "root": HASH,
        "state": AnchorState.FINAL, "details": {"sequence": 1, "entry_hash": "ab"},
    }  # fmt: skip
    fields.update(changes)
    return AnchorReceipt(**fields)  # type: ignore[arg-type]  # fields are checked at runtime


def test_log_id_is_sha256_of_origin() -> None:
    """The log id is SHA-256 of the UTF-8 origin."""
    assert (
        log_id_for("voltproof.example/gw-1") == hashlib.sha256(b"voltproof.example/gw-1").digest()
    )
    with pytest.raises(ValueError, match="origin must not be empty"):
        log_id_for("")


@pytest.mark.parametrize(
    ("log_id", "size", "root", "message"),
    [
        (HASH[:31], 1, HASH, "log id must be 32 bytes, got 31"),
        (HASH, -1, HASH, "tree size -1 is not an unsigned 64-bit integer"),
        (HASH, 2**64, HASH, "is not an unsigned 64-bit integer"),
        (HASH, True, HASH, "tree size True is not"),
        (HASH, 1, HASH + b"x", "root must be 32 bytes, got 33"),
    ],
)
def test_request_validates_fields(log_id: bytes, size: int, root: bytes, message: str) -> None:
    """Requests refuse wrong lengths and sizes outside uint64."""
    with pytest.raises(ValueError, match=message):
        AnchorRequest(log_id=log_id, tree_size=size, root=root)


@given(original=anchor_receipts())
def test_receipt_json_round_trip(original: AnchorReceipt) -> None:
    """Any receipt survives to_json/from_json."""
    assert AnchorReceipt.from_json(original.to_json()) == original


def test_receipt_details_are_read_only() -> None:
    """Receipt details cannot be changed after construction."""
    made = receipt()
    with pytest.raises(TypeError):
        made.details["sequence"] = 2  # type: ignore[index]  # the point: it is read-only


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"backend": ""}, "receipt backend must not be empty"),
        ({"details": {"x": True}}, "receipt detail 'x' must map"),
        ({"details": {"x": 1.5}}, "receipt detail 'x' must map"),
        ({"state": "lost"}, "'lost' is not a valid AnchorState"),
    ],
)
def test_receipt_validates_fields(changes: dict[str, object], message: str) -> None:
    """Receipts refuse empty backends, odd detail values and unknown states."""
    with pytest.raises(ValueError, match=message):
        receipt(**changes)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "x"}, "receipt format must be"),
        ({"backend": 1}, "receipt backend must be text"),
        ({"tree_size": "3"}, "receipt tree_size must be an integer"),
        ({"state": "gone"}, "receipt state must be pending or final"),
        ({"details": []}, "receipt details must be an object"),
        ({"log_id": 5}, "receipt log_id must be hex text"),
        ({"root": "zz"}, "receipt root is not hex"),
    ],
)
def test_receipt_json_errors_name_the_field(change: dict[str, object], message: str) -> None:
    """Malformed receipt JSON is refused naming the bad field."""
    data = {**receipt().to_dict(), **change}
    with pytest.raises(AnchorFormatError, match=message):
        AnchorReceipt.from_json(json.dumps(data))


def test_receipt_json_must_be_object() -> None:
    """A JSON array is not a receipt."""
    with pytest.raises(AnchorFormatError, match="receipt JSON must be an object"):
        AnchorReceipt.from_json("[]")


def test_key_from_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys load from a hex file (with 0x and newline) or an environment variable."""
    path = tmp_path / "k"
    path.write_text("0x" + KEY_HEX + "\n", encoding="ascii")
    from_file = load_evm_key(key_file=path)
    monkeypatch.setenv("TEST_EVM_KEY", KEY_HEX)
    assert load_evm_key(env_var="TEST_EVM_KEY").address == from_file.address
    assert KEY_HEX not in repr(from_file)
    assert KEY_HEX not in str(from_file)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", "must be 64 hex digits"),
        ("zz" * 32, "EVM private key is not hex"),
        ("00" * 32, "not a valid secp256k1 key"),
    ],
)
def test_bad_key_text_is_refused(text: str, message: str) -> None:
    """Malformed keys are refused without echoing them."""
    with pytest.raises(EvmKeyError, match=message) as info:
        EvmKey.from_hex(text)
    assert text not in str(info.value)


def test_missing_key_sources_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing file, an empty variable or no source at all are refused."""
    with pytest.raises(EvmKeyError, match="cannot read EVM key file"):
        load_evm_key(key_file=tmp_path / "missing")
    monkeypatch.delenv("TEST_EVM_KEY_EMPTY", raising=False)
    with pytest.raises(EvmKeyError, match="TEST_EVM_KEY_EMPTY holds no EVM private key"):
        load_evm_key(env_var="TEST_EVM_KEY_EMPTY")
    with pytest.raises(EvmKeyError, match="give an EVM key file or an environment variable"):
        load_evm_key()


def test_rpc_retry_pauses_are_the_one_backoff() -> None:
    """The pause after n failed tries is ledger.backoff's delay n-1 for the jitter drawn."""
    schedule = Backoff(base_s=1, cap_s=3)
    low = RpcRetry(attempts=5, schedule=schedule, jitter=lambda: 0.0)
    assert [low.pause(failures) for failures in range(1, 5)] == [0.5, 1.0, 1.5, 1.5]
    high = RpcRetry(attempts=5, schedule=schedule, jitter=lambda: 1.0)
    assert [high.pause(failures) for failures in range(1, 5)] == [1, 2, 3, 3]
    assert RpcRetry().attempts == 4
    assert RpcRetry().schedule == RPC_BACKOFF == Backoff(base_s=0.25, cap_s=5.0)
    with pytest.raises(BackoffConfigError, match="an RPC call needs attempts >= 1, got 0"):
        RpcRetry(attempts=0)


def test_unreachable_node_is_retried_with_jittered_pauses() -> None:
    """A node nobody answers for is tried ``attempts`` times with the drawn pauses between
    the tries (none after the last), then reported as AnchorUnavailable."""
    draws = iter([0.0, 1.0, 0.5])
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    retry = RpcRetry(attempts=4, schedule=Backoff(base_s=1, cap_s=10), jitter=lambda: next(draws))

    async def read_chain_id() -> int:
        w3 = make_web3(f"http://127.0.0.1:{free_port()}")
        try:
            return await call_rpc(
                "read chain id", lambda: w3.eth.chain_id, retry=retry, sleep=sleep
            )
        finally:
            await w3.provider.disconnect()

    with pytest.raises(AnchorUnavailable, match="read chain id: EVM node unreachable after 4"):
        asyncio.run(read_chain_id())
    assert slept == [0.5, 2.0, 3.0]
