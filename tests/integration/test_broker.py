"""The broker launcher starts mosquitto with the project's configuration."""

from __future__ import annotations

import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from voltproof.broker import BrokerError, MosquittoBroker

pytestmark = pytest.mark.integration


def _roundtrip(broker: MosquittoBroker, payload: bytes) -> bytes:
    received: list[bytes] = []
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        received.append(bytes(msg.payload))
        done.set()

    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.subscribe("voltproof/test", qos=1)
    client.loop_start()
    try:
        client.publish("voltproof/test", payload, qos=1).wait_for_publish(5)
        assert done.wait(5)
    finally:
        client.loop_stop()
        client.disconnect()
    return received[0]


def test_broker_relays_qos1(mosquitto: MosquittoBroker) -> None:
    """A QoS 1 message published to the started broker reaches a subscriber."""
    assert _roundtrip(mosquitto, b"hello") == b"hello"


def test_broker_runs_with_project_limits(mosquitto: MosquittoBroker) -> None:
    """The generated configuration carries the lossless queue limits."""
    conf = (mosquitto.workdir / "mosquitto.conf").read_text(encoding="utf-8")
    assert "max_queued_messages 200000" in conf
    assert "max_packet_size 67584" in conf
    assert f"listener {mosquitto.port} 127.0.0.1" in conf


def test_broker_restarts_on_same_port(mosquitto: MosquittoBroker) -> None:
    """After a restart the broker listens on the same port again."""
    mosquitto.restart()
    assert _roundtrip(mosquitto, b"again") == b"again"


def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    """A broker binary that does not exist is reported, not hung on."""
    broker = MosquittoBroker(workdir=tmp_path, binary=str(tmp_path / "no-mosquitto"))
    with pytest.raises((BrokerError, FileNotFoundError), match="no-mosquitto"):
        broker.start()


def test_broker_that_cannot_start_is_reported(tmp_path: Path) -> None:
    """A broker that exits at once (its port taken) is reported with its exit code."""
    with MosquittoBroker(workdir=tmp_path / "a") as first:
        second = MosquittoBroker(workdir=tmp_path / "b", port=first.port, startup_timeout_s=5)
        with pytest.raises(BrokerError, match="mosquitto"):
            second.start()
