"""Key options (``--gateway-key``, ``--operator-key``, ``--manufacturer``, ``--witness``): a key
given as such, or the name of a file holding it.

A key holds a ``+`` (``name+keyid+base64``); anything else names a file. A file that cannot be
read, or text that is not a key, is a usage error (exit 2): a mistyped path must never make
honest evidence look forged.
"""

from __future__ import annotations

from pathlib import Path

from .exits import UsageError


def key_text(option: str, text: str, *, what: str = "verifier key") -> str:
    """The key ``text`` gives: itself when it holds a ``+``, else the text of the file named."""
    if "+" in text:
        return text.strip()
    try:
        return Path(text).read_text(encoding="utf-8").strip()
    except FileNotFoundError as exc:
        raise UsageError(
            f"{option} {text}: no such file, and not a {what} (name+keyid+base64)"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{option} {text}: cannot read the key file: {exc}") from exc


def verifier_key_option(text: str, option: str) -> str:
    """A C2SP verifier key given as such or in a file, checked; else a usage error."""
    from ledger.errors import VerificationError
    from ledger.note import parse_verifier_key

    key = key_text(option, text)
    try:
        parse_verifier_key(key)
    except (VerificationError, ValueError) as exc:
        raise UsageError(f"{option} {text}: not a verifier key: {exc}") from exc
    return key
