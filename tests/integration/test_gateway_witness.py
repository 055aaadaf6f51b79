"""The gateway as a witness client, against a real witness process (and two broken ones)."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from gateway.app import Gateway
from gateway.store import SqliteStore, open_reader
from gateway.witnessing import Result
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.cosignature import cosignature_line, verify_cosignature
from ledger.keys import load_key_file
from ledger.note import verifier_key
from ledger.timeliness import (
    ChainDelays,
    CosignedCheckpoint,
    MessageTime,
    chain_delays,
    proof_times,
)
from ledger.witness_protocol import parse_add_checkpoint
from tests.support.gateway_world import Deployment, write_deployment
from tests.support.independent_cosignature import check_cosignature
from tests.support.processes import connect_publisher, publish_rounds
from tests.support.witness_process import AnsweringWitness, WitnessProcess, with_witnesses
from voltproof.broker import MosquittoBroker
from voltproof.cli import main

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

DEVICES = 4


def _deployment(tmp_path: Path, broker: MosquittoBroker) -> Deployment:
    """A gateway that signs one checkpoint per round of DEVICES messages, none on a timer."""
    return write_deployment(
        tmp_path / "gw", broker, devices=DEVICES, every_leaves=DEVICES, every_s=3600
    )


async def _until(
    predicate: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 60
) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def _run(deployment: Deployment, body: Callable[[Gateway], Awaitable[None]]) -> None:
    gateway = Gateway(deployment.settings)
    task = asyncio.create_task(gateway.run(install_signal_handlers=False))
    await asyncio.wait_for(gateway.started.wait(), 30)
    try:
        await body(gateway)
    finally:
        gateway.request_stop()
        await asyncio.wait_for(task, 60)


async def _round(publisher: mqtt.Client, deployment: Deployment, gateway: Gateway) -> int:
    """Publish one message per device; return the size of the checkpoint covering them."""
    assert gateway.runtime is not None
    store = gateway.runtime.store
    target = (await store.log_head()).size + DEVICES
    await asyncio.to_thread(publish_rounds, publisher, deployment, 1)

    async def signed() -> bool:
        latest = await store.latest_checkpoint()
        return latest is not None and latest.size >= target

    await _until(signed, f"a checkpoint of size {target}")
    return target


async def _cosigned(gateway: Gateway, vkey: str, size: int) -> None:
    assert gateway.runtime is not None
    store = gateway.runtime.store

    async def done() -> bool:
        latest = await store.latest_cosigned(vkey)
        return latest is not None and latest.size >= size

    await _until(done, f"a cosignature of size {size}")


def _results(gateway: Gateway, name: str) -> dict[Result, int]:
    assert gateway.runtime is not None
    assert gateway.runtime.witnessing is not None
    (client,) = [c for c in gateway.runtime.witnessing.clients if c.endpoint.name == name]
    return dict(client.stats.results)


async def _stored(deployment: Deployment) -> dict[int, list[tuple[str, str]]]:
    """Every checkpoint's note and its stored cosignature lines, by size."""
    async with await SqliteStore.open(deployment.settings.db_path) as store:
        return {
            checkpoint.size: [
                (c.witness, checkpoint.note + c.line)
                for c in await store.cosignatures(checkpoint.size)
            ]
            for checkpoint in await store.checkpoints(limit=1000)
        }


