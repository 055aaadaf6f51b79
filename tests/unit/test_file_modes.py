"""Databases, logs and secrets are 0600 in 0700 directories, whatever the umask."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.accessdb import AccessDb, AccessError
from firmware_sim.agent.store import ChainStore, ChainStoreError
from gateway.store import SqliteStore, StoreError
from ledger.anchors import AnchorUnavailable
from ledger.anchors.evm_store import EvmTxStore
from ledger.anchors.local import LocalAnchorBackend
from ledger.private_files import open_private_log, private_dir, private_file
from tests.support.api_fleet import make_keys, seed
from tests.support.file_modes import assert_private, mode
from voltproof.witness.state import WitnessState, WitnessStateError


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """A umask that would leave files world-readable (and writable) if nothing set modes."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_seeded_deployment_is_private(tmp_path: Path) -> None:
    """The gateway store, the anchor table and the API access db of a real pipeline run,
    with their WAL files, are 0600 (the test made their directory; the gateway's own
    directory is checked by the demo test)."""
    workdir = tmp_path / "deploy"

    async def build() -> None:
        await make_keys(await seed(workdir))

    asyncio.run(build())
    data = workdir / "gateway"
    names = {p.name for p in data.iterdir()}
    assert {"gateway.db", "anchors.db", "api.db"} <= names
    assert_private(data, directories=False)


@pytest.mark.asyncio
async def test_existing_world_readable_databases_are_tightened(tmp_path: Path) -> None:
    """Attack: files left 0644 by an older version. Opening them for writing makes them 0600."""
    paths = [tmp_path / name for name in ("gateway.db", "api.db", "anchors.db", "evm.db")]
    for path in paths:
        path.touch(mode=0o644)
        path.chmod(0o644)
    store = await SqliteStore.open(paths[0])
    await store.close()
    access = await AccessDb.open(paths[1])
    await access.close()
    anchors = await LocalAnchorBackend.open(paths[2], seed=bytes(32))
    await anchors.aclose()
    journal = await EvmTxStore.open(paths[3])
    await journal.aclose()
    assert {path.name: oct(mode(path)) for path in paths} == {path.name: "0o600" for path in paths}


@pytest.mark.asyncio
async def test_a_symlinked_database_is_refused(tmp_path: Path) -> None:
    """Attack: a link planted where a database will be created. Opening refuses it with the
    reason instead of following it (and changing the target's mode)."""
    target = tmp_path / "elsewhere"
    target.write_text("not yours", encoding="utf-8")
    target.chmod(0o644)
    for name in ("gateway.db", "api.db", "anchors.db"):
        (tmp_path / name).symlink_to(target)
    with pytest.raises(StoreError, match=r"cannot open the gateway store .* for writing"):
        await SqliteStore.open(tmp_path / "gateway.db")
    with pytest.raises(AccessError, match="cannot open the access database"):
        await AccessDb.open(tmp_path / "api.db")
    with pytest.raises(AnchorUnavailable, match="cannot open anchor table"):
        await LocalAnchorBackend.open(tmp_path / "anchors.db", seed=bytes(32))
    assert mode(target) == 0o644


def test_private_dir_and_log(tmp_path: Path) -> None:
    """A log is created 0600 and appended to; its directory and a new tree are 0700."""
    logs = tmp_path / "a" / "logs"
    fd = open_private_log(logs / "x.log")
    with os.fdopen(fd, "ab") as out:
        out.write(b"one\n")
    fd = open_private_log(logs / "x.log")
    with os.fdopen(fd, "ab") as out:
        out.write(b"two\n")
    assert (logs / "x.log").read_bytes() == b"one\ntwo\n"
    assert (mode(logs / "x.log"), mode(logs), mode(tmp_path / "a")) == (0o600, 0o700, 0o700)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    private_file(shared / "f.db")
    assert (mode(shared / "f.db"), mode(shared)) == (0o600, 0o755), "a shared parent is kept"
    private_dir(shared)
    assert mode(shared) == 0o700


def test_private_dir_refuses_a_file(tmp_path: Path) -> None:
    """A file where the directory should be is named, and its mode is left as it was."""
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    file.chmod(0o644)
    with pytest.raises(NotADirectoryError, match=r"notes\.txt"):
        private_dir(file)
    assert mode(file) == 0o644
    with pytest.raises(NotADirectoryError):
        private_dir(file / "sub")


def test_agent_outbox_and_witness_state_are_private(tmp_path: Path) -> None:
    """The agent's outbox (signed telemetry not yet receipted) and a witness's state are
    created 0600, with their WAL files, and a file left 0644 is tightened on open."""
    with ChainStore(path=tmp_path / "agent.sqlite3") as store:
        assert store.head("pack-0").next_seq == 0
    WitnessState.open(tmp_path / "witness.sqlite3").close()
    assert_private(tmp_path, directories=False)
    older = tmp_path / "older"
    older.mkdir()
    for name in ("agent.sqlite3", "witness.sqlite3"):
        (older / name).touch(mode=0o644)
        (older / name).chmod(0o644)
    ChainStore(path=older / "agent.sqlite3").close()
    WitnessState.open(older / "witness.sqlite3").close()
    assert {p.name: oct(mode(p)) for p in older.iterdir()} == {
        p.name: "0o600" for p in older.iterdir()
    }


def test_agent_outbox_and_witness_state_refuse_a_planted_link(tmp_path: Path) -> None:
    """Attack: a link planted where the state file will be. Each refuses it with its own
    error, and the link's target keeps its mode."""
    target = tmp_path / "elsewhere"
    target.touch()  # empty: SQLite would make it a database
    target.chmod(0o644)
    for name in ("agent.sqlite3", "witness.sqlite3"):
        (tmp_path / name).symlink_to(target)
    with pytest.raises(ChainStoreError, match="cannot open state file"):
        ChainStore(path=tmp_path / "agent.sqlite3")
    with pytest.raises(WitnessStateError, match="cannot open witness state"):
        WitnessState.open(tmp_path / "witness.sqlite3")
    assert (mode(target), target.stat().st_size) == (0o644, 0)
