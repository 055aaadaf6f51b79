"""The agent's outbox is released only by a verified receipt for this device (issue 15)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import cast

import aiomqtt
import pytest

from firmware_sim.agent import ChainStore, Link, LinkConfig, ReceiptConfig
from firmware_sim.agent.link import _ResendTimer
from ledger.keys import generate_seed, public_key_from_seed
from ledger.message import message_hash
from ledger.receipt import Receipt, sign_receipt
from tests.support.gateway_devices import FakeDevice

GATEWAY_SEED = bytes(range(32))
DEV = "pack-1"
DEVICE_SEED = bytes(range(1, 33))


def _link(tmp_path: Path, produced: int) -> Link:
    store = ChainStore(path=tmp_path / "state.sqlite3", synchronous="OFF")
    device = FakeDevice(device_id=DEV, seed=DEVICE_SEED)
    for _ in range(produced):
        store.append(DEV, lambda _head, _notice: device.message(), now_ms=0)
    config = LinkConfig(
        dev=DEV,
        host="127.0.0.1",
        port=1883,
        topic=device.topic,
        status_topic="voltproof/fleet-a/pack-1/status",
        receipts=ReceiptConfig(
            topic="voltproof/fleet-a/pack-1/receipt",
            gateway_key=public_key_from_seed(GATEWAY_SEED),
        ),
    )
    return Link(config=config, store=store)


def _receipt(
    seq: int, *, dev: str = DEV, seed: bytes = GATEWAY_SEED, message: bytes | None = None
) -> bytes:
    """A receipt for ``seq`` naming ``message`` (default: this test device's own message at
    ``seq``, as the gateway's receipt of that chain would)."""
    hashed = message_hash(message) if message is not None else _own(seq)
    receipt = Receipt(dev=dev, seq=seq, hash=hashed, leaf=seq + 3, size=0)
    return sign_receipt(receipt, seed=seed, key_name="gw")


def _own(seq: int) -> bytes:
    device = FakeDevice(device_id=DEV, seed=DEVICE_SEED)
    messages = [device.message() for _ in range(seq + 1)]
    return message_hash(messages[seq])


def _outbox(link: Link) -> list[int]:
    return [entry.seq for entry in link.store.pending(DEV)]


class TestRelease:
    def test_valid_receipt_releases_up_to_its_seq(self, tmp_path: Path) -> None:
        """A receipt for seq 2 releases seqs 0-2 and keeps the rest."""
        link = _link(tmp_path, 5)
        assert link.accept_receipt(_receipt(2)) == 3
        assert _outbox(link) == [3, 4]
        assert link.store.receipted(DEV) == 2
        assert link.store.stats(DEV).count == 2

    def test_another_key_releases_nothing(self, tmp_path: Path) -> None:
        """A receipt signed by any key but the gateway's is refused."""
        link = _link(tmp_path, 5)
        assert link.accept_receipt(_receipt(4, seed=generate_seed())) == 0
        assert _outbox(link) == [0, 1, 2, 3, 4]
        assert link.stats.receipts_refused == 1

    def test_another_device_releases_nothing(self, tmp_path: Path) -> None:
        """The gateway's receipt for another device is refused."""
        link = _link(tmp_path, 5)
        assert link.accept_receipt(_receipt(4, dev="pack-2")) == 0
        assert _outbox(link) == [0, 1, 2, 3, 4]
        assert link.stats.receipts_refused == 1

    def test_receipt_of_another_chain_releases_nothing(self, tmp_path: Path) -> None:
        """A chain restarted under the same id (storage wiped) does not take the old chain's
        retained receipt as its own: the receipt names another message at that seq."""
        link = _link(tmp_path, 5)
        old_chain = FakeDevice(device_id=DEV)  # another key, so other messages at every seq
        old_messages = [old_chain.message() for _ in range(3)]
        assert link.accept_receipt(_receipt(2, message=old_messages[2])) == 0
        assert _outbox(link) == [0, 1, 2, 3, 4]
        assert link.store.receipted(DEV) == -1
        assert link.stats.receipts_refused == 1
        # ... at its newest message too (checked against the head, not the outbox)
        assert link.accept_receipt(_receipt(4, message=old_chain.message())) == 0
        assert link.stats.receipts_refused == 2
        assert link.accept_receipt(_receipt(4)) == 5  # its own chain's receipt still works

    def test_replayed_lower_receipt_releases_nothing(self, tmp_path: Path) -> None:
        """An older receipt replayed after a newer one changes nothing."""
        link = _link(tmp_path, 5)
        link.accept_receipt(_receipt(2))
        link.store.append(DEV, lambda _h, _n: FakeDevice(device_id=DEV).message(), now_ms=0)
        assert link.accept_receipt(_receipt(1)) == 0
        assert link.accept_receipt(_receipt(2)) == 0
        assert link.store.receipted(DEV) == 2
        assert _outbox(link) == [3, 4, 5]

    def test_receipt_beyond_what_was_produced_is_refused(self, tmp_path: Path) -> None:
        """A receipt for a seq the device never produced releases nothing."""
        link = _link(tmp_path, 3)
        assert link.accept_receipt(_receipt(3)) == 0
        assert _outbox(link) == [0, 1, 2]
        assert link.store.receipted(DEV) == -1

    @pytest.mark.parametrize("data", [b"", b"garbage", FakeDevice(device_id=DEV).message()])
    def test_garbage_releases_nothing(self, tmp_path: Path, data: bytes) -> None:
        """Anything that is not a receipt (telemetry included) is refused."""
        link = _link(tmp_path, 2)
        assert link.accept_receipt(data) == 0
        assert link.stats.receipts_refused == 1


class TestResendTimer:
    CONFIG = ReceiptConfig(topic="t", gateway_key=bytes(32), resend_after_s=1, resend_cap_s=4)

    @staticmethod
    def resend_times(timer: _ResendTimer, count: int) -> tuple[list[float], float]:
        """When the next ``count`` resends fall due without progress, and the last one."""
        due, now = [], 0.0
        for _ in range(count):
            now += timer.due_in(-1, now)
            assert timer.due_in(-1, now) <= 0
            due.append(now)
        return due, now

    def test_doubles_to_the_cap_and_resets_on_progress(self) -> None:
        """No progress, jitter 1: resend after 1, 2, 4, 4 s; progress resets to 1 s."""
        timer = _ResendTimer.start(self.CONFIG, mark=-1, now=0.0, jitter=lambda: 1.0)
        assert timer.due_in(-1, 0.5) == 0.5
        due, now = self.resend_times(timer, 4)
        assert due == [1.0, 3.0, 7.0, 11.0]
        assert timer.due_in(5, now) == 1.0

    def test_delays_are_the_one_jittered_backoff(self) -> None:
        """Each delay is ledger.backoff's for the jitter drawn: 0 halves it, 0.5 takes 3/4."""
        draws = iter([0.0, 0.5, 0.0, 1.0, 0.5, 0.5])
        timer = _ResendTimer.start(self.CONFIG, mark=-1, now=0.0, jitter=lambda: next(draws))
        due, now = self.resend_times(timer, 4)
        assert due == [0.5, 0.5 + 1.5, 2.0 + 2.0, 4.0 + 4.0]
        assert timer.due_in(5, now) == 0.75  # progress: the first delay again, jitter 0.5


class _LostClient:
    """A connection that fails every publish, as one that just dropped."""

    async def publish(self, *_args: object, **_kwargs: object) -> None:
        raise aiomqtt.MqttError("connection lost")


def test_publish_failure_while_the_window_is_full_is_a_link_error(tmp_path: Path) -> None:
    """A failing publish with a full in-flight window ends the drain with MqttError only.

    Only MqttError makes the link reconnect; anything else ends it for good. The race this
    guards (a freed slot let the loop create a task in a group already shutting down:
    RuntimeError, three of four agents stopped in the amnesiac-broker test) is not
    reproduced deterministically here; the reliability test is what caught it.
    """
    link = _link(tmp_path, 3)
    link.config = dataclasses.replace(link.config, max_inflight=1)
    client = cast("aiomqtt.Client", _LostClient())
    with pytest.raises(ExceptionGroup) as caught:
        asyncio.run(link._drain(client, -1))
    _, rest = caught.value.split(aiomqtt.MqttError)
    assert rest is None
