"""The GB/T 32960.3 frame (clause 6.2, table 2), identical in the 2016 and 2025 editions but
for the start bytes: ``##`` (0x23 0x23) in 2016, ``$$`` (0x24 0x24) in 2025.

::

    offset  size  field
    0       2     start bytes
    2       1     command flag        (table 3: 0x01 vehicle login ... 0x08 time calibration)
    3       1     answer flag         (table 4: 0xFE command; 0x01.. answers)
    4       17    VIN                 (ASCII)
    21      1     encryption          (0x01 none, 0x02 RSA, 0x03 AES128; 2025: 0x04 SM2, 0x05 SM4;
                                       0xFE abnormal, 0xFF invalid)
    22      2     data unit length    (big endian, 0..65531)
    24      n     data unit
    24+n    1     check code (BCC)    XOR of every byte from offset 2 to 24+n-1

:func:`frame_length` reads a header off a stream; :func:`parse_frame` checks one whole frame;
:func:`encode_frame` and :func:`answer_frame` build frames (the platform's answers).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from operator import xor
from typing import Final

from .errors import (
    ANSWER_COMMAND,
    ChecksumError,
    EncryptionError,
    FrameStructureError,
    TruncatedFrameError,
)

START: Final = {2016: b"##", 2025: b"$$"}
EDITION_OF_START: Final = {v: k for k, v in START.items()}
HEADER_LEN: Final = 24
MAX_DATA_LEN: Final = 65_531
"""Table 2: the data unit length field's valid range is 0..65531."""
MAX_FRAME_LEN: Final = HEADER_LEN + MAX_DATA_LEN + 1
VIN_LEN: Final = 17

CMD_LOGIN: Final = 0x01
CMD_REALTIME: Final = 0x02
CMD_REISSUE: Final = 0x03
CMD_LOGOUT: Final = 0x04
CMD_PLATFORM_LOGIN: Final = 0x05
CMD_PLATFORM_LOGOUT: Final = 0x06
CMD_HEARTBEAT: Final = 0x07
CMD_TIME_SYNC: Final = 0x08
COMMANDS: Final = {
    CMD_LOGIN: "vehicle login",
    CMD_REALTIME: "real-time data",
    CMD_REISSUE: "reissued data",
    CMD_LOGOUT: "vehicle logout",
    CMD_PLATFORM_LOGIN: "platform login",
    CMD_PLATFORM_LOGOUT: "platform logout",
    CMD_HEARTBEAT: "heartbeat",
    CMD_TIME_SYNC: "terminal time calibration",
}
ENC_NONE: Final = 0x01
ENCRYPTIONS: Final = {
    2016: {0x01: "none", 0x02: "RSA", 0x03: "AES128", 0xFE: "abnormal", 0xFF: "invalid"},
    2025: {
        0x01: "none", 0x02: "RSA", 0x03: "AES128", 0x04: "SM2", 0x05: "SM4",
        0xFE: "abnormal", 0xFF: "invalid",
    },
}  # fmt: skip


