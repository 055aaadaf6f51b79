"""Calls to an EVM JSON-RPC node with back-off, and translation of web3/aiohttp errors.

I/O: network calls through web3.py's async API. Transport failures are retried with
exponential back-off (``sleep`` is injectable) and then raised as ``AnchorUnavailable``;
contract reverts become ``AnchorRejected`` naming the contract's custom error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

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

from ..backoff import nominal_delay
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """How often and how patiently to retry a failing RPC call."""

    attempts: int = 4
    first_delay: float = 0.25
    factor: float = 2.0
    max_delay: float = 5.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")

    def delays(self) -> list[float]:
        """The pauses between attempts."""
        return [
            nominal_delay(n, base_s=self.first_delay, cap_s=self.max_delay, factor=self.factor)
            for n in range(self.attempts - 1)
        ]


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
    backoff: Backoff,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run ``call`` with back-off on transport errors; translate every web3 error."""
    delays = backoff.delays()
    attempt = 0
    while True:
        try:
            return await call()
        except TRANSIENT_ERRORS as exc:
            if attempt >= len(delays):
                raise AnchorUnavailable(
                    f"{what}: EVM node unreachable after {backoff.attempts} attempts: {exc}"
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
        await sleep(delays[attempt])
        attempt += 1
