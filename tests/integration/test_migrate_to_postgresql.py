"""``voltproof migrate --from sqlite:PATH --to postgresql://...``: a verified copy, or a refusal."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.audit import audit_store
from gateway.store import QuarantineEntry, SqliteReader, SqliteStore
from gateway.store.postgresql import PostgresStore
from tests.support.cli_process import run_voltproof as _voltproof
from tests.support.pty_run import run_on_a_terminal
from tests.support.store_contract import fill
from tests.support.terminal_frames import MIXED_READINGS, VIN, commit_frames, enroll_terminal

pytestmark = pytest.mark.integration


async def _filled_sqlite(path: Path) -> None:
    """Agents' messages and a GB/T 32960 terminal's frames (bus and pack blocks per leaf)."""
    async with await SqliteStore.open(path) as store:
        filled = await fill(store)
        await enroll_terminal(filled.registry)
        await commit_frames(store, MIXED_READINGS)


def test_migration_is_verified_and_the_copy_works(tmp_path: Path, postgres_url: str) -> None:
    """Same log, index and checkpoints; both audit clean; the terminal's two blocks per leaf
    read the same from the copy; the copy takes new writes."""
    path = tmp_path / "gateway.db"
    asyncio.run(_filled_sqlite(path))
    result = _voltproof("migrate", "--from", f"sqlite:{path}", "--to", postgres_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified" in result.stdout
    assert "DIFFERENT" not in result.stdout

    async def check() -> None:
        async with await SqliteReader.open(path) as reader:
            before = await audit_store(reader, origin="o", key_name="k", public_key=bytes(32))
        async with await PostgresStore.open(postgres_url) as store:
            after = await audit_store(store, origin="o", key_name="k", public_key=bytes(32))
            # Checkpoints were signed by the test's own key: only their signatures differ.
            assert [p for p in before.problems if "signature" not in p.describe()] == []
            assert [p for p in after.problems if "signature" not in p.describe()] == []
            assert before.counts == after.counts
            for kind in ("bus", "pack"):
                copied = await store.sample_window(kind, VIN, t_from=0, t_to=2**62)
                async with await SqliteReader.open(path) as reader:
                    original = await reader.sample_window(kind, VIN, t_from=0, t_to=2**62)
                names = list(original.values)
                assert copied.rows(names) == original.rows(names)
                assert len(copied) == (5 if kind == "bus" else 4)
            head = await store.log_head()
            entry = QuarantineEntry(
                reason="malformed", detail="after the move", topic="t", device_id=None,
                raw=b"x", raw_size=1, received_at_ms=1,
            )  # fmt: skip
            await store.commit([], [entry])
            assert (await store.quarantine(limit=1))[0].detail == "after the move"
            assert (await store.log_head()).size == head.size

    asyncio.run(check())


def test_second_migration_into_a_filled_database_is_refused(
    tmp_path: Path, postgres_url: str
) -> None:
    """A target that holds a store already: exit 1, nothing changed."""
    path = tmp_path / "gateway.db"
    asyncio.run(_filled_sqlite(path))
    assert _voltproof("migrate", "--from", f"sqlite:{path}", "--to", postgres_url).returncode == 0
    again = _voltproof("migrate", "--from", f"sqlite:{path}", "--to", postgres_url)
    assert again.returncode == 1
    assert "already holds a gateway store" in again.stderr
    assert "Traceback" not in again.stderr


@pytest.mark.parametrize(
    ("source", "target", "code", "message"),
    [
        ("gateway.db", "postgresql://x@127.0.0.1:1/x", 2, "--from must be sqlite:PATH"),
        ("sqlite:gateway.db", "mysql://db/x", 2, "--to must be a postgresql:// URL"),
        ("sqlite:missing.db", "postgresql://x@127.0.0.1:1/x", 1, "no gateway store at"),
    ],
)
def test_wrong_input_is_named(
    tmp_path: Path, source: str, target: str, code: int, message: str
) -> None:
    """Wrong arguments exit 2, a missing store 1, each with one clear line."""
    source = source.replace("missing.db", str(tmp_path / "missing.db"))
    result = _voltproof("migrate", "--from", source, "--to", target)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_target_fails_without_password(tmp_path: Path) -> None:
    """No server: exit 1 naming the place, never the password."""
    path = tmp_path / "gateway.db"
    asyncio.run(_filled_sqlite(path))
    from tests.support.postgres_cluster import free_port

    url = f"postgresql://gw:hunter2-secret@127.0.0.1:{free_port()}/x"
    result = _voltproof("migrate", "--from", f"sqlite:{path}", "--to", url)
    assert result.returncode == 1
    assert "hunter2-secret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_gateway_check_store_option_is_validated(tmp_path: Path) -> None:
    """``gateway check --store`` with a URL that is not PostgreSQL: exit 2, one line."""
    (tmp_path / "gateway.toml").write_text('origin = "voltproof.test/gw"\n', encoding="utf-8")
    config = str(tmp_path / "gateway.toml")
    result = _voltproof("gateway", "check", "--config", config, "--store", "mysql://db/x")
    assert result.returncode == 2
    assert "--store:" in result.stderr
    assert "Traceback" not in result.stderr


def test_progress_bars_on_a_terminal(tmp_path: Path, postgres_url: str) -> None:
    """At a terminal the copy and both replays show a bar on stderr; stdout is unchanged."""
    path = tmp_path / "gateway.db"
    asyncio.run(_filled_sqlite(path))
    shown = run_on_a_terminal("migrate", "--from", f"sqlite:{path}", "--to", postgres_url)
    assert shown.returncode == 0, shown.stdout + shown.terminal
    for bar in ("copying rows", "recomputing the SQLite log", "recomputing the PostgreSQL log"):
        assert bar in shown.terminal, shown.terminal
    assert "verified" in shown.stdout
    assert "copying rows" not in shown.stdout


def test_quiet_draws_no_bar(tmp_path: Path, postgres_url: str) -> None:
    """``--quiet`` at a terminal: nothing on stderr."""
    path = tmp_path / "gateway.db"
    asyncio.run(_filled_sqlite(path))
    shown = run_on_a_terminal(
        "migrate", "--from", f"sqlite:{path}", "--to", postgres_url, "--quiet"
    )
    assert shown.returncode == 0, shown.stdout + shown.terminal
    assert shown.terminal.strip() == ""
