"""The one root of every exception the evidence core raises, and the tree under it.

Each module defines its own precise subclasses next to the code that raises them, so that
callers can catch one family or one exact failure. Every class below roots on
:class:`VoltproofError`; a class that also derives from a builtin keeps it as a second base
because callers (or the callers' own callers) catch it that way (marked ``+ ValueError``).

::

    VoltproofError
    ├── VerificationError                     something offered as evidence does not check out
    │   ├── MessageError                      ledger.message (WrongTagError, WrongAlgorithmError,
    │   │                                     MissingKidError, KidMismatchError,
    │   │                                     MissingMessageFieldError, InvalidFieldError,
    │   │                                     NonDeterministicEncodingError,
    │   │                                     MessageIndefiniteLengthError,
    │   │                                     MessageDuplicateKeyError, MessageTrailingBytesError,
    │   │                                     PayloadTooLargeError, BadSignatureError,
    │   │                                     WrongContentTypeError, MalformedMessageError,
    │   │                                     InvalidFieldError: ProtocolBoundError)
    │   ├── TelemetryError                    ledger.telemetry (UnknownKindError,
    │   │                                     MissingFieldError, UnknownFieldError,
    │   │                                     FieldTypeError, FieldRangeError,
    │   │                                     RaggedColumnsError, SampleCountError, EventError)
    │   ├── NoteError                         ledger.note (MalformedNoteError,
    │   │                                     MalformedVerifierKeyError, InvalidKeyNameError,
    │   │                                     NoteSignatureError, UnverifiedNoteError)
    │   ├── CheckpointError                   ledger.checkpoint (MalformedCheckpointError,
    │   │                                     WrongOriginError)
    │   ├── MerkleProofError                  ledger.merkle (ProofShapeError, RootMismatchError)
    │   ├── RegistryEntryError                ledger.registry (RegistrySignatureError,
    │   │                                     RegistryRuleError, PinMismatchError)
    │   ├── BirthCertificateError             ledger.birth (MalformedBirthCertificateError,
    │   │                                     BirthCertificateMismatchError,
    │   │                                     UnknownManufacturerError, BirthSignatureError,
    │   │                                     MissingBirthCertificateError)
    │   ├── GbtError                          ledger.gbt32960 (FrameStructureError:
    │   │                                     TruncatedFrameError, ChecksumError,
    │   │                                     UnsupportedUnitError, EnvelopeError,
    │   │                                     TerminalEntryError; EncryptionError,
    │   │                                     GbtSignatureError, FrameTimeError,
    │   │                                     UnknownVinError)
    │   ├── KeyNotValidError                  ledger.registry
    │   ├── BundleFormatError                 ledger.bundle (UnknownBundleVersionError,
    │   │                                     MissingBundleFieldError, BundleFieldError)
    │   ├── BundleVerificationError           ledger.verify (BundleCheckpointError,
    │   │                                     InclusionProofError, ConsistencyProofError,
    │   │                                     BundleAnchorError, BundleRegistryError,
    │   │                                     DeviceKeysError, MessageSignatureError,
    │   │                                     ChainOrderError, ChainLinkError,
    │   │                                     PeriodBoundaryError; ledger.verify_v2:
    │   │                                     PeriodMismatchError, IndexEntryError,
    │   │                                     RegistryCompletenessError,
    │   │                                     BundleDeviceError, AssetKindError,
    │   │                                     AssetChainError, BeyondHeadError,
    │   │                                     HostChainError, PredecessorChainError)
    │   └── AnchorVerificationError           ledger.anchors.errors (AnchorExportError,
    │                                         AnchorChainError, AnchorEntryHashError,
    │                                         AnchorSignatureError, AnchorSizeError,
    │                                         AnchorNotFoundError, AnchorReceiptMismatchError,
    │                                         AnchorRootMismatchError, AnchorNotFinalError)
    ├── CBORError + ValueError                ledger.cbor (EncodeError; DecodeError:
    │                                         NonDeterministicError, IndefiniteLengthError,
    │                                         DuplicateKeyError, TrailingBytesError,
    │                                         TruncatedError, UnsupportedItemError,
    │                                         InvalidItemError, NestingTooDeepError,
    │                                         TypedArrayError)
    ├── FastPathMiss                          ledger.cbor.fast_reader (internal: take the
    │                                         explaining reader)
    ├── OutOfRangeError + ValueError          ledger.merkle: a request beyond the tree
    ├── MissingNodeError + LookupError        ledger.merkle: a node store lacks a node
    ├── KeyFileError                          ledger.keys
    ├── PinFormatError + ValueError           ledger.registry (a malformed --pin: usage)
    ├── TerminalPinFormatError + ValueError   ledger.verify_terminal (a malformed terminal pin)
    ├── PublicKeyError + ValueError           ledger.gbt32960.signature (not an SM2 point)
    ├── BackoffConfigError + ValueError       ledger.backoff
    ├── AnchorError                           ledger.anchors.errors (AnchorUnavailable:
    │                                         NonceAlreadyUsed; AnchorRejected; AnchorConflict)
    ├── AnchorFormatError + ValueError        ledger.anchors.errors
    └── EvmKeyError + ValueError              ledger.anchors.evm_key

The packages above the core root their own families here too, each next to the code that
raises it: the gateway's (``StoreError``, ``EvidenceError``, ``SelfCheckError``,
``RegistryError``, ``ConfigError``, ...), the API's (``AccessError``, ``QueryError``,
``CursorError``, ``TimeFormatError``), the agent's and the simulator's, the witness's, and the
command line's ``CommandError`` (``voltproof/cli/exits.py``). No two exception classes share a
name. ``tests/unit/test_error_tree.py`` checks both over every module of every package.
"""

__all__ = ["VerificationError", "VoltproofError"]


class VoltproofError(Exception):
    """The root of every voltproof exception: catch this to catch them all."""


class VerificationError(VoltproofError):
    """Something offered as evidence does not check out; the message says exactly what."""
