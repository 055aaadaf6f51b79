"""The wire rules between devices and the gateway, each in one place.

- **Topics.** A device publishes its signed messages on ``voltproof/<fleet>/<device id>/
  telemetry`` and its retained presence (``online`` / last-will ``offline``) on
  ``voltproof/<fleet>/<device id>/status``. Fleet and device levels are non-empty and hold
  no MQTT wildcard. :func:`telemetry_topic` and :func:`status_topic` build them,
  :func:`parse_telemetry_topic` reads one back, :data:`TELEMETRY_FILTER` subscribes to all
  (:data:`STATUS_FILTER` and :data:`RECEIPT_FILTER` name the others of every device).
- **Size.** A payload is at most :data:`MAX_PAYLOAD_SIZE` bytes of deterministic CBOR; a
  complete COSE_Sign1 message at most :data:`MAX_MESSAGE_SIZE` (the payload plus
  :data:`ENVELOPE_ALLOWANCE` for the tag, the headers, the kid and the signature). The codec
  (``ledger.message``) and the gateway's intake bound are both this one number.
- **Historical.** A message published late (backfilled after an outage) carries the MQTT 5
  user property :data:`HISTORICAL_PROPERTY`; it is otherwise identical, signed when the data
  was produced. Being unsigned, the mark is only a label: the gateway records it and relaxes
  no check for it (its clock window runs from the device's enrolment to reception).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

__all__ = [
    "ENVELOPE_ALLOWANCE",
    "HISTORICAL_PROPERTY",
    "MAX_MESSAGE_SIZE",
    "MAX_PAYLOAD_SIZE",
    "MQTT_OVERHEAD_ALLOWANCE",
    "RECEIPT_FILTER",
    "RECEIPT_LEAF",
    "STATUS_FILTER",
    "STATUS_LEAF",
    "TELEMETRY_FILTER",
    "TELEMETRY_LEAF",
    "TELEMETRY_TOPIC_FORM",
    "TOPIC_ROOT",
    "fleet_prefix",
    "is_historical",
    "parse_receipt_topic",
    "parse_telemetry_topic",
    "receipt_topic",
    "status_topic",
    "telemetry_topic",
]

TOPIC_ROOT: Final = "voltproof"
TELEMETRY_LEAF: Final = "telemetry"
STATUS_LEAF: Final = "status"
RECEIPT_LEAF: Final = "receipt"
TELEMETRY_FILTER: Final = f"{TOPIC_ROOT}/+/+/{TELEMETRY_LEAF}"
"""The subscription that receives every device's telemetry."""
STATUS_FILTER: Final = f"{TOPIC_ROOT}/+/+/{STATUS_LEAF}"
"""Every device's presence topic (what the gateway's broker account may read)."""
RECEIPT_FILTER: Final = f"{TOPIC_ROOT}/+/+/{RECEIPT_LEAF}"
"""Every device's receipt topic (what the gateway's broker account may write)."""
TELEMETRY_TOPIC_FORM: Final = f"{TOPIC_ROOT}/<fleet>/<device>/{TELEMETRY_LEAF}"
"""The telemetry topic's shape, as error messages name it."""

MAX_PAYLOAD_SIZE: Final = 65536
"""Largest accepted payload, in bytes of deterministic CBOR."""
ENVELOPE_ALLOWANCE: Final = 1024
"""Bytes allowed around the payload: COSE tag, array and headers, kid, payload head, signature.

The envelope of a telemetry message is under 100 bytes for a 64-character device id; the
allowance leaves room for a registry entry's content type and longer kids.
"""
MAX_MESSAGE_SIZE: Final = MAX_PAYLOAD_SIZE + ENVELOPE_ALLOWANCE
"""Largest accepted complete COSE message, in bytes (66,560)."""

MQTT_OVERHEAD_ALLOWANCE: Final = 1024
"""Bytes an MQTT 5 PUBLISH adds around a message: fixed header, topic, packet id, properties.

The longest telemetry topic (64-character fleet and device id) is 149 bytes; the historical
user property 26. The broker's ``max_packet_size`` is ``MAX_MESSAGE_SIZE`` plus this
(configs/mosquitto/limits.conf), so that the broker refuses what the gateway would refuse.
"""

HISTORICAL_PROPERTY: Final = ("voltproof-historical", "1")
"""The MQTT 5 user property (name, value) that marks a message as historical."""

_WILDCARDS: Final = frozenset("+#")


def _device_topic(fleet: str, device: str, leaf: str, root: str) -> str:
    return f"{root}/{fleet}/{device}/{leaf}"


def telemetry_topic(fleet: str, device: str, *, root: str = TOPIC_ROOT) -> str:
    """The topic ``device`` of ``fleet`` publishes its signed messages on."""
    return _device_topic(fleet, device, TELEMETRY_LEAF, root)


def status_topic(fleet: str, device: str, *, root: str = TOPIC_ROOT) -> str:
    """The retained presence topic of ``device`` (``online`` / last-will ``offline``)."""
    return _device_topic(fleet, device, STATUS_LEAF, root)


def receipt_topic(fleet: str, device: str, *, root: str = TOPIC_ROOT) -> str:
    """The retained topic the gateway publishes ``device``'s end-to-end receipts on."""
    return _device_topic(fleet, device, RECEIPT_LEAF, root)


def fleet_prefix(fleet: str) -> str:
    """The prefix every topic of ``fleet`` starts with (``voltproof/<fleet>/``)."""
    return f"{TOPIC_ROOT}/{fleet}/"


def _parse_device_topic(topic: str, leaf: str) -> tuple[str, str] | None:
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != TOPIC_ROOT or parts[3] != leaf:
        return None
    fleet, device = parts[1], parts[2]
    if not fleet or not device or _WILDCARDS & set(fleet + device):
        return None
    return fleet, device


def parse_telemetry_topic(topic: str) -> tuple[str, str] | None:
    """``(fleet, device)`` of a telemetry topic, or ``None`` if it has another shape."""
    return _parse_device_topic(topic, TELEMETRY_LEAF)


def parse_receipt_topic(topic: str) -> tuple[str, str] | None:
    """``(fleet, device)`` of a receipt topic, or ``None`` if it has another shape."""
    return _parse_device_topic(topic, RECEIPT_LEAF)


def is_historical(user_properties: Iterable[tuple[str, str]]) -> bool:
    """Whether MQTT 5 user properties ``(name, value)`` mark the message as historical."""
    return any(pair == HISTORICAL_PROPERTY for pair in user_properties)
