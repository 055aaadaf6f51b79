"""The wire rules in ledger.protocol: topics round-trip, one size bound, the historical mark."""

from __future__ import annotations

import pytest
from paho.mqtt.client import topic_matches_sub

from ledger import message, protocol
from ledger.protocol import (
    RECEIPT_FILTER,
    STATUS_FILTER,
    TELEMETRY_FILTER,
    receipt_topic,
    status_topic,
    telemetry_topic,
)


def test_telemetry_topic_round_trips() -> None:
    """A built telemetry topic parses back to its fleet and device."""
    topic = protocol.telemetry_topic("north", "pack-1")
    assert topic == "voltproof/north/pack-1/telemetry"
    assert protocol.parse_telemetry_topic(topic) == ("north", "pack-1")
    assert protocol.status_topic("north", "pack-1") == "voltproof/north/pack-1/status"


@pytest.mark.parametrize(
    "topic",
    [
        "voltproof/north/pack-1/status",
        "voltproof//pack-1/telemetry",
        "voltproof/north/+/telemetry",
        "other/north/pack-1/telemetry",
        "voltproof/north/pack-1/telemetry/x",
    ],
)
def test_other_shapes_are_not_telemetry_topics(topic: str) -> None:
    """Wrong root, leaf, level count, an empty level or a wildcard: not a telemetry topic."""
    assert protocol.parse_telemetry_topic(topic) is None


def test_codec_and_gateway_share_the_size_bound() -> None:
    """The codec's message limit is the protocol's, derived from the payload limit."""
    assert message.MAX_MESSAGE_SIZE == protocol.MAX_MESSAGE_SIZE == 66_560
    assert protocol.MAX_MESSAGE_SIZE == protocol.MAX_PAYLOAD_SIZE + protocol.ENVELOPE_ALLOWANCE


def test_historical_mark() -> None:
    """Only the exact user property marks a message historical."""
    assert protocol.is_historical([("a", "b"), protocol.HISTORICAL_PROPERTY])
    assert not protocol.is_historical([("voltproof-historical", "0")])
    assert not protocol.is_historical([])


def test_receipt_topic_round_trips() -> None:
    """A device's receipt topic parses back to (fleet, device) and is not a telemetry topic."""
    topic = protocol.receipt_topic("fleet-a", "bus-0001")
    assert topic == "voltproof/fleet-a/bus-0001/receipt"
    assert protocol.parse_receipt_topic(topic) == ("fleet-a", "bus-0001")
    assert protocol.parse_telemetry_topic(topic) is None
    assert protocol.parse_receipt_topic(protocol.telemetry_topic("fleet-a", "bus-0001")) is None
    assert protocol.parse_receipt_topic("voltproof/+/bus-0001/receipt") is None


def test_each_filter_matches_its_topic_of_every_device() -> None:
    """The gateway's filters take each device's topic of their kind and no other kind."""
    builders = {
        TELEMETRY_FILTER: telemetry_topic,
        STATUS_FILTER: status_topic,
        RECEIPT_FILTER: receipt_topic,
    }
    for topic_filter, own in builders.items():
        for build in builders.values():
            matched = topic_matches_sub(topic_filter, build("fleet-1", "pack-7"))
            assert matched is (build is own), (topic_filter, build)
