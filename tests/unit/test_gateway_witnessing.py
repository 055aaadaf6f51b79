"""The witness client's decisions, one answer at a time (httpx's MockTransport as the witness)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from gateway.config import ConfigError, GatewaySettings, WitnessEndpoint
from gateway.store import CheckpointRecord, SqliteStore, StoreError
from gateway.store.memory import open_memory_store
from gateway.witnessing import BadAnswerError, Result, WitnessClient, Witnessing, check_answer
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.cosignature import cosignature_line, parse_witness_key, witness_verifier_key
from ledger.keys import public_key_from_seed
from ledger.witness_protocol import SIZE_CONTENT_TYPE, parse_add_checkpoint
from tests.support.store_contract import fill

SEED = hashlib.sha256(b"witnessing tests: witness").digest()
NAME = "lessor.example/w"
VKEY = witness_verifier_key(NAME, public_key_from_seed(SEED))
LOG_SEED = hashlib.sha256(b"witnessing tests: log").digest()
ORIGIN = "voltproof.test/gw-1"
NOW = 1_780_000_000


def _note(size: int, root: bytes) -> str:
    return sign_checkpoint(
        Checkpoint(origin=ORIGIN, size=size, root=root), name=ORIGIN, seed=LOG_SEED
    )


def _line(note: str, timestamp: int = NOW, seed: bytes = SEED) -> str:
    body = note.split("\n\n", maxsplit=1)[0] + "\n"
    return cosignature_line(body, name=NAME, seed=seed, timestamp=timestamp)


class TestCheckAnswer:
    """check_answer keeps only a valid, timely cosignature by the configured key."""

    NOTE = _note(5, bytes(range(32)))
    KEY = parse_witness_key(VKEY)

    def _check(self, answer: bytes) -> tuple[str, int]:
        return check_answer(
            self.NOTE, answer, key=self.KEY, not_before=NOW - 10, not_after=NOW + 10
        )

    def test_valid_line(self) -> None:
        """A cosignature line over the note is returned with its timestamp."""
        line = _line(self.NOTE)
        assert self._check(line.encode()) == (line, NOW)

    @pytest.mark.parametrize(
        ("answer", "reason"),
        [
            (b"\xff\xfe", "not UTF-8"),
            (b"hello\n", "no cosignature line"),
            (_line(_note(6, bytes(32))).encode(), "does not cosign this checkpoint"),
            (_line(NOTE, NOW + 3600).encode(), "does not cosign this checkpoint"),
            (_line(NOTE, NOW - 3600).encode(), "before the checkpoint was signed"),
            (_line(NOTE, seed=bytes(32)).encode(), "no cosignature line"),
        ],
        ids=["binary", "garbage", "another-body", "future", "past", "another-key"],
    )
    def test_bad_answers(self, answer: bytes, reason: str) -> None:
        """Each broken answer is a BadAnswerError naming what is wrong."""
        with pytest.raises(BadAnswerError, match=reason):
            self._check(answer)


class TestSettings:
    """[[witnesses]] entries are checked when the configuration is read."""

    @pytest.mark.parametrize(
        ("url", "key", "reason"),
        [
            ("ftp://x", VKEY, "not an http"),
            ("http://127.0.0.1:1/?q", VKEY, "query"),
            ("http://127.0.0.1:1", "nonsense", "witness key"),
        ],
    )
    def test_bad_entries(self, url: str, key: str, reason: str) -> None:
        """A bad URL or vkey is refused with the setting named."""
        with pytest.raises(ValueError, match=reason):
            WitnessEndpoint(name="w", url=url, key=key)

    def test_twice_listed(self, tmp_path: Path) -> None:
        """One key listed twice is a configuration error."""
        config = tmp_path / "gateway.toml"
        entry = f'[[witnesses]]\nname = "{{}}"\nurl = "http://127.0.0.1:1"\nkey = "{VKEY}"\n'
        config.write_text(entry.format("a") + entry.format("b"), encoding="utf-8")
        with pytest.raises(ConfigError, match=r"key .* is listed twice"):
            GatewaySettings.from_file(config)

    def test_url_loses_its_trailing_slash(self) -> None:
        """The add-checkpoint path is appended to the prefix without a double slash."""
        endpoint = WitnessEndpoint(name="w", url="http://127.0.0.1:1/w/", key=VKEY)
        assert endpoint.url == "http://127.0.0.1:1/w"


Handler = Callable[[httpx.Request], httpx.Response]


@asynccontextmanager
async def _client(
    handler: Handler,
) -> AsyncIterator[tuple[WitnessClient, CheckpointRecord, list[int]]]:
    """A client over a filled memory store, wanting a real checkpoint of its log (size 11)."""
    olds: list[int] = []

    def recording(request: httpx.Request) -> httpx.Response:
        olds.append(parse_add_checkpoint(request.content).old_size)
        return handler(request)

    async with (
        await open_memory_store() as store,
        httpx.AsyncClient(transport=httpx.MockTransport(recording)) as http,
    ):
        await fill(store)
        root = await store.root_at(11)
        record = CheckpointRecord(size=11, root=root, note=_note(11, root), signed_at_ms=NOW * 1000)
        client = WitnessClient(
            endpoint=WitnessEndpoint(name="w", url="http://witness.test", key=VKEY),
            store=store,
            http=http,
            clock_ms=lambda: NOW * 1000,
        )
        client.want(record)
        yield client, record, olds


def _cosigning(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text=_line(parse_add_checkpoint(request.content).checkpoint))


def _size(size: int, content_type: str = SIZE_CONTENT_TYPE) -> httpx.Response:
    return httpx.Response(409, content=f"{size}\n".encode(), headers={"content-type": content_type})


class TestClient:
    """One attempt against each kind of answer."""

    def test_cosigned_is_stored_and_lag_clears(self) -> None:
        """A valid cosignature is stored; nothing is pending; the lag is zero."""

        async def run() -> None:
            async with _client(_cosigning) as (client, _record, olds):
                assert client.lag(NOW * 1000 + 5000) == (1, 5.0)
                assert await client.attempt()
                assert olds == [0]
                latest = await client._store.latest_cosigned(VKEY)
                assert latest is not None
                assert (latest.size, latest.timestamp) == (11, NOW)
                assert client.pending is None
                assert client.lag(NOW * 1000) == (0, 0.0)
                client.want(_record)  # covered already: not submitted again
                assert client.pending is None

        asyncio.run(run())

    def test_409_size_is_followed(self) -> None:
        """A 409 answer's size is the next old size, with a consistency proof from it."""

        def handler(request: httpx.Request) -> httpx.Response:
            parsed = parse_add_checkpoint(request.content)
            if parsed.old_size != 10:
                return _size(10)
            assert parsed.proof
            return _cosigning(request)

        async def run() -> None:
            async with _client(handler) as (client, _record, olds):
                assert await client.attempt()
                assert olds == [0, 10]
                assert client.stats.results[Result.CONFLICT] == 1
                assert client.stats.results[Result.COSIGNED] == 1

        asyncio.run(run())

    @pytest.mark.parametrize(
        ("response", "result"),
        [
            (_size(10, "text/plain"), Result.BAD_ANSWER),
            (
                httpx.Response(409, content=b"ten\n", headers={"content-type": SIZE_CONTENT_TYPE}),
                Result.BAD_ANSWER,
            ),
            (httpx.Response(200, text="garbage\n"), Result.BAD_ANSWER),
            (httpx.Response(403, text="bad signature"), Result.REFUSED),
            (httpx.Response(503, text="busy"), Result.UNAVAILABLE),
        ],
        ids=["409-content-type", "409-body", "garbage", "403", "503"],
    )
    def test_failures_are_counted_not_stored(
        self, response: httpx.Response, result: Result
    ) -> None:
        """Each failure is counted with its kind; nothing is stored; the checkpoint stays wanted."""

        async def run() -> None:
            async with _client(lambda _request: response) as (client, record, _):
                assert not await client.attempt()
                assert client.stats.results[result] == 1
                assert client.stats.last_error
                assert await client._store.latest_cosigned(VKEY) is None
                assert client.pending == record

        asyncio.run(run())

    def test_conflicts_in_a_row_give_up_for_now(self) -> None:
        """A witness that keeps changing its size is retried later, not in a tight loop."""
        sizes = iter(range(1, 100))

        async def run() -> None:
            async with _client(lambda _request: _size(next(sizes))) as (client, _, olds):
                assert not await client.attempt()
                assert olds == [0, 1, 2]

        asyncio.run(run())

    def test_witness_ahead_of_the_log(self) -> None:
        """A witness holding a larger size than the checkpoint: counted, the checkpoint dropped."""

        async def run() -> None:
            async with _client(lambda _request: _size(500)) as (client, _, olds):
                assert await client.attempt()
                assert olds == [0]
                assert client.stats.results[Result.AHEAD] == 1
                assert client.pending is None

        asyncio.run(run())

    def test_unreachable_witness(self) -> None:
        """A connection error is 'unavailable'."""

        def handler(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

        async def run() -> None:
            async with _client(handler) as (client, _, _):
                assert not await client.attempt()
                assert client.stats.results[Result.UNAVAILABLE] == 1

        asyncio.run(run())

    def test_store_failure_is_retried(self) -> None:
        """A store that cannot write the cosignature fails the attempt, not the gateway."""

        async def run() -> None:
            async with _client(_cosigning) as (client, _, _):

                async def broken(record: object) -> bool:
                    raise StoreError("disk full")

                client._store.add_cosignature = broken  # type: ignore[method-assign]
                assert not await client.attempt()
                assert client.stats.last_error == "store: disk full"

        asyncio.run(run())


def test_run_backs_off_then_stops() -> None:
    """run() sleeps the jittered backoff between failures and returns once stopped."""
    slept: list[float] = []

    async def run() -> None:
        stop = asyncio.Event()
        async with _client(lambda _request: httpx.Response(503)) as (client, _, olds):

            async def sleep(delay: float) -> None:
                slept.append(delay)
                if len(slept) == 3:
                    stop.set()

            client._sleep = sleep
            client._jitter = lambda: 1.0
            await asyncio.wait_for(client.run(stop), 10)
            assert len(olds) == 3

    asyncio.run(run())
    assert slept == [0.5, 1.0, 2.0]


def test_witnessing_submits_the_check_newest_to_every_witness() -> None:
    """submit() hands each witness the newest checkpoint; an older one is ignored."""

    async def run() -> None:
        async with await open_memory_store() as store:
            await _check_newest_to_every_witness(store)

    asyncio.run(run())


async def _check_newest_to_every_witness(store: SqliteStore) -> None:
    await fill(store)
    endpoints = [
        WitnessEndpoint(
            name=f"w{i}",
            url="http://witness.test",
            key=witness_verifier_key(f"w{i}", public_key_from_seed(bytes([i]) * 32)),
        )
        for i in range(2)
    ]
    witnessing = Witnessing(endpoints=endpoints, store=store)
    await witnessing.load()
    assert [c.pending.size if c.pending else None for c in witnessing.clients] == [11, 11]
    old = CheckpointRecord(size=10, root=bytes(32), note="n", signed_at_ms=int(time.time() * 1000))
    witnessing.submit(old)
    assert [c.pending.size if c.pending else None for c in witnessing.clients] == [11, 11]
    await witnessing.aclose()
