"""Birth certificates and pinned keys: each refused certificate is refused with its reason."""

from __future__ import annotations

import base64

import pytest

from ledger.birth import (
    BirthCertificateMismatchError,
    BirthSignatureError,
    MalformedBirthCertificateError,
    MissingBirthCertificateError,
    UnknownManufacturerError,
    certify_device,
    read_birth_certificate,
)
from ledger.keys import public_key_from_seed
from ledger.message import (
    WrongContentTypeError,
    sign_birth_certificate,
    sign_registry_entry,
    verify_message,
    verify_registry_entry,
)
from ledger.registry import (
    PinFormatError,
    PinMismatchError,
    RegistryHistory,
    check_enrolments,
    check_registry,
    parse_pin,
)
from tests.support.bundle_world import seed_of
from tests.support.registry_log import (
    MANUFACTURER,
    MANUFACTURER_SEED,
    OPERATOR_KEY,
    T0,
    RegistryLog,
    birth,
    manufacturer_key,
)


def enrolled(certificate: bytes | None, *, kind: str = "pack") -> RegistryHistory:
    """The history of one enrolment of pack-1 (or bus-1) carrying ``certificate``."""
    log = RegistryLog()
    log.enroll(f"{kind}-1", kind=kind, certificate=certificate)
    return check_registry(log.entries, operator_key=OPERATOR_KEY)


class TestCertifiedEnrolments:
    """Honest paths: a certified enrolment, an uncertified one when nobody asks."""

    def test_certified_enrolment_verifies(self) -> None:
        """A certificate by a trusted manufacturer for the enrolled id, kind and key passes."""
        history = enrolled(birth("pack-1"))
        check_enrolments(history, manufacturers=[manufacturer_key()])
        claims = read_birth_certificate(history.devices["pack-1"].birth or b"")
        assert (claims.manufacturer, claims.serial, claims.made_at_ms) == (
            MANUFACTURER, "SN-pack-1", T0,
        )  # fmt: skip

    def test_one_of_several_manufacturers(self) -> None:
        """Any one of the trusted manufacturers may have signed."""
        other = manufacturer_key("other-maker", seed_of("other-maker"))
        check_enrolments(enrolled(birth("pack-1")), manufacturers=[other, manufacturer_key()])

    def test_uncertified_enrolment_without_manufacturer_keys(self) -> None:
        """Without ``--manufacturer`` an enrolment needs no certificate."""
        check_enrolments(enrolled(None))

    def test_certificate_is_its_own_content_type(self) -> None:
        """A certificate is neither telemetry nor a registry entry."""
        certificate = birth("pack-1")
        key = public_key_from_seed(MANUFACTURER_SEED)
        with pytest.raises(WrongContentTypeError, match="is a birth certificate, not telemetry"):
            verify_message(certificate, public_key=key)
        with pytest.raises(WrongContentTypeError, match="birth certificate, not a registry entry"):
            verify_registry_entry(certificate, public_key=key)


