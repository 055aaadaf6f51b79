"""What can be wrong with a GB/T 32960 frame, each with the answer flag the platform sends back.

::

    VerificationError
    └── GbtError                     ledger.gbt32960: the frame is refused
        ├── FrameStructureError      length, start bytes, counts, a unit that does not fit
        │   ├── TruncatedFrameError  fewer bytes than the header or the length field says
        │   ├── ChecksumError        the BCC (XOR) byte does not match
        │   └── UnsupportedUnitError a data unit voltproof does not decode (fuel cell, ...)
        ├── EncryptionError          an encrypted data unit (RSA, AES, SM2, SM4): not decrypted
        ├── GbtSignatureError        a 2025 signature that does not verify, or is missing
        ├── FrameTimeError           a collection time too far ahead of the gateway's clock
        ├── EditionError             a frame of an edition its terminal is not enrolled for
        └── UnknownVinError          no terminal is enrolled under the VIN (the gateway raises it)

``answer`` is the answer flag of GB/T 32960.3 table 4 that the platform puts in its reply.
"""

from __future__ import annotations

from typing import ClassVar

from ledger.errors import VerificationError

ANSWER_OK = 0x01
ANSWER_ERROR = 0x02
ANSWER_VIN_DUPLICATE = 0x03
ANSWER_VIN_UNKNOWN = 0x04
ANSWER_BAD_SIGNATURE = 0x05
"""2025 edition only; a 2016 terminal is answered ANSWER_ERROR instead."""
ANSWER_BAD_STRUCTURE = 0x06
"""2025 edition only."""
ANSWER_DECRYPTION_FAILED = 0x07
"""2025 edition only."""
ANSWER_COMMAND = 0xFE


class GbtError(VerificationError):
    """A GB/T 32960 frame that the gateway refuses; ``answer`` is the flag to send back."""

    answer: ClassVar[int] = ANSWER_ERROR


class FrameStructureError(GbtError):
    """The frame or one of its data units does not follow the edition's layout."""

    answer: ClassVar[int] = ANSWER_BAD_STRUCTURE


class TruncatedFrameError(FrameStructureError):
    """Fewer bytes than the header or a length or count field says."""


class ChecksumError(FrameStructureError):
    """The check code (XOR of every byte from the command flag to the data unit) differs."""


class UnsupportedUnitError(FrameStructureError):
    """A data unit that voltproof does not decode (its layout cannot be skipped safely)."""


class EncryptionError(GbtError):
    """The data unit is encrypted; voltproof holds no terminal decryption keys."""

    answer: ClassVar[int] = ANSWER_DECRYPTION_FAILED


class GbtSignatureError(GbtError):
    """A 2025 data frame whose signature is missing, malformed or does not verify."""

    answer: ClassVar[int] = ANSWER_BAD_SIGNATURE


class FrameTimeError(GbtError):
    """The frame's collection time is further ahead of the gateway's clock than allowed."""


class EditionError(GbtError):
    """A frame of another edition than the one its terminal is enrolled for (a 2016 frame
    under a 2025 terminal's VIN would be data nobody signed)."""


class UnknownVinError(GbtError):
    """No terminal is enrolled under this VIN."""

    answer: ClassVar[int] = ANSWER_VIN_UNKNOWN


def answer_for(error: GbtError, *, edition: int) -> int:
    """The answer flag for ``error`` in ``edition`` (2016 knows only 0x01..0x04)."""
    if edition == 2016 and error.answer > ANSWER_VIN_UNKNOWN:
        return ANSWER_ERROR
    return error.answer
