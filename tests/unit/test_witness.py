"""The witness over HTTP: every answer C2SP tlog-witness names, and what it never cosigns."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.cosignature import verify_cosignature
from ledger.witness_protocol import SIZE_CONTENT_TYPE, format_add_checkpoint
from tests.support.witness_world import OTHER_SEED, Log, open_witness
from voltproof.witness import Witness, create_app


@pytest.fixture
def witness(tmp_path: Path) -> Witness:
    """A witness with its state in a fresh SQLite file."""
    return open_witness(tmp_path / "witness.sqlite3")


@pytest.fixture
def client(witness: Witness) -> Iterator[TestClient]:
    """An HTTP client of the witness app."""
    with TestClient(create_app(witness, max_body_bytes=4096)) as test_client:
        yield test_client


def post(client: TestClient, body: bytes) -> tuple[int, str, str]:
    """POST an add-checkpoint body; return status, content type and text."""
    response = client.post("/add-checkpoint", content=body)
    return response.status_code, response.headers["content-type"], response.text


def cosign(client: TestClient, log: Log, old: int) -> str:
    """Submit the log's current checkpoint from ``old``; return the cosigned note."""
    status, _, text = post(client, log.request(old))
    assert status == 200, text
    return log.checkpoint() + text


def test_first_checkpoint_and_consistent_extension(client: TestClient, witness: Witness) -> None:
    """From old 0, then with a consistency proof: 200 and a verifying cosignature line."""
    log = Log()
    log.grow(5)
    status, content_type, text = post(client, log.request(0))
    assert (status, content_type) == (200, "text/plain; charset=utf-8")
    assert text.startswith("\u2014 lessor.example/witness-1 ")
    assert text.endswith("\n")
    assert verify_cosignature(log.checkpoint() + text, witness_key=witness.verifier_key) > 0
    log.grow(11)
    cosign(client, log, 5)
    stored = witness.state.latest(log.origin)
    assert stored is not None
    assert (stored.size, stored.root) == (16, log.tree.root())


def test_same_checkpoint_again_is_cosigned(client: TestClient, witness: Witness) -> None:
    """Resubmitting the cosigned checkpoint (old = size, same root) is cosigned again."""
    log = Log()
    log.grow(3)
    cosign(client, log, 0)
    again = cosign(client, log, 3)
    assert again.startswith(log.checkpoint())
    stored = witness.state.latest(log.origin)
    assert stored is not None
    assert (stored.size, stored.root) == (3, log.tree.root())


def test_inconsistent_proof_is_422(client: TestClient, witness: Witness) -> None:
    """A fork: a checkpoint of another history at a larger size is refused with 422."""
    log, fork = Log(), Log(label=b"forged")
    log.grow(4)
    cosign(client, log, 0)
    fork.grow(8)
    status, _, text = post(client, fork.request(4))
    assert status == 422
    assert "consistency proof from size 4 to 8 does not verify" in text
    stored = witness.state.latest(log.origin)
    assert stored is not None
    assert stored.size == 4


def test_wrong_proof_hash_is_422(client: TestClient) -> None:
    """One flipped bit in a proof hash is refused."""
    log = Log()
    log.grow(6)
    cosign(client, log, 0)
    log.grow(7)
    proof = log.tree.consistency_proof(size1=6, size2=13)
    proof[0] = bytes([proof[0][0] ^ 1]) + proof[0][1:]
    body = format_add_checkpoint(old_size=6, proof=proof, checkpoint=log.checkpoint())
    assert post(client, body)[0] == 422


def test_proof_from_zero_must_be_empty(client: TestClient) -> None:
    """From old size 0 the proof must be empty (422 otherwise)."""
    log = Log()
    log.grow(2)
    body = format_add_checkpoint(old_size=0, proof=[bytes(32)], checkpoint=log.checkpoint())
    status, _, text = post(client, body)
    assert (status, text) == (422, "old size is 0 but the proof has 1 hashes, want 0\n")


def test_conflict_answers_the_witness_size(client: TestClient) -> None:
    """A wrong old size is 409 text/x.tlog.size with the latest cosigned size."""
    log = Log()
    log.grow(5)
    cosign(client, log, 0)
    log.grow(5)
    status, content_type, text = post(client, log.request(3))
    assert (status, content_type, text) == (409, SIZE_CONTENT_TYPE, "5\n")
    # the client learns the size from old 0 and retries
    status, content_type, text = post(client, log.request(0))
    assert (status, content_type, text) == (409, SIZE_CONTENT_TYPE, "5\n")
    cosign(client, log, 5)


