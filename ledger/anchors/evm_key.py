"""The EVM account key that signs anchor transactions: read from a file or an environment variable.

I/O: reads the key file or the environment. The private key never appears in ``repr``, ``str``
or an error message; only the account address does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ..errors import VoltproofError

KEY_HEX_LENGTH = 64


class EvmKeyError(VoltproofError, ValueError):
    """The EVM key file or variable is missing or does not hold a 32-byte hex private key."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EvmKey:
    """A local EVM account; ``repr`` shows the address only."""

    account: LocalAccount = field(repr=False)

    @property
    def address(self) -> str:
        """The checksummed account address."""
        return str(self.account.address)

    def __repr__(self) -> str:
        return f"EvmKey(address={self.address})"

    __str__ = __repr__

    @classmethod
    def from_hex(cls, text: str) -> EvmKey:
        """Parse a 32-byte private key written in hex (``0x`` prefix optional)."""
        value = text.strip().removeprefix("0x").removeprefix("0X")
        if len(value) != KEY_HEX_LENGTH:
            raise EvmKeyError(f"EVM private key must be {KEY_HEX_LENGTH} hex digits")
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise EvmKeyError("EVM private key is not hex") from None
        try:
            account: LocalAccount = Account.from_key(raw)
        except (ValueError, TypeError):
            raise EvmKeyError("EVM private key is not a valid secp256k1 key") from None
        return cls(account=account)


def load_evm_key(*, key_file: Path | None = None, env_var: str | None = None) -> EvmKey:
    """Read the key from ``key_file`` (hex text) or, failing that, from ``env_var``."""
    if key_file is not None:
        try:
            text = key_file.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise EvmKeyError(f"cannot read EVM key file {key_file}: {exc}") from None
        return EvmKey.from_hex(text)
    if env_var is not None:
        text = os.environ.get(env_var, "")
        if not text:
            raise EvmKeyError(f"environment variable {env_var} holds no EVM private key")
        return EvmKey.from_hex(text)
    raise EvmKeyError("give an EVM key file or an environment variable")