def test_witness_cosigns_every_checkpoint(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    """Each checkpoint of a running gateway is cosigned; every stored line verifies twice."""
    deployment = _deployment(tmp_path, mosquitto)
    with WitnessProcess.for_deployment(tmp_path / "witness", deployment) as witness:
        witness.start()
        deployment = with_witnesses(deployment, [("lessor", witness.url, witness.vkey)])
        publisher = connect_publisher(mosquitto, "publisher")
        sizes: list[int] = []

        async def body(gateway: Gateway) -> None:
            for _ in range(5):
                sizes.append(await _round(publisher, deployment, gateway))
                await _cosigned(gateway, witness.vkey, sizes[-1])
            assert gateway.runtime is not None
            assert gateway.runtime.witnessing is not None
            gateway.runtime.witnessing.update_metrics()
            (client,) = gateway.runtime.witnessing.clients
            assert client.lag(time.time_ns() // 1_000_000) == (0, 0.0)
            assert _results(gateway, "lessor")[Result.COSIGNED] == 5

        asyncio.run(_run(deployment, body))
        publisher.loop_stop()
        publisher.disconnect()
    stored = asyncio.run(_stored(deployment))
    assert sorted(stored) == sizes
    timestamps = []
    for size in sizes:
        ((witness_key, note),) = stored[size]
        assert witness_key == witness.vkey
        timestamps.append(verify_cosignature(note, witness_key=witness.vkey))
        assert check_cosignature(note, witness.vkey) == timestamps[-1]
    assert timestamps == sorted(timestamps)
    delays = asyncio.run(_delays(deployment, witness.vkey, sizes[-1]))
    assert sorted(delays) == sorted(device.device_id for device in deployment.devices)
    for chain in delays.values():
        assert (chain.count, chain.unproven, chain.late, chain.impossible) == (5, 0, 0, 0)


async def _delays(deployment: Deployment, vkey: str, size: int) -> dict[str, ChainDelays]:
    """What a bundle's verifier will compute: the store's cosigned checkpoints -> delays."""
    async with await open_reader(deployment.settings.db_path) as reader:
        covering = await reader.cosigned_covering(leaf_from=0, leaf_to=size, size=size)
        timeline = proof_times(
            checkpoint=Checkpoint(
                origin=deployment.settings.origin, size=size, root=await reader.root_at(size)
            ),
            cosigned=[CosignedCheckpoint(note=c.note, proof=c.proof) for c in covering],
            keys=[vkey],
            not_after=int(time.time()) + 60,
        )
        assert timeline.refused == ()
        messages = []
        for device in deployment.devices:
            for leaf in await reader.device_leaves(device.device_id):
                assert leaf.seq is not None
                assert leaf.t_ms is not None
                messages.append(
                    MessageTime(
                        chain=leaf.device_id,
                        seq=leaf.seq,
                        leaf_index=leaf.leaf_index,
                        t_ms=leaf.t_ms,
                    )
                )
    return chain_delays(messages, timeline)


def test_witness_down_then_up_catches_up_from_the_409_size(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """A down witness does not stop intake; up again, the gateway learns its size from 409."""
    deployment = _deployment(tmp_path, mosquitto)
    with WitnessProcess.for_deployment(tmp_path / "witness", deployment) as witness:
        witness.start()
        deployment = with_witnesses(deployment, [("lessor", witness.url, witness.vkey)])
        publisher = connect_publisher(mosquitto, "publisher")
        first: list[int] = []

        async def before(gateway: Gateway) -> None:
            first.append(await _round(publisher, deployment, gateway))
            await _cosigned(gateway, witness.vkey, first[0])

        asyncio.run(_run(deployment, before))
        # The answer is lost on the gateway's side (as in a crash after the witness
        # committed): the gateway no longer knows which size the witness holds.
        with sqlite3.connect(deployment.settings.db_path) as db:
            db.execute("DELETE FROM cosignatures")
        witness.stop()

        async def outage(gateway: Gateway) -> None:
            sizes = [await _round(publisher, deployment, gateway) for _ in range(3)]
            assert gateway.runtime is not None
            assert gateway.runtime.checkpointer is not None
            assert gateway.runtime.checkpointer.signed >= 3
            assert (await gateway.runtime.store.log_head()).size == sizes[-1]

            async def refused() -> bool:
                return _results(gateway, "lessor")[Result.UNAVAILABLE] >= 2

            await _until(refused, "failed submissions")
            assert await gateway.runtime.store.latest_cosigned(witness.vkey) is None
            await asyncio.to_thread(witness.start)
            await _cosigned(gateway, witness.vkey, sizes[-1])
            results = _results(gateway, "lessor")
            assert results[Result.CONFLICT] >= 1
            assert results[Result.COSIGNED] == 1

        asyncio.run(_run(deployment, outage))
        publisher.loop_stop()
        publisher.disconnect()


def test_slow_witness_blocks_neither_intake_nor_checkpoints(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """A frozen witness: messages are logged and checkpoints signed; thawed, it catches up."""
    deployment = _deployment(tmp_path, mosquitto)
    with WitnessProcess.for_deployment(tmp_path / "witness", deployment) as witness:
        witness.start()
        deployment = with_witnesses(
            deployment, [("lessor", witness.url, witness.vkey)], timeout_s=0.5
        )
        publisher = connect_publisher(mosquitto, "publisher")

        async def body(gateway: Gateway) -> None:
            assert gateway.runtime is not None
            assert gateway.runtime.checkpointer is not None
            store = gateway.runtime.store
            cosigned = await _round(publisher, deployment, gateway)
            await _cosigned(gateway, witness.vkey, cosigned)
            witness.freeze()
            signed = gateway.runtime.checkpointer.signed
            sizes = [await _round(publisher, deployment, gateway) for _ in range(4)]
            assert gateway.runtime.checkpointer.signed == signed + 4
            assert (await store.log_head()).size == sizes[-1]
            latest = await store.latest_cosigned(witness.vkey)
            assert latest is not None
            assert latest.size == cosigned

            async def timed_out() -> bool:
                return _results(gateway, "lessor")[Result.UNAVAILABLE] >= 1

            await _until(timed_out, "a timed out submission")
            witness.thaw()
            await _cosigned(gateway, witness.vkey, sizes[-1])

        asyncio.run(_run(deployment, body))
        publisher.loop_stop()
        publisher.disconnect()


def test_shutdown_is_bounded_by_shutdown_timeout_s(
    tmp_path: Path, mosquitto: MosquittoBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """A frozen witness with a 10-minute timeout would hold the last cosignature round that
    long; ``shutdown_timeout_s`` cuts it short, says so, and loses nothing logged."""
    deployment = _deployment(tmp_path, mosquitto)
    with WitnessProcess.for_deployment(tmp_path / "witness", deployment) as witness:
        witness.start()
        deployment = with_witnesses(
            deployment, [("lessor", witness.url, witness.vkey)], timeout_s=600
        )
        settings = deployment.settings.model_copy(update={"shutdown_timeout_s": 1.0})
        publisher = connect_publisher(mosquitto, "publisher")

        async def main() -> int:
            gateway = Gateway(settings)
            task = asyncio.create_task(gateway.run(install_signal_handlers=False))
            await asyncio.wait_for(gateway.started.wait(), 30)
            await _round(publisher, deployment, gateway)
            witness.freeze()
            size = await _round(publisher, deployment, gateway)  # a checkpoint to cosign
            gateway.request_stop()
            # a guard against a hang, not a measurement: unbounded, this would take 600 s
            await asyncio.wait_for(task, 120)
            return size

        with caplog.at_level("WARNING", logger="gateway.app"):
            size = asyncio.run(main())
        witness.thaw()
        publisher.loop_stop()
        publisher.disconnect()
    assert "shutdown_timed_out" in [record.getMessage() for record in caplog.records]

    async def logged() -> int:
        async with await open_reader(deployment.settings.db_path) as reader:
            return (await reader.log_head()).size

    assert asyncio.run(logged()) >= size


def test_garbage_and_cosignatures_of_another_checkpoint_are_counted_not_stored(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """A witness answering garbage, one cosigning another body: nothing stored, both counted."""
    deployment = _deployment(tmp_path, mosquitto)
    liar_key = WitnessProcess.for_deployment(tmp_path / "liar", deployment)
    liar_seed = load_key_file(liar_key.workdir / "witness.key").seed

    def other_body(request: bytes) -> bytes:
        submitted = parse_add_checkpoint(request).checkpoint
        size = int(submitted.split("\n")[1])
        other = Checkpoint(origin=deployment.settings.origin, size=size + 1, root=bytes(32))
        note = sign_checkpoint(other, name="someone", seed=liar_seed)
        body = note.split("\n\n")[0] + "\n"
        line = cosignature_line(
            body, name=liar_key.name, seed=liar_seed, timestamp=int(time.time())
        )
        return line.encode()

    with (
        AnsweringWitness(lambda _request: b"hello, I am not a witness\n") as garbage,
        AnsweringWitness(other_body) as liar,
    ):
        garbage_key = WitnessProcess.for_deployment(tmp_path / "garbage", deployment).vkey
        deployment = with_witnesses(
            deployment, [("garbage", garbage.url, garbage_key), ("liar", liar.url, liar_key.vkey)]
        )
        publisher = connect_publisher(mosquitto, "publisher")

        async def body(gateway: Gateway) -> None:
            assert gateway.runtime is not None
            sizes = [await _round(publisher, deployment, gateway) for _ in range(3)]
            assert (await gateway.runtime.store.log_head()).size == sizes[-1]

            async def counted() -> bool:
                return all(
                    _results(gateway, n)[Result.BAD_ANSWER] >= 2 for n in ("garbage", "liar")
                )

            await _until(counted, "bad answers counted")
            for name in ("garbage", "liar"):
                assert _results(gateway, name)[Result.COSIGNED] == 0

        asyncio.run(_run(deployment, body))
        publisher.loop_stop()
        publisher.disconnect()
    assert garbage.requests >= 2
    assert liar.requests >= 2
    stored = asyncio.run(_stored(deployment))
    assert stored
    assert all(lines == [] for lines in stored.values())


def test_restarted_gateway_resumes_from_the_stored_cosignature(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """After a restart the client starts from the size the store says the witness holds."""
    deployment = _deployment(tmp_path, mosquitto)
    with WitnessProcess.for_deployment(tmp_path / "witness", deployment) as witness:
        witness.start()
        deployment = with_witnesses(deployment, [("lessor", witness.url, witness.vkey)])
        publisher = connect_publisher(mosquitto, "publisher")

        async def one_round(gateway: Gateway) -> None:
            await _cosigned(gateway, witness.vkey, await _round(publisher, deployment, gateway))
            assert _results(gateway, "lessor")[Result.CONFLICT] == 0

        asyncio.run(_run(deployment, one_round))
        asyncio.run(_run(deployment, one_round))
        publisher.loop_stop()
        publisher.disconnect()
    stored = asyncio.run(_stored(deployment))
    assert sum(len(lines) for lines in stored.values()) == 2


async def _anchored(gateway: Gateway, size: int) -> None:
    assert gateway.runtime is not None
    store = gateway.runtime.store

    async def done() -> bool:
        latest = await store.latest_anchored()
        return latest is not None and latest.size >= size

    await _until(done, f"a final anchor of size {size}")


def _bundle_and_verify(deployment: Deployment, out: Path, vkey: str) -> tuple[int, str]:
    """``voltproof bundle`` of pack-0000 from the stopped gateway's store, then ``verify
    --witness`` as a lessor would (no anchor export: the witness is the independent party)."""
    config = str(deployment.config)
    assert main(["bundle", "--config", config, "--asset", "pack-0000", "--out", str(out)]) == 0
    key = load_key_file(deployment.settings.key_file)
    gateway_key = verifier_key(key.name, key.public_key)
    verify = subprocess.run(
        [sys.executable, "-m", "voltproof", "verify", str(out), "--gateway-key", gateway_key,
         "--witness", vkey],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=120,
    )  # fmt: skip
    return verify.returncode, verify.stdout + verify.stderr


def test_lessor_verifies_a_witnessed_bundle_and_refuses_an_unwitnessed_one(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """A running gateway and a real witness process: the bundle of an anchored, cosigned
    checkpoint verifies with --witness (exit 0, every message timely); once the witness is
    gone, a bundle of a newer anchored checkpoint it never saw is refused (exit 1)."""
    deployment = _deployment(tmp_path, mosquitto)
    with WitnessProcess.for_deployment(tmp_path / "witness", deployment) as witness:
        witness.start()
        deployment = with_witnesses(deployment, [("lessor", witness.url, witness.vkey)])
        publisher = connect_publisher(mosquitto, "publisher")

        async def witnessed(gateway: Gateway) -> None:
            for _ in range(3):
                size = await _round(publisher, deployment, gateway)
            await _cosigned(gateway, witness.vkey, size)
            await _anchored(gateway, size)

        asyncio.run(_run(deployment, witnessed))
        code, output = _bundle_and_verify(deployment, tmp_path / "good.bundle", witness.vkey)
        assert code == 0, output
        assert "VALID, COMPLETE, witnessed" in output
        assert "late 0, unproven 0, before their t 0" in output
        witness.stop()

        async def unwitnessed(gateway: Gateway) -> None:
            size = await _round(publisher, deployment, gateway)
            await _anchored(gateway, size)

        asyncio.run(_run(deployment, unwitnessed))
        publisher.loop_stop()
        publisher.disconnect()
    code, output = _bundle_and_verify(deployment, tmp_path / "unseen.bundle", witness.vkey)
    assert code == 1, output
    assert "INVALID: WitnessPolicyError" in output
    assert "no cosignature" in output
