"""GB/T 32960.3 (2016 and 2025 editions): frames, data units, answers and 2025 signatures.

Pure: bytes in, typed values or a :class:`GbtError` out. The gateway's TCP listener
(``gateway/gbt32960.py``) reads frames off a stream with :func:`frame_length`, checks them
with :func:`parse_frame`, decodes them with the ``decode_*`` functions, verifies 2025
signatures with :func:`verify_sm2` and answers with :func:`answer_frame`.
"""

from .clock import decode_time, encode_time
from .columns import bus_columns, pack_columns
from .errors import (
    ChecksumError,
    EncryptionError,
    FrameStructureError,
    GbtError,
    GbtSignatureError,
    TruncatedFrameError,
    UnknownVinError,
    UnsupportedUnitError,
    answer_for,
)
from .frame import Frame, answer_frame, bcc, encode_frame, frame_length, parse_frame, require_plain
from .signature import PublicKeyError, sm2_public_key, verify_sm2
from .units import Login, Logout, Realtime, Signature, decode_login, decode_logout, decode_realtime

__all__ = [
    "ChecksumError",
    "EncryptionError",
    "Frame",
    "FrameStructureError",
    "GbtError",
    "GbtSignatureError",
    "Login",
    "Logout",
    "PublicKeyError",
    "Realtime",
    "Signature",
    "TruncatedFrameError",
    "UnknownVinError",
    "UnsupportedUnitError",
    "answer_for",
    "answer_frame",
    "bcc",
    "bus_columns",
    "decode_login",
    "decode_logout",
    "decode_realtime",
    "decode_time",
    "encode_frame",
    "encode_time",
    "frame_length",
    "pack_columns",
    "parse_frame",
    "require_plain",
    "sm2_public_key",
    "verify_sm2",
]
