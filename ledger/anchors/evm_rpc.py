"""Calls to an EVM JSON-RPC node with back-off, and translation of web3/aiohttp errors.

I/O: network calls through web3.py's async API. Transport failures are retried (``RpcRetry``:
a number of attempts, the pauses of the one jittered backoff of :mod:`ledger.backoff`; the
jitter and ``sleep`` are injectable) and then raised as ``AnchorUnavailable``; contract
reverts become ``AnchorRejected`` naming the contract's custom error.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, TypeVar

import aiohttp
from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils.crypto import keccak
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ProviderConnectionError,
    TimeExhausted,
    TransactionNotFound,
    Web3RPCError,
)

from ..backoff import Backoff, BackoffConfigError
from .errors import AnchorRejected, AnchorUnavailable
from .registry import REGISTRY_ABI

T = TypeVar("T")

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientError,
    ProviderConnectionError,
    TimeoutError,
    TimeExhausted,
    ConnectionError,
)


RPC_BACKOFF: Final = Backoff(base_s=0.25, cap_s=5.0)
"""The pauses between tries of one call: 0.25 s doubling up to 5 s, each in ``[d/2, d]``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RpcRetry:
    """How often to try a failing RPC call, and how long to pause between the tries.

    The pauses follow ``schedule`` (:mod:`ledger.backoff`, equal jitter) with ``jitter``
    drawing a number in ``[0, 1]`` for each pause, so that many gateways retrying one node do
    not retry in step; a test passes a constant to know every pause.
    """

    attempts: int = 4
    schedule: Backoff = RPC_BACKOFF
    jitter: Callable[[], float] = random.random

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise BackoffConfigError(f"an RPC call needs attempts >= 1, got {self.attempts}")

    def pause(self, failures: int) -> float:
        """The pause after ``failures`` (>= 1) consecutive failed tries of one call."""
        return self.schedule.delay(failures - 1, self.jitter())


def _custom_errors() -> dict[bytes, tuple[str, list[str]]]:
    errors: dict[bytes, tuple[str, list[str]]] = {}
    for item in REGISTRY_ABI:
        if item.get("type") == "error":
            types = [str(arg["type"]) for arg in item.get("inputs", [])]
            name = str(item["name"])
            selector = keccak(text=f"{name}({','.join(types)})")[:4]
            errors[selector] = (name, types)
    return errors


CUSTOM_ERRORS = _custom_errors()


def describe_revert(data: str | bytes | None) -> str:
    """Name the contract's custom error in revert ``data`` (``"NotWriter(0xab…)"``)."""
    if data is None:
        return "reverted without data"
    raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else data
    known = CUSTOM_ERRORS.get(raw[:4])
    if known is None:
        return f"reverted with data 0x{raw.hex()}"
    name, types = known
    try:
        values = abi_decode(types, raw[4:])
    except (DecodingError, ValueError, TypeError, OverflowError):
        return f"{name}(undecodable arguments)"
    shown = ", ".join(
        f"0x{value.hex()}" if isinstance(value, bytes) else str(value) for value in values
    )
    return f"{name}({shown})"


def revert_name(data: str | bytes | None) -> str:
    """Just the custom error's name (``"NotWriter"``), or ``""``."""
    return describe_revert(data).split("(", 1)[0] if data else ""


def _revert_data(exc: ContractLogicError) -> str | None:
    data = exc.data
    if isinstance(data, str):
        return data
    return None


async def call_rpc(
    what: str,
    call: Callable[[], Awaitable[T]],
    *,
    retry: RpcRetry,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run ``call``, retrying transport errors as ``retry`` says; translate every web3 error."""
    failures = 0
    while True:
        try:
            return await call()
        except TRANSIENT_ERRORS as exc:
            failures += 1
            if failures >= retry.attempts:
                raise AnchorUnavailable(
                    f"{what}: EVM node unreachable after {retry.attempts} attempts: {exc}"
                ) from exc
        except ContractCustomError as exc:
            raise AnchorRejected(
                f"{what}: contract refused: {describe_revert(_revert_data(exc))}"
            ) from exc
        except ContractLogicError as exc:
            raise AnchorRejected(f"{what}: contract refused: {exc}") from exc
        except TransactionNotFound:
            raise
        except Web3RPCError as exc:
            raise AnchorUnavailable(f"{what}: EVM node error: {exc}") from exc
        await sleep(retry.pause(failures))
