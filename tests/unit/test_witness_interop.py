"""Cosigned checkpoints check out under an independent reading of the C2SP specs.

No maintained PyPI/npm implementation of cosignature/v1 installs here (the one PyPI package
that claims it, aics-tlog, needs Python >= 3.12), so ``tests/interop/independent_cosignature``
was written from the C2SP text alone, with OpenSSL's Ed25519 through ``cryptography``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.independent_cosignature import (
    IndependentCheckError,
    check_cosignature,
    check_log_signature,
)
from tests.support.witness_world import LOG_KEY, Log, open_witness


def test_independent_reader_accepts_witness_cosignatures(tmp_path: Path) -> None:
    """The log signature and the witness cosignature verify; the timestamp is the clock's."""
    witness = open_witness(tmp_path / "w.sqlite3", now=1_700_000_123)
    log = Log()
    for size in (1, 2, 7, 64, 100):
        old = log.tree.size
        log.grow(size - old)
        note = log.checkpoint() + witness.add_checkpoint(log.request(old))
        assert check_log_signature(note, LOG_KEY) == (log.origin, size, log.tree.root())
        assert check_cosignature(note, str(witness.verifier_key)) == 1_700_000_123


def test_independent_reader_refuses_a_moved_cosignature(tmp_path: Path) -> None:
    """A cosignature line pasted onto another checkpoint fails the independent check."""
    witness = open_witness(tmp_path / "w.sqlite3")
    log = Log()
    log.grow(3)
    line = witness.add_checkpoint(log.request(0))
    log.grow(1)
    with pytest.raises(IndependentCheckError, match="does not verify"):
        check_cosignature(log.checkpoint() + line, str(witness.verifier_key))
