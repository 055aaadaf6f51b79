"""End-to-end receipts (``ledger.receipt``): signed, bound to a device, never confusable."""

from __future__ import annotations

import pytest

from ledger import cbor
from ledger.keys import generate_seed, public_key_from_seed
from ledger.message import WrongContentTypeError, decode_message, sign_registry_entry
from ledger.receipt import (
    MAX_RECEIPT_SIZE,
    Receipt,
    ReceiptError,
    ReceiptSignatureError,
    decode_receipt,
    sign_receipt,
    verify_receipt,
)
from tests.support.gateway_devices import FakeDevice

SEED = bytes(range(32))
KEY = public_key_from_seed(SEED)
HASH = bytes(range(32, 64))


def _receipt(**changes: object) -> bytes:
    fields: dict[str, object] = {
        "dev": "bus-1", "seq": 41, "hash": HASH, "leaf": 977, "size": 960,
    }  # fmt: skip
    fields.update(changes)
    return sign_receipt(Receipt(**fields), seed=SEED, key_name="gw.test")  # type: ignore[arg-type]


class TestRoundTrip:
    def test_verifies_under_the_gateway_key(self) -> None:
        """A receipt verifies and returns exactly what was signed."""
        assert verify_receipt(_receipt(), public_key=KEY, dev="bus-1") == Receipt(
            dev="bus-1", seq=41, hash=HASH, leaf=977, size=960
        )

    def test_is_deterministic_and_small(self) -> None:
        """Signing twice gives the same bytes, well under the size bound."""
        assert _receipt() == _receipt()
        assert len(_receipt(dev="d" * 64)) < 300 < MAX_RECEIPT_SIZE


class TestRefusals:
    def test_another_key(self) -> None:
        """A receipt signed by any other key is refused."""
        other = sign_receipt(
            Receipt(dev="bus-1", seq=41, hash=HASH, leaf=977, size=960),
            seed=generate_seed(),
            key_name="gw.test",
        )
        with pytest.raises(ReceiptSignatureError, match="does not verify"):
            verify_receipt(other, public_key=KEY, dev="bus-1")

    def test_another_device(self) -> None:
        """A valid receipt for another device is refused."""
        with pytest.raises(ReceiptError, match="for device 'bus-2', not 'bus-1'"):
            verify_receipt(_receipt(dev="bus-2"), public_key=KEY, dev="bus-1")

    def test_telemetry_is_not_a_receipt(self) -> None:
        """A device's telemetry, even signed by the gateway's key, is not a receipt."""
        device = FakeDevice(device_id="bus-1", kind="bus", seed=SEED)
        with pytest.raises(ReceiptError, match="not receipts"):
            verify_receipt(device.message(), public_key=KEY, dev="bus-1")

    def test_registry_entry_is_not_a_receipt(self) -> None:
        """A registry entry is not a receipt."""
        entry = sign_registry_entry({"dev": "bus-1", "seq": 41}, seed=SEED, kid="gw.test")
        with pytest.raises(ReceiptError, match="not receipts"):
            verify_receipt(entry, public_key=KEY, dev="bus-1")

    def test_receipt_is_not_telemetry(self) -> None:
        """The gateway's message decoder refuses a receipt as telemetry or registry entry."""
        with pytest.raises(WrongContentTypeError, match="receipt"):
            decode_message(_receipt())

    @pytest.mark.parametrize(
        ("data", "match"),
        [
            (b"", "empty"),
            (b"\xd2" + bytes(MAX_RECEIPT_SIZE), "limit"),
            (b"\xff\x00", "not deterministic CBOR"),
            (cbor.encode([1, 2, 3, 4]), "tag 18"),
            (cbor.encode(cbor.Tag(number=18, value=[1, 2])), "4 items"),
        ],
    )
    def test_malformed(self, data: bytes, match: str) -> None:
        """Malformed bytes are refused with a reason."""
        with pytest.raises(ReceiptError, match=match):
            decode_receipt(data)

    @pytest.mark.parametrize(
        ("payload", "match"),
        [
            ({"v": 2, "dev": "bus-1", "seq": 1, "hash": HASH, "leaf": 1}, "no 'size'"),
            ({"v": 2, "dev": "bus-1", "seq": 1, "leaf": 1, "size": 1}, "no 'hash'"),
            # version 1 named no message: a restarted chain could take it as its own
            ({"v": 1, "dev": "bus-1", "seq": 1, "leaf": 1, "size": 1}, "unknown|version"),
            ({"v": 1, "dev": "bus-1", "seq": 1, "hash": HASH, "leaf": 1, "size": 1}, "version"),
            ({"v": 2, "dev": "bus-1", "seq": -1, "hash": HASH, "leaf": 1, "size": 1}, "'seq'"),
            ({"v": 2, "dev": "bus-1", "seq": 1, "hash": HASH[:31], "leaf": 1, "size": 1}, "'hash'"),
            ({"v": 2, "dev": "bus-1", "seq": 1, "hash": "ab" * 32, "leaf": 1, "size": 1}, "'hash'"),
            ({"v": 2, "dev": "", "seq": 1, "hash": HASH, "leaf": 1, "size": 1}, "'dev'"),
            ({"v": 2, "dev": "b", "seq": 1, "hash": HASH, "leaf": 1, "size": 1, "x": 0}, "unknown"),
            ([1], "must be a map"),
        ],
    )
    def test_bad_payload(self, payload: object, match: str) -> None:
        """Every payload field is checked, and nothing else is allowed."""
        good = decode_receipt(_receipt())
        protected = cbor.decode(_receipt()).value[0]
        forged = cbor.encode(
            cbor.Tag(number=18, value=[protected, {4: b"gw"}, cbor.encode(payload), good[2]])
        )
        with pytest.raises(ReceiptError, match=match):
            decode_receipt(forged)

    def test_bad_key_size(self) -> None:
        """A public key of the wrong size is a usage error."""
        with pytest.raises(ValueError, match="32 bytes"):
            verify_receipt(_receipt(), public_key=b"short", dev="bus-1")
