"""The project's broker ACL: a device publishes only under its own id; anonymous is refused."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from ledger.protocol import MAX_MESSAGE_SIZE, MQTT_OVERHEAD_ALLOWANCE
from tests.support.binaries import require_binary
from voltproof.broker import (
    ACL_CONF,
    INSTALL_HINT,
    MosquittoBroker,
    find_mosquitto,
    password_line,
    write_password_file,
)

pytestmark = pytest.mark.integration

CREDENTIALS = {
    "voltproof-gateway": "gw-pass-1",
    "bus-0001": "bus-1-pass",
    "bus-0002": "bus-2-pass",
}


@pytest.fixture
def secured_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A broker with per-device passwords and the project's ACL."""
    binary = require_binary(find_mosquitto(), "mosquitto", INSTALL_HINT)
    broker = MosquittoBroker(
        workdir=tmp_path / "broker",
        binary=binary,
        password_file=write_password_file(tmp_path / "passwd", CREDENTIALS),
        acl_file=ACL_CONF,
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()


def _client(broker: MosquittoBroker, user: str | None, password: str | None) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=user or "anon", protocol=mqtt.MQTTv5
    )
    if user is not None:
        client.username_pw_set(user, password)
    return client


def _connect(client: mqtt.Client, broker: MosquittoBroker) -> ReasonCode:
    result: list[ReasonCode] = []
    done = threading.Event()

    def on_connect(*args: object) -> None:
        code = args[3]
        assert isinstance(code, ReasonCode)
        result.append(code)
        done.set()

    client.on_connect = on_connect
    client.connect(broker.host, broker.port)
    client.loop_start()
    assert done.wait(5)
    return result[0]


def _gateway_receiver(broker: MosquittoBroker) -> tuple[mqtt.Client, list[str]]:
    seen: list[str] = []
    gateway = _client(broker, "voltproof-gateway", CREDENTIALS["voltproof-gateway"])
    subscribed = threading.Event()
    gateway.on_subscribe = lambda *_a: subscribed.set()
    gateway.on_message = lambda _c, _u, msg: seen.append(msg.topic)
    assert not _connect(gateway, broker).is_failure
    gateway.subscribe("$share/voltproof-gateways/voltproof/+/+/telemetry", qos=1)
    assert subscribed.wait(5)
    return gateway, seen


def _publish(client: mqtt.Client, topic: str) -> None:
    info = client.publish(topic, b"x", qos=1)
    info.wait_for_publish(5)
    assert info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS


def test_password_line_matches_mosquitto_format() -> None:
    """The hash line has mosquitto's $7$ layout with a 12-byte salt and a 64-byte digest."""
    line = password_line("bus-0001", "pw", salt=bytes(12))
    user, rest = line.split(":", 1)
    _, kind, iterations, salt, digest = rest.split("$")
    assert (user, kind, iterations, salt) == ("bus-0001", "7", "101", "AAAAAAAAAAAAAAAA")
    assert len(digest) == 88


def test_password_line_refuses_bad_username() -> None:
    """A username with a colon would corrupt the password file."""
    with pytest.raises(ValueError, match="invalid broker username"):
        password_line("bus:1", "pw")


def test_anonymous_and_wrong_password_refused(secured_broker: MosquittoBroker) -> None:
    """Without valid credentials the broker refuses the connection."""
    anon = _client(secured_broker, None, None)
    wrong = _client(secured_broker, "bus-0001", "not-the-password")
    try:
        assert _connect(anon, secured_broker).is_failure
        assert _connect(wrong, secured_broker).is_failure
    finally:
        for client in (anon, wrong):
            client.loop_stop()


def test_device_reaches_gateway_on_own_topic(secured_broker: MosquittoBroker) -> None:
    """A device's message on its own topic reaches the gateway; an impersonation never does."""
    gateway, seen = _gateway_receiver(secured_broker)
    device = _client(secured_broker, "bus-0001", CREDENTIALS["bus-0001"])
    impostor = _client(secured_broker, "bus-0001", CREDENTIALS["bus-0001"])
    try:
        assert not _connect(device, secured_broker).is_failure
        _publish(device, "voltproof/fleet-1/bus-0001/telemetry")
        device.disconnect()
        device.loop_stop()
        # bus-0001 tries to publish as bus-0002. Depending on its version, mosquitto either
        # acknowledges and discards the denied message or drops the connection; both are
        # acceptable, as long as the message never reaches the gateway.
        assert not _connect(impostor, secured_broker).is_failure
        info = impostor.publish("voltproof/fleet-1/bus-0002/telemetry", b"x", qos=1)
        with contextlib.suppress(RuntimeError):
            info.wait_for_publish(5)
        impostor.disconnect()
        impostor.loop_stop()
        # The legitimate device carries on over a new connection.
        device = _client(secured_broker, "bus-0001", CREDENTIALS["bus-0001"])
        assert not _connect(device, secured_broker).is_failure
        _publish(device, "voltproof/fleet-1/bus-0001/telemetry")
        for _ in range(100):
            if len(seen) >= 2:
                break
            threading.Event().wait(0.05)
        threading.Event().wait(0.2)  # room for a wrongly delivered message to show up
        assert seen == ["voltproof/fleet-1/bus-0001/telemetry"] * 2
    finally:
        for client in (device, impostor, gateway):
            client.disconnect()
            client.loop_stop()