class TestRefusedCertificates:
    """A certificate by an unknown manufacturer, for something else, or malformed."""

    def test_missing_certificate(self) -> None:
        """With manufacturer keys, an enrolment without a certificate is refused."""
        with pytest.raises(MissingBirthCertificateError, match="'pack-1' at leaf 0 carries no"):
            check_enrolments(enrolled(None), manufacturers=[manufacturer_key()])

    def test_unknown_manufacturer(self) -> None:
        """A certificate by a manufacturer the verifier does not trust is refused."""
        forged = birth("pack-1", manufacturer="operator-made", seed=seed_of("operator"))
        with pytest.raises(UnknownManufacturerError, match="manufacturer 'operator-made', not"):
            check_enrolments(enrolled(forged), manufacturers=[manufacturer_key()])

    def test_trusted_name_wrong_key(self) -> None:
        """A certificate that names a trusted manufacturer but is signed by another key."""
        forged = birth("pack-1", seed=seed_of("operator"))
        with pytest.raises(BirthSignatureError, match="does not verify under the key of"):
            check_enrolments(enrolled(forged), manufacturers=[manufacturer_key()])

    @pytest.mark.parametrize(
        ("certificate", "message"),
        [
            (birth("pack-2"), "for device id 'pack-2', the enrolment says 'pack-1'"),
            (birth("pack-1", kind="bus"), "for kind 'bus', the enrolment says 'pack'"),
            (birth("pack-1", key_seed=seed_of("other")), "for public key"),
        ],
    )
    def test_certificate_for_something_else(self, certificate: bytes, message: str) -> None:
        """Another id, kind or key is refused already by the rules (the gateway's check too)."""
        with pytest.raises(BirthCertificateMismatchError, match=message):
            enrolled(certificate)

    @pytest.mark.parametrize(
        ("certificate", "message"),
        [
            (b"", "message is empty"),
            (b"\xd2\x84", "birth certificate"),
            (
                sign_registry_entry({"dev": "pack-1"}, seed=MANUFACTURER_SEED, kid="m"),
                "content type 'application/vnd.voltproof.registry\\+cbor'",
            ),
            (
                sign_birth_certificate({"dev": "pack-1"}, seed=MANUFACTURER_SEED, kid="m"),
                "has no 'serial', 'kind', 'key', 'made_at'",
            ),
            (
                sign_birth_certificate(
                    {"dev": "pack-1", "serial": "s", "kind": "pack", "key": bytes(32),
                     "made_at": 0, "colour": "red"},
                    seed=MANUFACTURER_SEED, kid="m",
                ),
                "unknown fields \\['colour'\\]",
            ),
            (
                sign_birth_certificate(
                    {"dev": "pack-1", "serial": "", "kind": "pack", "key": bytes(32),
                     "made_at": 0}, seed=MANUFACTURER_SEED, kid="m",
                ),
                "'serial' must be non-empty text",
            ),
            (
                sign_birth_certificate(
                    {"dev": "pack-1", "serial": "s", "kind": "pack", "key": bytes(31),
                     "made_at": 0}, seed=MANUFACTURER_SEED, kid="m",
                ),
                "'key' must be 32 bytes",
            ),
            (
                sign_birth_certificate(
                    {"dev": "pack-1", "serial": "s", "kind": "pack", "key": bytes(32),
                     "made_at": -1}, seed=MANUFACTURER_SEED, kid="m",
                ),
                "'made_at' must be Unix ms",
            ),
        ],
    )  # fmt: skip
    def test_malformed_certificate(self, certificate: bytes, message: str) -> None:
        """Bytes that are not a well-formed certificate are refused with the field at fault."""
        with pytest.raises(MalformedBirthCertificateError, match=message):
            enrolled(certificate)

    def test_certify_refuses_bad_claims(self) -> None:
        """The manufacturer's own tool refuses a kind that does not exist."""
        with pytest.raises(MalformedBirthCertificateError, match="kind 'tram'"):
            certify_device(seed=MANUFACTURER_SEED, manufacturer=MANUFACTURER, device="d",
                           serial="s", kind="tram", key=bytes(32), made_at_ms=0)  # fmt: skip

    def test_certificate_of_a_rotated_key(self) -> None:
        """A certificate speaks of the first key: after a rotation it still names that one."""
        log = RegistryLog()
        log.enroll("pack-1", certificate=birth("pack-1"))
        log.rotate("pack-1", signer=seed_of("pack-1"), new_seed=seed_of("k2"), seq=4)
        history = check_registry(log.entries, operator_key=OPERATOR_KEY)
        check_enrolments(history, manufacturers=[manufacturer_key()])


class TestPins:
    """A lessor's pinned first key."""

    def test_pin_matches(self) -> None:
        """The enrolled key equals the pin."""
        pins = {"pack-1": public_key_from_seed(seed_of("pack-1"))}
        check_enrolments(enrolled(None), pins=pins)

    def test_pin_mismatch(self) -> None:
        """An enrolled key other than the pinned one is refused, naming both."""
        pinned = public_key_from_seed(seed_of("genuine"))
        with pytest.raises(PinMismatchError, match="'pack-1' was enrolled at leaf 0 with key"):
            check_enrolments(enrolled(None), pins={"pack-1": pinned})

    def test_parse_pin(self) -> None:
        """``ID=KEY`` gives the id and the 32-byte key."""
        key = public_key_from_seed(seed_of("pack-1"))
        assert parse_pin(f"pack-1={base64.b64encode(key).decode()}") == ("pack-1", key)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("pack-1", "is not ID=BASE64KEY"),
            ("=AAAA", "is not ID=BASE64KEY"),
            ("pack-1=not base64!", "the key is not base64"),
            ("pack-1=AAAA", "the key is 3 bytes, want 32"),
        ],
    )
    def test_bad_pin(self, text: str, message: str) -> None:
        """A malformed pin is a usage error with its reason."""
        with pytest.raises(PinFormatError, match=message):
            parse_pin(text)
