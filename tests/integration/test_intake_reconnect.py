"""The gateway's MQTT intake reconnects on the one jittered backoff (real mosquitto).

Each wait before a reconnection is ``ledger.backoff``'s delay for the retry number and the
jitter drawn (the draws are fixed here, so every delay is known), counted over lost and
failed connections and reset once the intake is subscribed again; across the outage the
persistent session still redelivers what was not acknowledged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config import MqttSettings
from gateway.intake import Delivery, IntakeError, MqttIntake
from ledger.backoff import Backoff
from tests.support.receipt_world import wait_until
from voltproof.broker import MosquittoBroker

pytestmark = pytest.mark.integration

DRAWS = (0.0, 1.0, 0.5)
SCHEDULE = Backoff(base_s=0.05, cap_s=0.4)
TOPIC = "voltproof/fleet-1/dev-1/telemetry"
WAITS = {"broker_disconnected", "broker_unreachable"}


class Draws:
    """Jitter drawn in turn from ``DRAWS``; counts the draws."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> float:
        value = DRAWS[self.count % len(DRAWS)]
        self.count += 1
        return value


def expected(first: int, count: int) -> list[float]:
    """The logged delays (ms precision) for retry numbers ``0..count-1``, the jitter drawn
    from draw number ``first`` on."""
    return [round(SCHEDULE.delay(n, DRAWS[(first + n) % len(DRAWS)]), 3) for n in range(count)]


def settings(broker: MosquittoBroker) -> MqttSettings:
    """A plain subscription (the broker restores it with the session) and short delays."""
    return MqttSettings(
        url=broker.url,
        client_id="gateway-reconnect-test",
        share_group="",
        reconnect_min_s=SCHEDULE.base_s,
        reconnect_max_s=SCHEDULE.cap_s,
    )


def waits(caplog: pytest.LogCaptureFixture) -> list[tuple[str, float]]:
    """The intake's log lines announcing a wait, with the delay each announced."""
    return [
        (record.getMessage(), record.__dict__["retry_in_s"])
        for record in caplog.records
        if record.name == "gateway.intake" and "retry_in_s" in record.__dict__
    ]


@pytest.fixture
def publisher(mosquitto: MosquittoBroker) -> Iterator[mqtt.Client]:
    """A QoS 1 publisher that reconnects by itself after a broker restart."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="pub", protocol=mqtt.MQTTv5)
    client.reconnect_delay_set(1, 1)
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    yield client
    client.loop_stop()
    client.disconnect()


def next_batch(intake: MqttIntake) -> list[Delivery]:
    """The next delivery (fails after 30 s without one)."""
    batch = intake.get_batch(max_items=10, wait_s=30)
    assert batch, "no delivery within 30 s"
    return batch


def test_reconnect_waits_follow_the_backoff_and_reset_once_subscribed(
    mosquitto: MosquittoBroker, publisher: mqtt.Client, caplog: pytest.LogCaptureFixture
) -> None:
    """A broker restart: one wait per lost or failed connection, each the schedule's delay
    for the jitter drawn (0.025, 0.1, 0.15, 0.2, 0.4, 0.3, 0.2, ...); after the intake is
    subscribed again the next outage starts over from the first delay; the message held
    unacknowledged across the restart is delivered again and acknowledged once."""
    caplog.set_level(logging.INFO, logger="gateway.intake")
    draws = Draws()
    intake = MqttIntake(settings=settings(mosquitto), queue_max=10, jitter=draws)
    intake.start(timeout_s=30)
    try:
        publisher.publish(TOPIC, b"held", qos=1).wait_for_publish(10)
        held = next_batch(intake)
        assert [d.payload for d in held] == [b"held"]

        mosquitto.stop()
        wait_until(
            lambda: len(waits(caplog)) >= 7, timeout_s=30, what="7 reconnect waits",
            detail=lambda: str(waits(caplog)),
        )  # fmt: skip
        mosquitto.start()
        wait_until(
            lambda: intake.stats.connects == 2 and intake.stats.reconnect_failures == 0,
            timeout_s=30, what="the intake subscribed again", detail=lambda: str(intake.stats),
        )  # fmt: skip
        outage = waits(caplog)
        assert outage[0][0] == "broker_disconnected"
        assert {message for message, _ in outage[1:]} == {"broker_unreachable"}
        assert [delay for _, delay in outage] == expected(0, len(outage))
        assert max(delay for _, delay in outage) == SCHEDULE.cap_s
        assert draws.count == len(outage)

        again = next_batch(intake)
        assert [d.payload for d in again] == [b"held"]
        intake.ack(held + again)
        assert intake.stats.stale_acks_skipped == 1
        assert intake.stats.acknowledged == 1

        mosquitto.stop()
        wait_until(
            lambda: len(waits(caplog)) > len(outage), timeout_s=30, what="the next wait",
        )  # fmt: skip
        assert waits(caplog)[len(outage)] == ("broker_disconnected", *expected(len(outage), 1))
    finally:
        intake.stop()


def test_first_connection_waits_follow_the_backoff(mosquitto: MosquittoBroker) -> None:
    """A broker down at start: start() waits the schedule's delays between its attempts
    (jitter drawn in turn), then gives up with an IntakeError naming the broker."""
    mosquitto.kill()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    intake = MqttIntake(settings=settings(mosquitto), queue_max=10, jitter=Draws(), sleep=sleep)
    with pytest.raises(IntakeError, match=f"broker {mosquitto.url} unreachable"):
        intake.start(timeout_s=5.0)
    assert len(slept) >= 5
    assert slept == [SCHEDULE.delay(n, DRAWS[n % len(DRAWS)]) for n in range(len(slept))]
    assert intake.stats.reconnect_failures == len(slept) + 1