def _disconnects(client: mqtt.Client) -> threading.Event:
    lost = threading.Event()
    client.on_disconnect = lambda *_a: lost.set()
    return lost


def test_client_id_is_bound_to_the_username(secured_broker: MosquittoBroker) -> None:
    """A device's password with the gateway's client id cannot take the gateway's session."""
    gateway, _seen = _gateway_receiver(secured_broker)
    gateway_lost = _disconnects(gateway)
    device = _client(secured_broker, "bus-0001", CREDENTIALS["bus-0001"])
    device_lost = _disconnects(device)
    try:
        assert not _connect(device, secured_broker).is_failure
        for _ in range(3):
            thief = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id="voltproof-gateway", protocol=mqtt.MQTTv5
            )
            thief.username_pw_set("bus-0001", CREDENTIALS["bus-0001"])
            assert not _connect(thief, secured_broker).is_failure
            thief.disconnect()
            thief.loop_stop()
        # the thief only ever took over bus-0001's own session (its client id is its username)
        assert device_lost.wait(5)
        assert not gateway_lost.wait(0.5)
    finally:
        for client in (device, gateway):
            client.disconnect()
            client.loop_stop()


def test_only_the_gateway_writes_receipts(secured_broker: MosquittoBroker) -> None:
    """A device reads its own receipts; receipts written by a device never arrive."""
    seen: list[bytes] = []
    reader = _client(secured_broker, "bus-0001", CREDENTIALS["bus-0001"])
    subscribed = threading.Event()
    reader.on_subscribe = lambda *_a: subscribed.set()
    reader.on_message = lambda _c, _u, msg: seen.append(bytes(msg.payload))
    forger = _client(secured_broker, "bus-0002", CREDENTIALS["bus-0002"])
    gateway = _client(secured_broker, "voltproof-gateway", CREDENTIALS["voltproof-gateway"])
    try:
        assert not _connect(reader, secured_broker).is_failure
        reader.subscribe("voltproof/fleet-1/bus-0001/receipt", qos=1)
        assert subscribed.wait(5)
        assert not _connect(forger, secured_broker).is_failure
        info = forger.publish("voltproof/fleet-1/bus-0001/receipt", b"forged", qos=1)
        with contextlib.suppress(RuntimeError):
            info.wait_for_publish(5)
        assert not _connect(gateway, secured_broker).is_failure
        _publish(gateway, "voltproof/fleet-1/bus-0001/receipt")
        for _ in range(100):
            if seen:
                break
            threading.Event().wait(0.05)
        threading.Event().wait(0.2)  # room for a wrongly delivered message to show up
        assert seen == [b"x"]
    finally:
        for client in (reader, forger, gateway):
            client.disconnect()
            client.loop_stop()


def test_packet_above_the_protocol_bound_is_refused(secured_broker: MosquittoBroker) -> None:
    """A PUBLISH larger than max_packet_size never reaches the gateway; the sender is cut off."""
    gateway, seen = _gateway_receiver(secured_broker)
    device = _client(secured_broker, "bus-0001", CREDENTIALS["bus-0001"])
    lost = _disconnects(device)
    try:
        assert not _connect(device, secured_broker).is_failure
        topic = "voltproof/fleet-1/bus-0001/telemetry"
        device.publish(topic, bytes(MAX_MESSAGE_SIZE + MQTT_OVERHEAD_ALLOWANCE), qos=1)
        assert lost.wait(5)
        threading.Event().wait(0.2)
        assert seen == []
    finally:
        for client in (device, gateway):
            client.disconnect()
            client.loop_stop()


def test_packet_size_bound_is_the_protocol_bound() -> None:
    """configs/mosquitto/limits.conf carries MAX_MESSAGE_SIZE + MQTT_OVERHEAD_ALLOWANCE."""
    limits = (ACL_CONF.parent / "limits.conf").read_text(encoding="utf-8")
    assert f"\nmax_packet_size {MAX_MESSAGE_SIZE + MQTT_OVERHEAD_ALLOWANCE}\n" in limits
    production = (ACL_CONF.parent / "mosquitto.conf").read_text(encoding="utf-8")
    assert "\nuse_username_as_clientid true\n" in production