def bcc(data: bytes) -> int:
    """The check code: the XOR of every byte of ``data``."""
    return reduce(xor, data, 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    """One checked frame. ``raw`` is the exact bytes received (what the log keeps)."""

    edition: int
    command: int
    answer: int
    vin: str
    encryption: int
    data: bytes
    raw: bytes

    @property
    def is_command(self) -> bool:
        """The terminal sent a command (answer flag 0xFE), not an answer."""
        return self.answer == ANSWER_COMMAND


def frame_length(header: bytes) -> int:
    """The whole frame's length from its first :data:`HEADER_LEN` bytes (or fewer: raises)."""
    if len(header) < 2:
        raise TruncatedFrameError(f"a frame starts with 2 start bytes; got {len(header)} bytes")
    if bytes(header[:2]) not in EDITION_OF_START:
        raise FrameStructureError(
            f"start bytes {bytes(header[:2]).hex()} are neither 2323 ('##', 2016) "
            "nor 2424 ('$$', 2025)"
        )
    if len(header) < HEADER_LEN:
        raise TruncatedFrameError(f"a frame header is {HEADER_LEN} bytes; got {len(header)}")
    length = int.from_bytes(header[22:24], "big")
    if length > MAX_DATA_LEN:
        raise FrameStructureError(f"data unit length {length} is beyond {MAX_DATA_LEN}")
    return HEADER_LEN + length + 1


def parse_frame(raw: bytes) -> Frame:
    """Check one whole frame (no byte before or after it) and return it.

    Raises :class:`~ledger.gbt32960.errors.GbtError` subclasses only: start bytes, length,
    check code, VIN characters, an unknown command or encryption flag.
    """
    raw = bytes(raw)
    total = frame_length(raw)
    if len(raw) < total:
        raise TruncatedFrameError(f"the header announces a {total}-byte frame; got {len(raw)}")
    if len(raw) > total:
        raise FrameStructureError(f"{len(raw) - total} bytes follow the {total}-byte frame")
    edition = EDITION_OF_START[raw[:2]]
    expected = bcc(raw[2:-1])
    if raw[-1] != expected:
        raise ChecksumError(f"check code is {raw[-1]:#04x}, the frame's XOR is {expected:#04x}")
    command = raw[2]
    if command not in COMMANDS:
        raise FrameStructureError(f"command flag {command:#04x} is not one voltproof answers")
    vin_bytes = raw[4:21]
    if not all(0x30 <= b <= 0x39 or 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A for b in vin_bytes):
        raise FrameStructureError(f"VIN {vin_bytes!r} is not 17 ASCII letters and digits")
    encryption = raw[21]
    if encryption not in ENCRYPTIONS[edition]:
        raise FrameStructureError(
            f"encryption flag {encryption:#04x} is not defined in the {edition} edition"
        )
    return Frame(
        edition=edition,
        command=command,
        answer=raw[3],
        vin=vin_bytes.decode("ascii"),
        encryption=encryption,
        data=raw[HEADER_LEN:-1],
        raw=raw,
    )


def require_plain(frame: Frame) -> None:
    """Refuse an encrypted data unit (voltproof holds no terminal decryption keys)."""
    if frame.encryption != ENC_NONE:
        name = ENCRYPTIONS[frame.edition][frame.encryption]
        raise EncryptionError(f"the data unit is encrypted ({name}); voltproof cannot decrypt it")


def encode_frame(
    *, edition: int, command: int, answer: int, vin: str, data: bytes, encryption: int = ENC_NONE
) -> bytes:
    """A frame with its length and check code (used for the platform's answers)."""
    if edition not in START:
        raise ValueError(f"edition {edition} is not 2016 or 2025")
    vin_bytes = vin.encode("ascii")
    if len(vin_bytes) != VIN_LEN:
        raise ValueError(f"a VIN is {VIN_LEN} characters, not {len(vin_bytes)}")
    if len(data) > MAX_DATA_LEN:
        raise ValueError(f"data unit length {len(data)} is beyond {MAX_DATA_LEN}")
    body = (
        bytes((command, answer)) + vin_bytes + bytes((encryption,)) + len(data).to_bytes(2, "big")
    ) + data
    return START[edition] + body + bytes((bcc(body),))


def answer_frame(frame: Frame, *, answer: int, data: bytes) -> bytes:
    """The platform's answer to ``frame``: same command, edition and VIN, ``answer`` flag.

    ``data`` is the answer's data unit, a 6-byte time: the command's own collection time
    when it has one (login, logout, data), else the platform's current time (heartbeat,
    time calibration, a frame too broken to have a time) -- every answer carries a time, as
    the independent rtm-con decoder expects.
    """
    return encode_frame(
        edition=frame.edition, command=frame.command, answer=answer, vin=frame.vin, data=data
    )
