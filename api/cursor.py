"""Page cursors: the opaque, tamper-evident ``next`` of every list answer.

A cursor carries the keyset position of the last row a page examined (an alarm's
``(t_ms, id)``, a quarantine row's id, a device id, ...) as base64url JSON, and an
HMAC-SHA256 tag over that position AND the list it belongs to: the list's name, the caller's
key name and the list's filters (asset, level, reason, ...). The tag is checked before the
position is read, so a cursor that was edited, made up, or carried to another list, another
filter, another asset or another key is refused (400, with the reason) and never read.

A cursor only says where to continue. What the caller may see is decided on every page
exactly as on the first (grants, leases and fleets are never taken from a cursor): a valid
cursor cannot reach past the caller's grants either.

Pages are keyset pages (``WHERE key < position ORDER BY key``, never ``OFFSET``): rows written
while a client walks a list neither repeat nor shift its pages; a row newer than the walk's
start is not in it (read the first page again for those).

The key is one per access database (:meth:`gateway.store.access_tables.AccessTables.secret`):
cursors survive an API restart and every API process over that database accepts them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Final

from ledger.errors import VoltproofError

Position = tuple[int | str, ...]

TAG_BYTES: Final = 16
"""128-bit tags: forging one is a 2**-128 guess."""
MAX_CURSOR_LEN: Final = 512


class CursorError(VoltproofError, ValueError):
    """A cursor this list did not hand out (or no longer understands); answered with 400."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Cursors:
    """Signs and checks the cursors of every list of one API (one key)."""

    def __init__(self, *, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError(f"a cursor key needs 32 bytes, got {len(key)}")
        self._key = key

    @staticmethod
    def scope(list_name: str, caller: str, **filters: object) -> str:
        """What a cursor is bound to: the list, the caller's key name, the filters."""
        return json.dumps([list_name, caller, sorted(filters.items())], separators=(",", ":"))

    def _tag(self, scope: str, body: str) -> bytes:
        mac = hmac.new(self._key, f"{scope}\n{body}".encode(), hashlib.sha256)
        return mac.digest()[:TAG_BYTES]

    def encode(self, scope: str, position: Position) -> str:
        """The cursor continuing after ``position`` in the list ``scope``."""
        body = _b64(json.dumps(list(position), separators=(",", ":")).encode())
        return f"{body}.{_b64(self._tag(scope, body))}"

    def decode(self, scope: str, cursor: str | None, shape: Sequence[type]) -> Position | None:
        """The position ``cursor`` continues after (``None``: the first page).

        Raises :class:`CursorError` for a cursor not handed out by this list, for this caller
        and these filters, or whose position is not of ``shape`` (e.g. ``(int, int)``).
        """
        if cursor is None:
            return None
        body, dot, tag = cursor.partition(".")
        if not dot or len(cursor) > MAX_CURSOR_LEN:
            raise CursorError("cursor is not one this API handed out (malformed)")
        try:
            given = _unb64(tag)
        except (binascii.Error, ValueError):
            raise CursorError("cursor is not one this API handed out (malformed)") from None
        if not hmac.compare_digest(given, self._tag(scope, body)):
            raise CursorError(
                "cursor does not belong to this list: it was altered, or handed out for "
                "another list, other filters or another key; start again without a cursor"
            )
        try:
            position = json.loads(_unb64(body))
        except (binascii.Error, ValueError):
            raise CursorError("cursor position does not decode") from None
        if (
            not isinstance(position, list)
            or len(position) != len(shape)
            # ``type(v) is t``, not isinstance: JSON ``true`` is a bool, and a bool is no id
            or not all(type(v) is t for v, t in zip(position, shape, strict=True))
        ):
            raise CursorError(f"cursor position {position!r} is not of this list's shape")
        return tuple(position)