def test_rollback_refused(client: TestClient) -> None:
    """After cosigning 10, a checkpoint of size 6 is refused whatever old size it claims."""
    log = Log()
    log.grow(10)
    cosign(client, log, 0)
    assert post(client, log.request(6, 6))[:3] == (409, SIZE_CONTENT_TYPE, "10\n")
    assert post(client, log.request(0, 6))[:3] == (409, SIZE_CONTENT_TYPE, "10\n")
    status, _, text = post(client, log.request(10, 6))
    assert status == 400
    assert text == "old size 10 is greater than the checkpoint size 6\n"


def test_same_size_other_root_is_409(client: TestClient) -> None:
    """Same size, different root: 409 with the cosigned size, nothing cosigned."""
    log, fork = Log(), Log(label=b"forged")
    log.grow(7)
    fork.grow(7)
    cosign(client, log, 0)
    assert post(client, fork.request(7))[:3] == (409, SIZE_CONTENT_TYPE, "7\n")


def test_size_zero_with_non_empty_root_is_409(client: TestClient) -> None:
    """A size-0 checkpoint must carry the empty tree's root (same size, other root)."""
    log = Log()
    bogus = sign_checkpoint(
        Checkpoint(origin=log.origin, size=0, root=bytes(32)), name=log.name, seed=log.seed
    )
    body = format_add_checkpoint(old_size=0, proof=[], checkpoint=bogus)
    assert post(client, body) == (409, SIZE_CONTENT_TYPE, "0\n")
    assert post(client, log.request(0))[0] == 200


def test_unknown_log_is_404(client: TestClient) -> None:
    """A log the witness is not configured for is 404, even signed by a known key."""
    other = Log(origin="voltproof.example/gw-2")
    other.grow(3)
    status, _, text = post(client, other.request(0))
    assert (status, text) == (404, "unknown log origin 'voltproof.example/gw-2'\n")


def test_wrong_key_is_403(client: TestClient, witness: Witness) -> None:
    """A checkpoint signed by another key (same name, or another name) is 403."""
    log = Log()
    log.grow(3)
    assert post(client, log.request(0, seed=OTHER_SEED))[0] == 403
    impostor = Log(name="impostor.example/gw-1", seed=OTHER_SEED)
    impostor.grow(3)
    status, _, text = post(client, impostor.request(0))
    assert status == 403
    assert "no signature on the checkpoint verifies" in text
    assert witness.state.latest(log.origin) is None


def test_bad_signature_by_known_key_is_403(client: TestClient) -> None:
    """A signature line by the log key that does not verify is 403."""
    log = Log()
    log.grow(3)
    note = log.checkpoint()
    body, signature = note.split("\n\n")
    name, encoded = signature.removeprefix("\u2014 ").split(" ")
    raw = bytearray(base64.b64decode(encoded))
    raw[-1] ^= 1
    forged = f"{body}\n\n\u2014 {name} {base64.b64encode(bytes(raw)).decode()}\n"
    status, _, text = post(client, format_add_checkpoint(old_size=0, proof=[], checkpoint=forged))
    assert status == 403
    assert "does not verify" in text


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"garbage",
        b"old 0\n\nnot a note",
        "old 0\n\nvoltproof.example/gw-1\n1\n\n\u2014 x AAAAAAA=\n".encode(),
        "old 0\n\nvoltproof.example/gw-1\nten\nAAAA\n\n\u2014 x AAAAAAA=\n".encode(),
        b"old 00\n\n",
        b"old 1\nAAAA\n\n",
    ],
)
def test_malformed_is_400(client: TestClient, body: bytes) -> None:
    """Bodies that are not add-checkpoint requests are 400 with a reason."""
    status, content_type, text = post(client, body)
    assert status == 400
    assert content_type == "text/plain; charset=utf-8"
    assert text.endswith("\n")


def test_too_large_body_is_400(client: TestClient) -> None:
    """A body above the configured limit is refused without being parsed."""
    status, _, text = post(client, b"old 0\n" + b"A" * 5000)
    assert (status, text) == (400, "request body exceeds 4096 bytes\n")


def test_only_post(client: TestClient) -> None:
    """GET is not allowed; other paths are not found."""
    assert client.get("/add-checkpoint").status_code == 405
    assert client.post("/other", content=b"").status_code == 404


def test_timestamps_never_go_back(tmp_path: Path) -> None:
    """With the clock set back, a later cosignature keeps the stored timestamp."""
    log = Log()
    log.grow(2)
    early = open_witness(tmp_path / "w.sqlite3", now=2000)
    early.add_checkpoint(log.request(0))
    log.grow(2)
    late = open_witness(tmp_path / "w.sqlite3", now=1000)
    line = late.add_checkpoint(log.request(2))
    assert verify_cosignature(log.checkpoint() + line, witness_key=late.verifier_key) == 2000


def test_prefix(witness: Witness) -> None:
    """The submission prefix is honoured."""
    log = Log()
    log.grow(1)
    with TestClient(create_app(witness, prefix="/w")) as test_client:
        assert test_client.post("/w/add-checkpoint", content=log.request(0)).status_code == 200
