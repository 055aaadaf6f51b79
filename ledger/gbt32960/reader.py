"""A bounds-checked cursor over a data unit: every read names what it wanted."""

from __future__ import annotations

from .errors import TruncatedFrameError


class Reader:
    """Reads big-endian fields off ``data``; running past the end raises TruncatedFrameError."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self._data = data
        self._pos = pos

    @property
    def pos(self) -> int:
        """Offset of the next byte."""
        return self._pos

    @property
    def remaining(self) -> int:
        """Bytes not read yet."""
        return len(self._data) - self._pos

    def take(self, n: int, what: str) -> bytes:
        """The next ``n`` bytes of ``what``."""
        if n > self.remaining:
            raise TruncatedFrameError(
                f"{what} needs {n} bytes at offset {self._pos}; {self.remaining} remain"
            )
        chunk = self._data[self._pos : self._pos + n]
        self._pos += n
        return chunk

    def u8(self, what: str) -> int:
        """One unsigned byte."""
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        """A big-endian WORD."""
        return int.from_bytes(self.take(2, what), "big")

    def u32(self, what: str) -> int:
        """A big-endian DWORD."""
        return int.from_bytes(self.take(4, what), "big")

    def peek(self) -> int:
        """The next byte without consuming it (the caller checks ``remaining`` first)."""
        return self._data[self._pos]
