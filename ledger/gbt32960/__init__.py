"""GB/T 32960.3 (2016 and 2025 editions): frames, data units, answers and 2025 signatures.

Pure: bytes in, typed values or a :class:`GbtError` out. The gateway's TCP listener
(``gateway/gbt32960.py``) reads frames off a stream with :func:`frame_length`, checks them
with :func:`parse_frame`, decodes them with the ``decode_*`` functions, verifies 2025
signatures with :func:`verify_sm2` and answers with :func:`answer_frame`.
"""

from .clock import decode_time, encode_time
from .columns import (
    TERMINAL_COLUMNS,
    bus_columns,
    bus_telemetry,
    pack_columns,
    pack_gap,
    pack_telemetry,
)
from .envelope import (
    MAGIC,
    Envelope,
    EnvelopeError,
    decode_envelope,
    encode_envelope,
    envelope_hash,
    is_envelope,
)
from .errors import (
    ChecksumError,
    EditionError,
    EncryptionError,
    FrameStructureError,
    FrameTimeError,
    GbtError,
    GbtSignatureError,
    TruncatedFrameError,
    UnknownVinError,
    UnsupportedUnitError,
    answer_for,
)
from .frame import Frame, answer_frame, bcc, encode_frame, frame_length, parse_frame, require_plain
from .leaf import GbtLeaf, read_leaf, verify_leaf
from .signature import PublicKeyError, sm2_public_key, verify_sm2
from .terminal import Terminal, TerminalEntryError, placeholder_key, read_terminal
from .units import Login, Logout, Realtime, Signature, decode_login, decode_logout, decode_realtime

__all__ = [
    "MAGIC",
    "TERMINAL_COLUMNS",
    "ChecksumError",
    "EditionError",
    "EncryptionError",
    "Envelope",
    "EnvelopeError",
    "Frame",
    "FrameStructureError",
    "FrameTimeError",
    "GbtError",
    "GbtLeaf",
    "GbtSignatureError",
    "Login",
    "Logout",
    "PublicKeyError",
    "Realtime",
    "Signature",
    "Terminal",
    "TerminalEntryError",
    "TruncatedFrameError",
    "UnknownVinError",
    "UnsupportedUnitError",
    "answer_for",
    "answer_frame",
    "bcc",
    "bus_columns",
    "bus_telemetry",
    "decode_envelope",
    "decode_login",
    "decode_logout",
    "decode_realtime",
    "decode_time",
    "encode_envelope",
    "encode_frame",
    "encode_time",
    "envelope_hash",
    "frame_length",
    "is_envelope",
    "pack_columns",
    "pack_gap",
    "pack_telemetry",
    "parse_frame",
    "placeholder_key",
    "read_leaf",
    "read_terminal",
    "require_plain",
    "sm2_public_key",
    "verify_leaf",
    "verify_sm2",
]
