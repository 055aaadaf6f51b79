"""The broker's TLS listener, with a certificate authority generated in the test."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.binaries import require_binary
from tests.support.throwaway_ca import make_ca
from voltproof.broker import INSTALL_HINT, MosquittoBroker, find_mosquitto

pytestmark = pytest.mark.integration


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A broker with a plain loopback listener and a TLS listener (certificate from a test CA)."""
    binary = require_binary(find_mosquitto(), "mosquitto", INSTALL_HINT)
    broker = MosquittoBroker(
        workdir=tmp_path / "broker", binary=binary, tls=make_ca(tmp_path / "ca")
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()


def _tls_client(cafile: Path) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.tls_set(ca_certs=str(cafile), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    return client


def test_tls_listener_relays_with_the_right_ca(tls_broker: MosquittoBroker) -> None:
    """A client trusting the test CA round-trips a QoS 1 message over TLS."""
    assert tls_broker.tls is not None
    assert tls_broker.tls_url == f"mqtts://127.0.0.1:{tls_broker.tls_port}"
    received: list[bytes] = []
    done = threading.Event()
    client = _tls_client(tls_broker.tls.cafile)

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        received.append(bytes(msg.payload))
        done.set()

    client.on_message = on_message
    client.connect(tls_broker.host, tls_broker.tls_port)
    client.loop_start()
    try:
        client.subscribe("voltproof/tls", qos=1)
        client.publish("voltproof/tls", b"sealed", qos=1).wait_for_publish(5)
        assert done.wait(5)
    finally:
        client.loop_stop()
        client.disconnect()
    assert received == [b"sealed"]


def test_tls_listener_refuses_a_broker_signed_by_another_ca(
    tls_broker: MosquittoBroker, tmp_path: Path
) -> None:
    """A client that trusts another CA refuses the broker's certificate."""
    other = make_ca(tmp_path / "other-ca", name="someone else")
    context = ssl.create_default_context(cafile=str(other.cafile))
    with (
        socket.create_connection((tls_broker.host, tls_broker.tls_port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"),
    ):
        context.wrap_socket(raw, server_hostname="127.0.0.1").close()


def test_tls_listener_refuses_plain_mqtt(tls_broker: MosquittoBroker) -> None:
    """Plain MQTT on the TLS port never gets a CONNACK."""
    refused = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_connect = lambda *_a: pytest.fail("plain MQTT was accepted on the TLS port")
    client.on_disconnect = lambda *_a: refused.set()
    client.connect(tls_broker.host, tls_broker.tls_port)
    client.loop_start()
    try:
        assert refused.wait(10)
    finally:
        client.loop_stop()


def test_tls_configuration_text(tls_broker: MosquittoBroker) -> None:
    """The generated configuration has a TLS-only second listener with the CA's files."""
    assert tls_broker.tls is not None
    conf = tls_broker.config_text()
    assert f"listener {tls_broker.tls_port} 127.0.0.1\ncafile {tls_broker.tls.cafile}" in conf
    assert "tls_version tlsv1.2" in conf
